//! rampart: an edge gateway on pingora.
//!
//! The configuration is parsed once into an immutable, compiled
//! [`config::Snapshot`] published through an `ArcSwap` ([`runtime`]); the one
//! `ProxyHttp` implementation ([`proxy`]) reads the current snapshot per
//! request and calls into the module that owns each concern: [`routing`]
//! picks the server and route, [`upstream`] the server to proxy to,
//! [`headers`] shapes what goes up and comes back, [`respond`] writes
//! rampart's own answers, [`metrics`] and [`access_log`] observe.
//! State that must survive a reload lives in [`runtime::Carried`], keyed by
//! name. `ARCHITECTURE.md` has the map.

#![forbid(unsafe_code)]

pub mod accept;
pub mod access_list;
pub mod access_log;
pub mod acme;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod compression;
pub mod config;
pub mod conn_limit;
pub mod cors;
pub mod error_pages;
pub mod file_index;
pub mod head_deadline;
pub mod headers;
pub mod import;
pub mod lifecycle;
pub mod listeners;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod ratelimit;
pub mod request_path;
pub mod respond;
pub mod rewrite;
pub mod routing;
pub mod runtime;
pub mod runtime_dir;
pub mod sanitize;
pub mod server;
pub mod short_hash;
pub mod static_files;
pub mod sweeper;
pub mod tls;
pub mod tunnel;
pub mod upstream;
