//! Hallway: the office chat appliance. One binary serves a LAN office chat from one redb data
//! file, with the web client embedded.
//!
//! The map (see ARCHITECTURE.md for the path of a message):
//! - `server`: wiring and shutdown; `Server::start(listener, config)`.
//! - `http`: axum router: REST API, WebSocket upgrade, embedded web client.
//! - `session`: one WebSocket: read loop, write loop, protocol errors.
//! - `limits`: token buckets per tab and per person in front of the core.
//! - `protocol`: every wire frame as serde types.
//! - `core`: the chat core task: live state, membership, presence, fan-out.
//! - `store`: the redb data file: tables, versioned records, group-commit writer, migrations.
//! - `auth`: passwords, tokens, sign-in throttle. `model`: ids and naming rules.
//! - `ratelog`: one log line per burst for events that repeat quickly.
//! - `backups`: backups while the server runs; `control`: the Unix socket `hallway backup`
//!   reaches the running server through.
//! - `tls`: HTTPS mode's local certificate authority and server certificate.
//! - `metrics`: the figures of `GET /metrics` and their Prometheus text format.
//!
//! Dependencies point one way: http/session -> core -> store.

pub mod auth;
pub mod backups;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod control;
pub mod core;
pub mod discovery;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod ratelog;
pub mod server;
pub mod session;
pub mod store;
pub mod tls;

pub use config::Config;
pub use server::Server;
