//! Test harness: real loopback origins and the real `rampart` binary, one
//! file per kind of peer; everything is re-exported flat (`use
//! crate::common::*`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

mod auth_service;
mod clients;
mod config;
mod dropper;
mod gateway;
mod origin;
mod pebble;
mod ports;
mod raw;
mod redis;
mod sse;
mod tls;
mod unix_origin;
mod websocket;

pub use auth_service::*;
pub use clients::*;
pub use config::*;
pub use dropper::*;
pub use gateway::*;
pub use origin::*;
pub use pebble::*;
pub use ports::*;
pub use raw::*;
pub use redis::*;
pub use sse::*;
pub use tls::*;
pub use unix_origin::*;
pub use websocket::*;
