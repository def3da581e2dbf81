//! Every server option once, with its default. Flags and `HALLWAY_*` environment variables
//! (declared in `cli.rs`) fill a `Config`; flags win. A config file comes with the admin issue.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::core::records::Policy;
use crate::limits::RateLimits;

/// The port Hallway serves on when none is given.
pub const DEFAULT_PORT: u16 = 8088;
/// The data file, in the working directory, when none is given.
pub const DEFAULT_DATA: &str = "hallway.redb";
/// Largest WebSocket frame or REST body accepted, in bytes.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;
/// Largest file one may attach, in bytes: 10 MB (a phone photo or a long PDF).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10_000_000;
/// Seconds a client has to send a request's headers (from the first byte, or from connecting).
/// A browser sends them in one packet; 10 s is generous on Wi-Fi, and a slowloris client that
/// trickles a byte at a time is cut off.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Seconds an idle keep-alive connection (no request) stays open. Browsers reuse one within
/// seconds and keep their own idle sockets up to 5 minutes; a closed one costs them only a
/// new handshake on the LAN.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Connections open at once, WebSockets included (300 people with a few tabs and devices each,
/// a tab being a WebSocket plus up to 6 HTTP connections, stay well under it).
pub const DEFAULT_MAX_CONNECTIONS: usize = 8_000;
/// Connections open at once from one address. Offices share NAT and Wi-Fi addresses, so this
/// is high: it stops one machine, not one office.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 500;
/// Failed sign-ins one address may make at once (browsers without a device cookie): a whole
/// office behind one NAT address mistyping passwords on a Monday stays under it.
pub const DEFAULT_SIGNIN_ADDRESS_BURST: u32 = 20;
/// Seconds for one more failed sign-in from an address once its burst is spent: 1,200 a
/// hour at most, against 36-60 a second unrefused before.
pub const DEFAULT_SIGNIN_ADDRESS_REFILL_SECS: u64 = 3;

/// Days a session may go unused before it ends (its browser must sign in again). A laptop
/// back from a holiday of three weeks still opens the chat; a browser left behind does not.
pub const DEFAULT_SESSION_IDLE_DAYS: u64 = 30;

/// How long a message that is not recorded stays in memory, so that a tab that lost its
/// connection for a moment (Wi-Fi, a laptop lid) still gets it.
pub const DEFAULT_RECORDS_BUFFER: Duration = Duration::from_secs(5 * 60);

/// Scheduled backups kept when `--backup-dir` is given without `--backup-keep`.
pub const DEFAULT_BACKUP_KEEP: &str = "7 daily, 4 weekly";

#[derive(Clone, Debug)]
pub struct Config {
    /// The one data file: accounts, conversations, history.
    pub data: PathBuf,
    /// Largest frame or request body; bigger ones get a `too_large` error.
    pub max_frame: usize,
    /// Largest file one may attach (bigger ones are refused with 413 before they are read).
    pub max_file_size: u64,
    /// What to announce on the LAN over mDNS (`discovery.rs`); `None`: nothing.
    pub mdns: Option<crate::discovery::Options>,
    /// What one client may send (`limits.rs`; docs/protocol.md lists the defaults).
    pub limits: RateLimits,
    /// Time to send a request's headers; a connection that has not is closed.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit without a request.
    pub idle_timeout: Duration,
    /// Connections at once (0: only the open-file limit); past it a 503 `too_many_connections`.
    pub max_connections: usize,
    /// Connections at once from one address, an IPv6 /64 (0: no cap); past it the same 503.
    pub max_connections_per_address: usize,
    /// Failed sign-ins an address may make at once, without a device cookie.
    pub signin_address_burst: u32,
    /// Time for one more once they are spent.
    pub signin_address_refill: Duration,
    /// What is kept (`core::records`): off, keep, retain:DAYS or archive; the admin page's
    /// choice, kept in the data file, takes its place unless `records_fixed`.
    pub records: Policy,
    /// `records` was set by the configuration: the admin page cannot change it.
    pub records_fixed: bool,
    /// How long messages that are not recorded stay in memory for catching up.
    pub records_buffer: Duration,
    /// Checked backups into a folder, with rotation (`backups.rs`); none by default.
    pub backup: Option<crate::backups::Schedule>,
    /// A second address that serves `/metrics` without sign-in (none: admins only, on the
    /// main address).
    pub metrics_listen: Option<SocketAddr>,
    /// How long a session may go unused before it ends.
    pub session_idle: Duration,
    /// How often open tabs note their sessions' use (an hour; tests shorten it).
    pub touch_every: Duration,
    /// HTTPS mode (`tls.rs`), with the LAN name its certificate carries; `None`: plain HTTP.
    pub https: Option<crate::discovery::HostName>,
    /// Tests only: the writer indexes nothing for search in the background, so a test sees
    /// the index as it was until it runs the steps itself (`Server::index_steps`).
    #[doc(hidden)]
    pub hold_index: bool,
}

impl Config {
    pub fn new(data: PathBuf) -> Config {
        Config {
            data,
            max_frame: DEFAULT_MAX_FRAME,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            mdns: None,
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            signin_address_burst: DEFAULT_SIGNIN_ADDRESS_BURST,
            signin_address_refill: Duration::from_secs(DEFAULT_SIGNIN_ADDRESS_REFILL_SECS),
            limits: RateLimits::default(),
            records: Policy::Keep,
            records_fixed: false,
            records_buffer: DEFAULT_RECORDS_BUFFER,
            backup: None,
            metrics_listen: None,
            session_idle: Duration::from_secs(DEFAULT_SESSION_IDLE_DAYS * 24 * 3600),
            touch_every: Duration::from_millis(crate::auth::TOUCH_EVERY_MS),
            https: None,
            hold_index: false,
        }
    }
}

impl Config {
    /// The options the chat core takes.
    pub fn hub_settings(&self) -> crate::core::Settings {
        crate::core::Settings {
            max_frame: self.max_frame,
            max_file_size: self.max_file_size,
            limits: self.limits.clone(),
            records: self.records,
            records_fixed: self.records_fixed,
            records_buffer: self.records_buffer,
            clock: crate::model::Clock::default(),
            touch_every: self.touch_every,
        }
    }
}

pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
}
