//! `rampart import-nginx`: an nginx.conf in, a commented rampart TOML out.
//!
//! [`parse`] reads nginx's syntax (with includes) into a tree of directives
//! that remember their file and line; [`translate`] walks that tree with
//! nginx's inheritance rules and produces TOML tables ([`toml_out`]). What has
//! no rampart equivalent is never dropped silently: it becomes a
//! `# not imported:` comment where it was, and a line of the summary printed
//! on stderr. Patterns that are insecure in the original (a reflected origin
//! with credentials) are replaced by placeholders and warned about.
//!
//! The output depends only on the input files and the options, so it can be
//! diffed and snapshot-tested.

pub mod parse;
pub mod toml_out;
pub mod translate;
pub mod units;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use parse::ParseError;

/// Overrides for paths that exist only on the machine nginx ran on.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Certificates and keys are looked up here, by their file name.
    pub cert_dir: Option<PathBuf>,
    /// Every static route serves this directory.
    pub static_root: Option<PathBuf>,
}

/// The result of an import.
pub struct Imported {
    /// The rampart configuration.
    pub toml: String,
    /// What was translated and what was not, for stderr.
    pub summary: String,
    /// Insecure or lossy translations the user must look at.
    pub warnings: Vec<String>,
}

/// Translates the nginx configuration at `path`.
pub fn import(path: &Path, opts: &Options) -> Result<Imported, ParseError> {
    let tree = parse::parse_file(path)?;
    let t = translate::Translator::new(opts, path).translate(&tree);
    let toml = toml_out::render(&t.tables);
    let c = t.counts;
    let mut summary = format!(
        "imported {}: {} server(s), {} route(s), {} upstream(s), {} rate-limit zone(s), {} CORS polic{}\n",
        path.display(),
        c.servers,
        c.routes,
        c.upstreams,
        c.zones,
        c.cors,
        if c.cors == 1 { "y" } else { "ies" }
    );
    if !t.skipped.is_empty() {
        let mut by_name: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (name, pos) in &t.skipped {
            by_name.entry(name.as_str()).or_default().push(pos.line);
        }
        let _ = writeln!(
            summary,
            "not imported ({} directive(s), each marked \"# not imported\" in the output):",
            t.skipped.len()
        );
        for (name, lines) in by_name {
            let lines: Vec<String> = lines.iter().map(u32::to_string).collect();
            let _ = writeln!(summary, "  {name} (line {})", lines.join(", "));
        }
    }
    Ok(Imported {
        toml,
        summary,
        warnings: t.warnings,
    })
}
