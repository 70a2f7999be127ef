//! Configuration: file → validated, compiled [`Snapshot`].
//!
//! Three stages, each in its own module, as river separates its file format
//! from its internal config:
//! [`file`] reads the TOML into span-carrying structs (unknown keys, types,
//! value syntax), [`resolve`] looks up what the file names outside itself
//! (DNS, certificate and CA files, static roots), [`compile`] checks
//! cross-references and builds the immutable [`Snapshot`] the proxy reads,
//! without I/O of its own. Every default is in [`defaults`]. `rampart check`, `run` and
//! SIGHUP all go through [`load`], so a file that passes `check` reloads.

pub mod compile;
pub mod defaults;
pub mod diag;
mod duplicate;
pub mod file;
pub mod keys;
pub mod reader;
pub mod resolve;
pub mod snapshot;
pub mod values;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

pub use compile::Warnings;
pub use diag::Diagnostics;
pub use snapshot::Snapshot;

/// Loads `path`, reading `${VAR}`s from the process environment.
pub fn load(path: &Path) -> Result<(Snapshot, Warnings), Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| Diagnostics {
        file: path.display().to_string(),
        items: vec![diag::Diagnostic {
            line: 1,
            col: 1,
            message: format!("cannot read config file: {e}"),
        }],
    })?;
    load_str(path, &text, |k| std::env::var(k).ok())
}

/// Loads config text as if read from `path` (relative paths resolve
/// against its directory).
pub fn load_str(
    path: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Snapshot, Warnings), Diagnostics> {
    compile_text(path, text, env, resolve::Resolved::gather)
}

/// The running configuration compiled again with some names resolving
/// anew (a DNS refresh): the same text and files, new addresses.
pub fn recompile_with_addrs(
    cfg: &Snapshot,
    fresh: &HashMap<String, Vec<SocketAddr>>,
) -> Result<(Snapshot, Warnings), Diagnostics> {
    let world = cfg.inputs.world.with_addrs(fresh);
    compile_text(
        &cfg.source,
        &cfg.inputs.text,
        |k| std::env::var(k).ok(),
        |_, _| world,
    )
}

/// Reads and compiles `text`, with what it names outside itself from
/// `world` (given the read file and its directory).
fn compile_text(
    path: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
    world: impl FnOnce(&file::File, &Path) -> resolve::Resolved,
) -> Result<(Snapshot, Warnings), Diagnostics> {
    let mut r = reader::Reader::new(text, env);
    let shown = path.display().to_string();
    let compiled = file::read(text, &mut r).and_then(|f| {
        let src = compile::Source { path, text };
        let world = world(&f, &src.dir());
        compile::compile(&src, f, &world, &mut r)
    });
    match compiled {
        Some(ok) if r.diag.is_empty() => Ok(ok),
        _ => Err(r.diag.into_diagnostics(&shown)),
    }
}

#[cfg(test)]
mod tests;
