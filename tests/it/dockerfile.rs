//! The Dockerfile's build stage must be able to build rampart from exactly
//! what it copies. No Docker engine runs in CI, so this test assembles the
//! same build context by hand: the builder stage's `COPY` lines, applied to
//! the repository minus what `.dockerignore` leaves out, and asks cargo to
//! resolve (`cargo metadata --locked --offline`) and build the binary
//! (`cargo build --locked --offline --bin rampart`, sharing this checkout's
//! target directory, so that it costs seconds).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One `COPY` of the builder stage: sources (relative to the context) and
/// the destination (relative to `WORKDIR`).
#[derive(Debug)]
struct Copy {
    sources: Vec<String>,
    dest: String,
}

/// The `COPY` lines of the first stage (up to the second `FROM`), with
/// continuation lines joined. `COPY --from=...` copies from another stage,
/// not from the context, and is skipped.
fn builder_copies(dockerfile: &str) -> Vec<Copy> {
    let joined = dockerfile.replace("\\\n", " ");
    let mut froms = 0;
    let mut out = Vec::new();
    for line in joined.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next().map(str::to_ascii_uppercase).as_deref() {
            Some("FROM") => {
                froms += 1;
                if froms > 1 {
                    break;
                }
            }
            Some("COPY") => {
                let args: Vec<&str> = words.collect();
                if args.iter().any(|a| a.starts_with("--from")) {
                    continue;
                }
                let args: Vec<String> = args
                    .into_iter()
                    .filter(|a| !a.starts_with("--"))
                    .map(String::from)
                    .collect();
                let (dest, sources) = args.split_last().expect("COPY needs a destination");
                out.push(Copy {
                    sources: sources.to_vec(),
                    dest: dest.clone(),
                });
            }
            _ => {}
        }
    }
    out
}

/// `.dockerignore` patterns (comments and blank lines skipped, trailing `/`
/// dropped). A path is ignored when a pattern matches it or one of its
/// parent directories; patterns are globs (`*`, `?`), as Docker's are.
fn ignored(patterns: &[glob::Pattern], rel: &Path) -> bool {
    rel.ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .any(|a| patterns.iter().any(|p| p.matches_path(a)))
}

fn dockerignore() -> Vec<glob::Pattern> {
    let text = std::fs::read_to_string(root().join(".dockerignore")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| glob::Pattern::new(l.trim_start_matches("./").trim_end_matches('/')).unwrap())
        .collect()
}

/// Copies `rel` (a file or directory of the repository) to `to`, leaving
/// out ignored paths. `cp -p`: unchanged mtimes let cargo reuse this
/// checkout's artifacts for files that are the same.
fn copy_tree(patterns: &[glob::Pattern], rel: &Path, to: &Path) {
    if ignored(patterns, rel) {
        return;
    }
    let from = root().join(rel);
    let meta = std::fs::metadata(&from)
        .unwrap_or_else(|e| panic!("COPY source {} is not in the context: {e}", rel.display()));
    if meta.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let name = entry.unwrap().file_name();
            copy_tree(patterns, &rel.join(&name), &to.join(&name));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let status = Command::new("cp")
            .arg("-p")
            .arg(&from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// The build context after the builder stage's `COPY` lines, in `dir`
/// (standing for `WORKDIR`), leaving out the copies `skip` names.
fn assemble(dir: &Path, skip: Option<&str>) {
    let patterns = dockerignore();
    for copy in builder_copies(&std::fs::read_to_string(root().join("Dockerfile")).unwrap()) {
        let into_dir = copy.dest.ends_with('/') || copy.sources.len() > 1;
        for src in &copy.sources {
            if Some(src.as_str()) == skip {
                continue;
            }
            let src_path = Path::new(src);
            let dest = dir.join(&copy.dest);
            let to = if into_dir {
                dest.join(src_path.file_name().unwrap())
            } else {
                dest
            };
            copy_tree(&patterns, src_path, &to);
        }
    }
}

fn cargo(dir: &Path, args: &[&str]) -> (bool, String) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run cargo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_dockerfile_copies_everything_the_build_needs() {
    let copies = builder_copies(&std::fs::read_to_string(root().join("Dockerfile")).unwrap());
    assert!(!copies.is_empty(), "no COPY in the builder stage");

    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("src");
    assemble(&ctx, None);
    let (ok, err) = cargo(
        &ctx,
        &["metadata", "--locked", "--offline", "--format-version", "1"],
    );
    assert!(ok, "cargo cannot resolve the Docker build context: {err}");
    let (ok, err) = cargo(
        &ctx,
        &["build", "--locked", "--offline", "--bin", "rampart"],
    );
    assert!(
        ok,
        "cargo cannot build rampart from the Docker build context: {err}"
    );
}

/// The check above can fail: without `vendor/` (the omission this test was
/// written for), cargo cannot even resolve the context.
#[test]
fn a_context_without_vendor_does_not_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("src");
    assemble(&ctx, Some("vendor"));
    let (ok, err) = cargo(
        &ctx,
        &["metadata", "--locked", "--offline", "--format-version", "1"],
    );
    assert!(!ok, "resolved without vendor/");
    assert!(err.contains("vendor"), "{err}");
}

#[test]
fn copy_lines_and_ignores_are_read_as_docker_reads_them() {
    let copies = builder_copies(
        "FROM a AS b\nCOPY x y ./\nCOPY --chown=1:1 \\\n  s ./s\nFROM c\nCOPY --from=b /z /z\nCOPY late /late\n",
    );
    let got: Vec<(Vec<String>, String)> = copies.into_iter().map(|c| (c.sources, c.dest)).collect();
    assert_eq!(
        got,
        [
            (vec!["x".to_string(), "y".to_string()], "./".to_string()),
            (vec!["s".to_string()], "./s".to_string()),
        ]
    );
    let patterns: Vec<glob::Pattern> = ["target", "certs-example/out", "*.log"]
        .iter()
        .map(|p| glob::Pattern::new(p).unwrap())
        .collect();
    assert!(ignored(&patterns, Path::new("target/debug/rampart")));
    assert!(ignored(&patterns, Path::new("certs-example/out/ca.pem")));
    assert!(ignored(&patterns, Path::new("x.log")));
    assert!(!ignored(
        &patterns,
        Path::new("certs-example/make-certs.sh")
    ));
    assert!(!ignored(&patterns, Path::new("src/main.rs")));
}
