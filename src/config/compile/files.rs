//! Directories a route serves: a `static` route's, and the `try_files`
//! root of an upstream route (files first, then the app).

use std::path::Path;

use http::HeaderValue;

use super::Compiler;
use crate::config::defaults;
use crate::config::file;
use crate::config::reader::Spanned;
use crate::config::snapshot::Static;

/// A `static` route's directory and its settings; `for_try_files`: an
/// upstream route's `try_files`, where `index = false` (no directory
/// index) is allowed.
pub(super) fn static_files(
    cx: &mut Compiler<'_, '_>,
    ro: &file::Route,
    for_try_files: bool,
    s: &file::Static,
    span: &Spanned<()>,
) -> Option<Static> {
    let root = cx.path(&s.root.as_ref()?.v);
    let dir = cx.world.dir(&root).map(Path::to_path_buf);
    if dir.is_none() {
        cx.warnings.push(format!(
            "static root {} is not a directory now; its route answers 404 until it exists",
            root.display()
        ));
    }
    let index = s
        .index
        .as_ref()
        .map(|i| i.v.clone())
        .unwrap_or_else(|| defaults::STATIC_INDEX.into());
    if index.contains('/') {
        cx.err(&span.span, "static.index must be a file name, not a path");
    }
    if index.is_empty() && !for_try_files {
        cx.err(
            &span.span,
            "index = false applies to try_files only (a static route needs an index name)",
        );
    }
    let cache_control = s.expires.map(|e| {
        let mut v = format!("public, max-age={}", e.as_secs());
        if s.immutable.unwrap_or(false) {
            v.push_str(", immutable");
        }
        HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("public"))
    });
    // A prefix route serves the rest of the path (nginx `alias`);
    // exact and regex routes serve the whole path under root.
    let strip = match &ro.matcher {
        Some(file::Matcher::Prefix(p)) => p.v.len(),
        _ => 0,
    };
    let root = dir.unwrap_or(root);
    let fallback = s.fallback.as_ref().and_then(|f| {
        let inside = !f.v.is_empty()
            && !f.v.starts_with('/')
            && !f.v.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..");
        if !inside {
            cx.err(&f.span, format!("static.fallback \"{}\": a file under root, as a relative path such as \"index.html\"", f.v));
        }
        inside.then(|| f.v.clone())
    });
    Some(Static {
        root,
        fallback,
        expires: s.expires,
        immutable: s.immutable.unwrap_or(false),
        index,
        cache_control,
        strip,
        dotfiles: s.dotfiles.unwrap_or(defaults::STATIC_DOTFILES),
    })
}

/// An upstream route's `try_files`: a directory whose files answer GET and
/// HEAD before the upstream is asked. The whole request path is looked up
/// under `root` (nginx `root`, not `alias`).
pub(super) fn try_files(
    cx: &mut Compiler<'_, '_>,
    ro: &file::Route,
    rname: &str,
    is_upstream: bool,
) -> Option<Static> {
    let (s, span) = ro.try_files.as_ref()?;
    if !is_upstream {
        cx.err(
            &span.span,
            format!("route \"{rname}\": try_files applies only to upstream routes (a static route serves its files already)"),
        );
        return None;
    }
    if s.fallback.is_some() || s.dotfiles.is_some() {
        cx.err(
            &span.span,
            format!("route \"{rname}\": try_files takes root, index, expires and immutable (what has no file goes to the upstream)"),
        );
    }
    let mut st = static_files(cx, ro, true, s, span)?;
    st.strip = 0;
    Some(st)
}
