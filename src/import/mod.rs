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
//! A location whose main action (proxy, files, return, redirect) cannot be
//! kept is more than a note: the import fails (exit 2) naming each one,
//! unless the user accepts a partial translation (`--allow-partial`).
//!
//! The output depends only on the input files and the options, so it can be
//! diffed and snapshot-tested.

pub mod parse;
pub mod servers;
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
    /// Locations whose main action (proxy, files, return, redirect) rampart
    /// does not keep, as `FILE:LINE: what and why`.
    pub changed: Vec<String>,
}

impl Imported {
    /// The stderr report: the changed locations first (the user must see
    /// them before anything else), then the summary and the warnings.
    pub fn report(&self) -> String {
        let mut out = String::new();
        if !self.changed.is_empty() {
            let _ = writeln!(
                out,
                "{} location(s) answer differently in rampart:",
                self.changed.len()
            );
            for c in &self.changed {
                let _ = writeln!(out, "  {c}");
            }
        }
        out.push_str(&self.summary);
        for w in &self.warnings {
            let _ = writeln!(out, "{w}");
        }
        out
    }
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
        changed: t.changed,
    })
}

#[cfg(test)]
mod fuzz {
    //! Random input never panics the parser or the translator, and whatever
    //! parses translates into valid TOML.

    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    const WORDS: [&str; 65] = [
        "http",
        "server",
        "location",
        "upstream",
        "listen",
        "server_name",
        "proxy_pass",
        "add_header",
        "limit_req",
        "limit_req_zone",
        "return",
        "if",
        "root",
        "alias",
        "expires",
        "gzip",
        "gzip_types",
        "ssl_certificate",
        "ssl_protocols",
        "keepalive",
        "least_conn",
        "access_log",
        "client_max_body_size",
        "proxy_read_timeout",
        "events",
        "=",
        "~",
        "~*",
        "^~",
        "/api/",
        "80",
        "443",
        "ssl",
        "http2",
        "default_server",
        "http://u",
        "https://x:1/",
        "zone=z:1m",
        "rate=1r/s",
        "burst=5",
        "nodelay",
        "$http_origin",
        "always",
        "Access-Control-Allow-Origin",
        "($request_method",
        "OPTIONS)",
        "301",
        "https://$host$request_uri",
        // The directives of later issues (auth, try_files, limits, DNS,
        // buffering, Unix sockets), so the round trip covers them too.
        "try_files",
        "$uri",
        "$uri/",
        "@app",
        "auth_basic",
        "auth_basic_user_file",
        "auth_request",
        "auth_request_set",
        "resolver",
        "proxy_buffering",
        "proxy_request_buffering",
        "off",
        "limit_conn",
        "limit_conn_zone",
        "allow",
        "deny",
        "http://unix:/run/app.sock:",
    ];

    fn structured() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            proptest::sample::select(WORDS.to_vec()).prop_map(String::from),
            "[a-z0-9$/:._=-]{0,12}",
            "\"[^\"\\\\]{0,10}\"",
        ];
        let sep = proptest::sample::select(vec![" ", " ", ";\n", " {\n", "}\n", "\n"]);
        proptest::collection::vec((word, sep), 0..80).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(w, s)| format!("{w}{s}"))
                .collect::<String>()
        })
    }

    fn check(input: &str) {
        let Ok(tree) = parse::parse_str(input, Arc::from("f.conf")) else {
            return;
        };
        let opts = Options::default();
        let t = translate::Translator::new(&opts, Path::new("f.conf")).translate(&tree);
        let text = toml_out::render(&t.tables);
        if let Err(e) = text.parse::<toml_edit::DocumentMut>() {
            panic!("invalid TOML for input {input:?}: {e}\n{text}");
        }
        // Every key the importer writes is one the config reader knows, with
        // a value of the type it reads: one spelling of the schema, whatever
        // the input (what compiling checks beyond that, such as names that
        // resolve or files that exist, depends on the machine).
        let mut r = crate::config::reader::Reader::new(&text, |_| None);
        let _ = crate::config::file::read(&text, &mut r);
        if !r.diag.is_empty() {
            let d = r.diag.into_diagnostics("out.toml");
            panic!("the config reader refuses the import of {input:?}:\n{d}\n{text}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_text(input in "[a-z_ ;{}\"'#$\\\\\n()=~^*/:.0-9é]{0,200}") {
            check(&input);
        }

        #[test]
        fn directive_shaped_text(input in structured()) {
            check(&input);
        }
    }

    #[test]
    fn the_references_are_valid_toml() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nginx");
        let corpus = format!("{dir}/corpus");
        let mut seen = 0;
        for d in [dir, corpus.as_str()] {
            for f in std::fs::read_dir(d).unwrap() {
                let path = f.unwrap().path();
                if path.is_file() {
                    check(&std::fs::read_to_string(path).unwrap());
                    seen += 1;
                }
            }
        }
        assert!(seen >= 12, "{seen} configs");
    }
}
