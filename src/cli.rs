//! The command line: `run`, `check`, `import-nginx`, `--version`.
//! The only place that uses `anyhow`; everything below returns typed errors.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use pingora::server::RunArgs;

use crate::config::{self, snapshot::Action, Snapshot};

#[derive(Parser, Debug)]
#[command(
    name = "rampart",
    version,
    about = "An edge gateway: TLS, rate limits, WebSockets and upstream pools from one TOML file"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve with the configuration file.
    Run {
        #[arg(short, long, default_value = "conf/rampart.toml")]
        config: PathBuf,
        /// Take over the listening sockets of a running rampart (send it
        /// SIGUSR2 after starting this one): a restart without refusing a
        /// connection, for new listen addresses or a new binary.
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate the configuration file and print a summary (like `nginx -t`).
    Check {
        #[arg(short, long, default_value = "conf/rampart.toml")]
        config: PathBuf,
    },
    /// Translate an nginx.conf into rampart TOML on stdout; what could not be
    /// carried over is listed on stderr and marked in the output.
    ImportNginx {
        file: PathBuf,
        /// Look for the certificates and keys in this directory (by file
        /// name) instead of the paths the nginx file names.
        #[arg(long, value_name = "DIR")]
        cert_dir: Option<PathBuf>,
        /// Serve every static route from this directory instead of the
        /// nginx root/alias paths.
        #[arg(long, value_name = "DIR")]
        static_root: Option<PathBuf>,
        /// Write the configuration even when some locations cannot be
        /// translated (they are listed first on stderr); without it, such
        /// an import exits 2 and writes nothing.
        #[arg(long)]
        allow_partial: bool,
    },
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config } => check(&config),
        Cmd::Run { config, upgrade } => match run(&config, upgrade) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rampart: {e:#}");
                1
            }
        },
        Cmd::ImportNginx {
            file,
            cert_dir,
            static_root,
            allow_partial,
        } => import_nginx(
            &file,
            &crate::import::Options {
                cert_dir,
                static_root,
            },
            allow_partial,
        ),
    }
}

fn import_nginx(path: &Path, opts: &crate::import::Options, allow_partial: bool) -> i32 {
    match crate::import::import(path, opts) {
        Ok(out) if !out.changed.is_empty() && !allow_partial => {
            eprint!("{}", out.report());
            eprintln!(
                "rampart import-nginx: nothing written: the locations above would answer differently; \
                 change them in the nginx file, or pass --allow-partial to write the configuration anyway"
            );
            2
        }
        Ok(out) => {
            print!("{}", out.toml);
            eprint!("{}", out.report());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn check(path: &Path) -> i32 {
    match config::load(path) {
        Ok((cfg, warnings)) => {
            for w in &warnings {
                eprintln!("{}: warning: {w}", path.display());
            }
            print!("{}", summary(&cfg));
            println!("{}: configuration is valid", path.display());
            0
        }
        Err(d) => {
            eprintln!("{d}");
            eprintln!("{}: {} error(s)", path.display(), d.items.len());
            1
        }
    }
}

/// A one-screen overview of what the file configures.
pub fn summary(cfg: &Snapshot) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "listeners:");
    for l in &cfg.listeners {
        let names: Vec<&str> = cfg
            .servers
            .iter()
            .filter(|srv| srv.listen.contains(&l.addr))
            .map(|srv| srv.name.as_str())
            .collect();
        let proto = match (l.tls, l.http2) {
            (true, true) => "https (h2, http/1.1)",
            (true, false) => "https",
            _ => "http",
        };
        let _ = writeln!(
            s,
            "  {:<22} {:<20} servers: {}",
            l.addr,
            proto,
            names.join(", ")
        );
    }
    let _ = writeln!(s, "servers:");
    for srv in &cfg.servers {
        summarize_server(&mut s, cfg, srv);
    }
    let _ = writeln!(s, "upstreams:");
    for u in &cfg.upstreams {
        let servers: Vec<String> = u
            .servers
            .iter()
            .map(|x| {
                let mut t = x.addr.clone();
                if x.weight != 1 {
                    t.push_str(&format!(" weight={}", x.weight));
                }
                if x.backup {
                    t.push_str(" backup");
                }
                t
            })
            .collect();
        let _ = writeln!(
            s,
            "  {:<20} {:?}: {}",
            u.name,
            u.balance,
            servers.join(", ")
        );
    }
    summarize_policies(&mut s, cfg);
    if let Some(a) = cfg.admin {
        let _ = writeln!(s, "admin: http://{a}/metrics");
    }
    s
}

/// The rate-limit zones, the ACME settings and the auth tables of
/// [`summary`].
fn summarize_policies(s: &mut String, cfg: &Snapshot) {
    use std::fmt::Write;
    let _ = writeln!(s, "rate-limit zones:");
    for z in &cfg.zones {
        let _ = writeln!(
            s,
            "  {:<20} {} by {:?} ({})",
            z.name,
            z.rate,
            z.key,
            match &z.shared {
                Some(s) => format!("shared in Redis {}, on error {:?}", s.label, s.on_error),
                None => format!("max {} keys", z.max_keys),
            }
        );
    }
    if !cfg.auths.is_empty() {
        let _ = writeln!(s, "auth:");
    }
    for a in &cfg.auths {
        let what = match &a.method {
            crate::auth::Method::Htpasswd { users, .. } => {
                format!("htpasswd, {} user(s)", users.len())
            }
            crate::auth::Method::Forward(f) => {
                format!("forward to {}{}", f.host.to_str().unwrap_or("?"), f.path)
            }
        };
        let _ = writeln!(s, "  {:<20} {what}", a.name);
    }
    if let Some(a) = &cfg.acme {
        let _ = writeln!(
            s,
            "acme: {} ({:?}), storage {}, renewal {}d before expiry",
            a.directory,
            a.challenge,
            a.storage.display(),
            a.renew_before.as_secs() / 86_400
        );
    }
}

/// One server's lines of [`summary`]: its routes and where they go.
fn summarize_server(s: &mut String, cfg: &Snapshot, srv: &crate::config::snapshot::Server) {
    use std::fmt::Write;
    let extra = if srv.https_redirect.is_some() {
        " (redirects to https)"
    } else {
        ""
    };
    let _ = writeln!(s, "  {}{extra}: {} route(s)", srv.name, srv.routes.len());
    for r in srv.routes.routes() {
        let action = match &r.action {
            Action::Upstream(u) => format!("-> upstream {}", cfg.upstreams[*u].name),
            Action::Static(st) => format!("-> static {}", st.root.display()),
            Action::Respond { status, .. } => format!("-> respond {status}"),
            Action::Redirect { status, .. } => format!("-> redirect {status}"),
        };
        let zones: Vec<&str> = r
            .rate_limits
            .iter()
            .map(|z| cfg.zones[z.zone].name.as_str())
            .collect();
        let mut policies = Vec::new();
        if !zones.is_empty() {
            policies.push(format!("rate_limit: {}", zones.join(", ")));
        }
        if let Some(c) = r.conn_limit {
            policies.push(format!("conn_limit: {}", cfg.conn_limits[c].name));
        }
        if let Some(a) = r.auth {
            policies.push(format!("auth: {}", cfg.auths[a].name));
        }
        if !r.access.is_open() {
            policies.push("allow/deny".into());
        }
        let policies = match policies.is_empty() {
            true => String::new(),
            false => format!("  [{}]", policies.join("; ")),
        };
        let _ = writeln!(s, "    {:<32} {action}{policies}", r.name);
    }
}

fn run(path: &Path, upgrade: bool) -> anyhow::Result<()> {
    let early_hup = crate::lifecycle::guard_sighup_early();
    let (cfg, warnings) = match config::load(path) {
        Ok(ok) => ok,
        Err(d) => {
            eprintln!("{d}");
            anyhow::bail!("{} error(s) in {}", d.items.len(), path.display());
        }
    };
    crate::logging::init(&cfg.log.level, cfg.log.format);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let pid_file = cfg.global.pid_file.clone();
    crate::runtime_dir::ensure_private_parent(&cfg.global.upgrade_sock)
        .map_err(|e| anyhow::anyhow!("upgrade_sock {}: {e}", cfg.global.upgrade_sock.display()))?;
    let listeners: Vec<(String, bool)> = cfg
        .listeners
        .iter()
        .map(|l| (l.addr.to_string(), l.tls))
        .collect();
    let admin = cfg.admin;
    let access_log = cfg.log.access_log.clone();
    let state = crate::runtime::Runtime::new(cfg);
    state
        .carried
        .access_log
        .configure(&access_log)
        .map_err(|e| anyhow::anyhow!("cannot open access log {access_log:?}: {e}"))?;
    if upgrade {
        tracing::info!(
            "waiting for the running process's sockets on {}: send it SIGUSR2",
            state.current().cfg.global.upgrade_sock.display()
        );
    }
    let (server, reload_listeners) = crate::server::build(state.clone(), upgrade)?;
    if let Some(p) = &pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(|e| anyhow::anyhow!("cannot write pid_file {}: {e}", p.display()))?;
    }
    for (addr, tls) in &listeners {
        let scheme = if *tls { "https" } else { "http" };
        tracing::info!(addr = %addr, tls = *tls, "listening on {scheme}://{addr}");
    }
    if let Some(a) = admin {
        tracing::info!(addr = %a, "admin listening on http://{a}/metrics");
    }
    let state_for_exit = state.clone();
    let signals = crate::lifecycle::Signals {
        runtime: state,
        path: path.to_path_buf(),
        listeners: reload_listeners,
        pid_file: pid_file.clone(),
        early_hup,
    };
    server.run(RunArgs {
        shutdown_signal: Box::new(signals),
    });
    crate::lifecycle::exit(0, pid_file.as_deref(), &state_for_exit)
}
