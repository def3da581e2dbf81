//! Every server option once, with its default. Flags and `HALLWAY_*` environment variables
//! (declared in `cli.rs`) fill a `Config`; flags win. A config file comes with the admin issue.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::limits::RateLimits;

/// The port Hallway serves on when none is given.
pub const DEFAULT_PORT: u16 = 8088;
/// The data file, in the working directory, when none is given.
pub const DEFAULT_DATA: &str = "hallway.redb";
/// Largest WebSocket frame or REST body accepted, in bytes.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct Config {
    /// The one data file: accounts, conversations, history.
    pub data: PathBuf,
    /// Largest frame or request body; bigger ones get a `too_large` error.
    pub max_frame: usize,
    /// Announce the server over mDNS (the discovery issue gives this meaning).
    pub mdns: bool,
    /// What one client may send (`limits.rs`; docs/protocol.md lists the defaults).
    pub limits: RateLimits,
}

impl Config {
    pub fn new(data: PathBuf) -> Config {
        Config { data, max_frame: DEFAULT_MAX_FRAME, mdns: false, limits: RateLimits::default() }
    }
}

pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
}
