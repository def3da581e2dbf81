//! Announcing the server on the LAN, so people type `http://hallway.local:8088/` instead of
//! an address: a small office has no DNS server to edit.
//!
//! mDNS (RFC 6762) answers for the host name, `NAME.local`, with the server's LAN addresses;
//! DNS-SD (RFC 6763) lists an `_http._tcp` service "Hallway on HOST" with TXT records (path,
//! version, https) for browsers and tools that browse for services. mdns-sd runs the
//! responder on a thread of its own. Before claiming a name it probes the LAN; a name
//! another machine already answers for gets a suffix (`hallway-2.local`), and the name in use
//! is whatever the responder announced last (`Announcer::name`), shown on the console and
//! the admin page.
//!
//! A server listening on loopback only is not announced: nobody else could reach it. On
//! shutdown the service is withdrawn with a goodbye (records with a time to live of zero), so
//! browsers drop it at once rather than when their cache expires.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceInfo};

/// The host name announced unless `--name` says otherwise.
pub const DEFAULT_NAME: &str = "hallway";

/// A name to announce: one DNS label (letters, digits, inner hyphens, at most 63), given with
/// or without `.local`; kept in lower case, as mDNS compares names without case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostName(String);

impl FromStr for HostName {
    type Err = String;

    fn from_str(s: &str) -> Result<HostName, String> {
        let label = s.trim_end_matches('.').strip_suffix(".local").unwrap_or(s.trim_end_matches('.'));
        let label = label.to_ascii_lowercase();
        let well_formed = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !well_formed {
            return Err(format!(
                "{s:?} cannot be a name on the LAN: use letters, digits and inner hyphens, at most 63 (for example \"hallway\" or \"chat-2nd-floor\")"
            ));
        }
        Ok(HostName(label))
    }
}

impl std::fmt::Display for HostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.local", self.0)
    }
}

impl Default for HostName {
    fn default() -> HostName {
        HostName(DEFAULT_NAME.to_string())
    }
}

/// What to announce, from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub name: HostName,
    /// Interfaces to announce on, by name; empty: every one but loopback.
    pub interfaces: Vec<String>,
    /// Whether the server serves HTTPS (the service is then `_https._tcp`).
    pub https: bool,
}

/// The host name in use, once the responder has announced it.
#[derive(Default)]
struct InUse {
    name: Mutex<Option<String>>,
    announced: Condvar,
}

/// The name being announced, to read from anywhere (the console, the admin page).
#[derive(Clone)]
pub struct NameInUse {
    in_use: Arc<InUse>,
    wanted: String,
}

impl NameInUse {
    /// The host name in use (`hallway.local`, or `hallway-2.local` when the first was
    /// taken); the wanted one until the responder has announced.
    pub fn get(&self) -> String {
        self.in_use.name.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_else(|| self.wanted.clone())
    }

    /// Blocks up to `timeout` for the first announcement (probing the name takes about a
    /// second), then returns the name in use.
    pub fn settled(&self, timeout: Duration) -> String {
        let name = self.in_use.name.lock().unwrap_or_else(|e| e.into_inner());
        let (name, _) =
            self.in_use.announced.wait_timeout_while(name, timeout, |name| name.is_none()).unwrap_or_else(|e| e.into_inner());
        name.clone().unwrap_or_else(|| self.wanted.clone())
    }
}

/// A running announcement; `goodbye` withdraws it.
pub struct Announcer {
    daemon: ServiceDaemon,
    service: String,
    name: NameInUse,
}

impl Announcer {
    /// Starts announcing the server listening on `addr`; `None` when it listens on loopback
    /// only, where an announcement would send people to an address they cannot reach.
    pub fn start(addr: SocketAddr, options: &Options) -> Result<Option<Announcer>, mdns_sd::Error> {
        if addr.ip().is_loopback() {
            tracing::info!(%addr, "listening on loopback only: not announcing on the LAN");
            return Ok(None);
        }
        let daemon = ServiceDaemon::new()?;
        // Rules apply in order, the last match winning: no loopback, and only the address
        // family (or the one address) that the server listens on.
        daemon.disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
        match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => daemon.disable_interface(IfKind::IPv6)?,
            ip if ip.is_unspecified() => {}
            ip => {
                daemon.disable_interface(IfKind::All)?;
                daemon.enable_interface(IfKind::Addr(ip))?;
            }
        }
        if !options.interfaces.is_empty() {
            daemon.disable_interface(IfKind::All)?;
            daemon.enable_interface(options.interfaces.iter().map(|name| IfKind::Name(name.clone())).collect::<Vec<_>>())?;
            if addr.ip().is_unspecified() && addr.is_ipv4() {
                daemon.disable_interface(IfKind::IPv6)?;
            }
        }

        let in_use = Arc::new(InUse::default());
        let events = daemon.monitor()?;
        let watcher = in_use.clone();
        let wanted = options.name.to_string();
        let wanted_for_log = wanted.clone();
        std::thread::Builder::new()
            .name("mdns-events".into())
            .spawn(move || {
                // Ends when the responder shuts down and closes the channel.
                while let Ok(event) = events.recv() {
                    match event {
                        DaemonEvent::Announce(_, at) => {
                            let Some((host, _interface)) = at.split_once(':') else { continue };
                            let host = host.trim_end_matches('.').to_string();
                            let mut name = watcher.name.lock().unwrap_or_else(|e| e.into_inner());
                            if name.as_deref() != Some(host.as_str()) {
                                if host != wanted_for_log {
                                    tracing::warn!(wanted = %wanted_for_log, name = %host, "the name is taken on the LAN; announcing a suffixed one");
                                }
                                tracing::info!(name = %host, "announced on the LAN over mDNS");
                                *name = Some(host);
                            }
                            watcher.announced.notify_all();
                        }
                        DaemonEvent::Error(e) => tracing::warn!(error = %e, "mDNS responder error"),
                        _ => {}
                    }
                }
            })
            .map_err(|e| mdns_sd::Error::Msg(format!("cannot start the mDNS event thread: {e}")))?;

        let (kind, https) = if options.https { ("_https._tcp.local.", "1") } else { ("_http._tcp.local.", "0") };
        let instance = format!("Hallway on {}", machine_name());
        let properties = [("path", "/"), ("version", env!("CARGO_PKG_VERSION")), ("https", https)];
        let ips: &[IpAddr] = &[];
        let info = match addr.ip() {
            ip if ip.is_unspecified() => {
                ServiceInfo::new(kind, &instance, &format!("{wanted}."), ips, addr.port(), &properties[..])?.enable_addr_auto()
            }
            ip => ServiceInfo::new(kind, &instance, &format!("{wanted}."), ip, addr.port(), &properties[..])?,
        };
        let service = info.get_fullname().to_string();
        daemon.register(info)?;
        tracing::info!(name = %wanted, port = addr.port(), "announcing on the LAN over mDNS (probing the name first)");
        Ok(Some(Announcer { daemon, service, name: NameInUse { in_use, wanted } }))
    }

    /// The name being announced.
    pub fn name(&self) -> NameInUse {
        self.name.clone()
    }

    /// Withdraws the service (a goodbye on every interface) and stops the responder.
    /// Blocks for at most about two seconds.
    pub fn goodbye(self) {
        match self.daemon.unregister(&self.service) {
            Ok(done) => {
                if done.recv_timeout(Duration::from_secs(1)).is_err() {
                    tracing::warn!("the mDNS goodbye was not confirmed in time");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not withdraw the mDNS announcement"),
        }
        if let Ok(stopped) = self.daemon.shutdown() {
            let _ = stopped.recv_timeout(Duration::from_secs(1));
        }
        tracing::info!("withdrew the mDNS announcement");
    }
}

/// The addresses people can reach a server listening on `listen` at, loopback left out: the
/// one address, or for an unspecified one every interface's of its family (IPv6 link-local
/// addresses too, which only work with a zone).
pub fn lan_addresses(listen: SocketAddr) -> Vec<IpAddr> {
    if !listen.ip().is_unspecified() {
        return if listen.ip().is_loopback() { vec![] } else { vec![listen.ip()] };
    }
    let Ok(interfaces) = if_addrs::get_if_addrs() else { return vec![] };
    interfaces
        .iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() == listen.is_ipv4() || listen.is_ipv6())
        .collect()
}

/// This machine's host name, for the service's name ("Hallway on frontdesk").
fn machine_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if ok && !name.is_empty() => name.split('.').next().unwrap_or(name).to_string(),
        _ => "this machine".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_one_label_with_or_without_local() {
        assert_eq!("hallway".parse::<HostName>().unwrap().to_string(), "hallway.local");
        assert_eq!("Chat-2nd-Floor.local".parse::<HostName>().unwrap().to_string(), "chat-2nd-floor.local");
        assert_eq!("hallway.local.".parse::<HostName>().unwrap().to_string(), "hallway.local");
        for bad in ["", "-chat", "chat-", "two.labels", "spa ce", "ünï", &"x".repeat(64)] {
            assert!(bad.parse::<HostName>().is_err(), "{bad:?} should be refused");
        }
    }
}
