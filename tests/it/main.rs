//! The integration tests: the real `rampart` binary on loopback against
//! real peers (HTTP, TLS, WebSocket and h2 clients and origins, raw sockets
//! for malformed input). One test binary with a module per concern, so CI
//! links one executable instead of one per file; `common` is the harness.

mod common;

mod access_log;
mod acme;
mod auth;
mod browser;
mod buffering;
mod compression;
mod conn_limit;
mod corpus;
mod cors;
mod differential;
mod dockerfile;
mod edge;
mod error_pages;
mod h2;
mod import_nginx;
mod proxy;
mod ratelimit;
mod ratelimit_model;
mod reload;
mod rewrite_access;
mod shared_ratelimit;
mod static_files;
mod tls;
mod try_files;
mod unix_upstream;
mod upstream_names;
mod upstreams;
mod vendor_series;
mod websocket;
