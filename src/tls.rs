//! HTTPS mode (`--https`): the office's own certificate authority and the server's
//! certificate, so that browsers give the chat a secure context (desktop notifications need
//! one) without a public domain or an IT department.
//!
//! The authority is made once and kept beside the data file (`DATA.tls/ca.key`, `ca.pem`,
//! mode 0600 in a 0700 folder): people install `ca.pem` once (the `/ca` page), and every
//! server certificate after that is trusted. Its name constraints let it vouch only for
//! `.local` names, `localhost` and private, loopback and link-local addresses, so a copy of
//! its key cannot be used to impersonate any site on the internet. The server certificate is
//! issued afresh at each start (`server.pem`, `server.key`, for the operator to inspect), for
//! 397 days (the most Apple's platforms accept), and again when 30 days are left or when the
//! names it must carry change: the mDNS name in use and every LAN address.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const CA_YEARS: i64 = 10;
const SERVER_DAYS: u64 = 397;
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The names a server certificate must carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl Names {
    /// `dns` and `ips` sorted and without repeats; addresses the authority may not vouch
    /// for (public ones) are left out, with a log line.
    pub fn new(dns: impl IntoIterator<Item = String>, ips: impl IntoIterator<Item = IpAddr>) -> Names {
        let mut dns: Vec<String> = dns.into_iter().map(|n| n.trim_end_matches('.').to_ascii_lowercase()).collect();
        dns.retain(|n| n == "localhost" || n.ends_with(".local"));
        dns.sort();
        dns.dedup();
        let mut ips: Vec<IpAddr> = ips.into_iter().map(|ip| ip.to_canonical()).collect();
        ips.sort();
        ips.dedup();
        ips.retain(|ip| {
            let private = may_vouch_for(*ip);
            if !private {
                tracing::warn!(%ip, "a public address is not in the HTTPS certificate (the local CA vouches only for private addresses); people use the .local name or a private address");
            }
            private
        });
        Names { dns, ips }
    }

    fn all(&self) -> Vec<String> {
        self.dns.iter().cloned().chain(self.ips.iter().map(IpAddr::to_string)).collect()
    }
}

/// The address ranges in the authority's name constraints.
fn private_ranges() -> Vec<(IpAddr, u8)> {
    let v4 = |a, b, c, d, prefix| (IpAddr::from([a, b, c, d]), prefix);
    vec![
        v4(10, 0, 0, 0, 8),
        v4(172, 16, 0, 0, 12),
        v4(192, 168, 0, 0, 16),
        v4(169, 254, 0, 0, 16),
        v4(127, 0, 0, 0, 8),
        // Carrier-grade NAT space, which overlay VPNs (Tailscale) hand out.
        v4(100, 64, 0, 0, 10),
        (IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
        (IpAddr::from([0xfc00u16, 0, 0, 0, 0, 0, 0, 0]), 7),
        (IpAddr::from([0xfe80u16, 0, 0, 0, 0, 0, 0, 0]), 10),
    ]
}

fn may_vouch_for(ip: IpAddr) -> bool {
    private_ranges().iter().any(|&(net, prefix)| in_range(ip, net, prefix))
}

fn in_range(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The certificate authority and the certificate being served.
pub struct Tls {
    dir: PathBuf,
    ca_key: KeyPair,
    ca_params: CertificateParams,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    serving: Arc<Serving>,
    issued: Mutex<Issued>,
}

struct Issued {
    names: Names,
    expires: SystemTime,
}

impl Tls {
    /// Loads the authority kept beside `data` (making it on first use) and issues a server
    /// certificate for `names`.
    pub fn open(data: &Path, names: Names) -> anyhow::Result<Tls> {
        let dir = folder_of(data);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {} for the HTTPS certificates", dir.display()))?;
        let (ca_key, ca_params, ca_pem) = load_or_make_ca(&dir)?;
        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("{}: not a certificate ({e:?})", dir.join("ca.pem").display()))?
            .into_owned();
        let (key, expires) = issue(&dir, &ca_key, &ca_params, &names, SystemTime::now())?;
        let tls = Tls {
            dir,
            ca_key,
            ca_params,
            ca_pem,
            ca_der,
            serving: Arc::new(Serving(RwLock::new(key))),
            issued: Mutex::new(Issued { names, expires }),
        };
        tracing::info!(dir = %tls.dir.display(), fingerprint = %tls.fingerprint(), "serving HTTPS with the local certificate authority");
        Ok(tls)
    }

    /// What accepts TLS connections; it picks up renewed certificates by itself.
    pub fn acceptor(&self) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("setting up TLS")?
            .with_no_client_auth()
            .with_cert_resolver(self.serving.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// The authority's certificate, as people download it.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The SHA-256 of the authority's certificate, as operating systems show it
    /// (`AB:CD:...`), for people to compare with what they installed.
    pub fn fingerprint(&self) -> String {
        hex_pairs(&Sha256::digest(&self.ca_der))
    }

    /// The SHA-1 "thumbprint", which is what Windows' certificate dialog shows.
    pub fn thumbprint(&self) -> String {
        hex_pairs(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.ca_der).as_ref())
    }

    /// Where the certificates are kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The names the certificate being served carries.
    pub fn names(&self) -> Names {
        self.issued.lock().unwrap_or_else(|e| e.into_inner()).names.clone()
    }

    /// Issues a new server certificate if `names` differ from the current one's or it
    /// expires within 30 days of `now`; returns whether it did.
    pub fn refresh(&self, names: Names, now: SystemTime) -> anyhow::Result<bool> {
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let expiring = issued.expires.duration_since(now).unwrap_or_default() < RENEW_BEFORE;
        if issued.names == names && !expiring {
            return Ok(false);
        }
        let (key, expires) = issue(&self.dir, &self.ca_key, &self.ca_params, &names, now)?;
        *self.serving.0.write().unwrap_or_else(|e| e.into_inner()) = key;
        tracing::info!(names = ?names.all(), expiring, "issued a new HTTPS certificate");
        *issued = Issued { names, expires };
        Ok(true)
    }
}

fn hex_pairs(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// `DATA.tls`, beside the data file.
pub fn folder_of(data: &Path) -> PathBuf {
    let mut name = data.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "hallway".into());
    name.push(".tls");
    data.with_file_name(name)
}

/// The authority's key, its parameters (what signing needs) and its certificate. The
/// parameters are made again from the key alone: its name carries the key's fingerprint, so
/// two offices' authorities are told apart in a trust store, and nothing else is needed to
/// go on signing after a restart.
fn load_or_make_ca(dir: &Path) -> anyhow::Result<(KeyPair, CertificateParams, String)> {
    let key_path = dir.join("ca.key");
    let cert_path = dir.join("ca.pem");
    let key = match fs::read_to_string(&key_path) {
        Ok(pem) => KeyPair::from_pem(&pem).map_err(|e| anyhow::anyhow!("{}: not a key ({e})", key_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = KeyPair::generate().context("making the certificate authority's key")?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            // A new key makes any earlier certificate useless.
            let _ = fs::remove_file(&cert_path);
            tracing::info!(path = %key_path.display(), "made a new local certificate authority for HTTPS");
            key
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", key_path.display())),
    };
    let params = ca_params(&key);
    let pem = match fs::read_to_string(&cert_path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pem = params.self_signed(&key).context("signing the certificate authority")?.pem();
            write_private(&cert_path, pem.as_bytes())?;
            pem
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", cert_path.display())),
    };
    Ok((key, params, pem))
}

fn ca_params(key: &KeyPair) -> CertificateParams {
    let id: String = Sha256::digest(key.public_key_raw()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("Hallway local CA {id}"));
    name.push(DnType::OrganizationName, "Hallway office chat");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let mut permitted = vec![GeneralSubtree::DnsName("local".into()), GeneralSubtree::DnsName("localhost".into())];
    permitted.extend(
        private_ranges().into_iter().map(|(net, prefix)| GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(net, prefix))),
    );
    params.name_constraints = Some(NameConstraints { permitted_subtrees: permitted, excluded_subtrees: vec![] });
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365 * CA_YEARS);
    params
}

/// Signs a server certificate for `names`, writes it beside the authority, and returns it
/// ready to serve with its expiry.
fn issue(
    dir: &Path,
    ca_key: &KeyPair,
    ca_params: &CertificateParams,
    names: &Names,
    now: SystemTime,
) -> anyhow::Result<(Arc<CertifiedKey>, SystemTime)> {
    let key = KeyPair::generate().context("making the server's key")?;
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, names.dns.first().cloned().unwrap_or_else(|| "hallway.local".into()));
    subject.push(DnType::OrganizationName, "Hallway office chat");
    params.distinguished_name = subject;
    params.subject_alt_names = names
        .dns
        .iter()
        .map(|name| Ok(SanType::DnsName(name.clone().try_into()?)))
        .chain(names.ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
        .collect::<Result<_, rcgen::Error>>()
        .context("naming the server certificate")?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
    let now_utc = OffsetDateTime::from(now);
    // A little in the past, for clients whose clock is a few minutes behind.
    params.not_before = now_utc - time::Duration::hours(1);
    params.not_after = now_utc + time::Duration::days(SERVER_DAYS as i64);
    let expires = now + Duration::from_secs(SERVER_DAYS * 24 * 3600);
    let issuer = Issuer::from_params(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).context("signing the server certificate")?;
    write_private(&dir.join("server.pem"), cert.pem().as_bytes())?;
    write_private(&dir.join("server.key"), key.serialize_pem().as_bytes())?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&der).context("loading the server's key for TLS")?;
    Ok((Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)), expires))
}

/// Writes `bytes` to `path` whole (through a temporary file renamed over it), mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// The certificate handed to every TLS handshake; `Tls::refresh` swaps it.
#[derive(Debug)]
struct Serving(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Serving {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_vouches_only_for_private_addresses() {
        for ip in [
            "10.1.2.3",
            "172.16.0.9",
            "172.31.255.1",
            "192.168.1.20",
            "127.0.0.1",
            "169.254.3.4",
            "100.100.1.1",
            "::1",
            "fd00::5",
            "fe80::1",
        ] {
            assert!(may_vouch_for(ip.parse().unwrap()), "{ip} is private");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "192.169.0.1", "2001:db8::1", "1.1.1.1"] {
            assert!(!may_vouch_for(ip.parse().unwrap()), "{ip} is public");
        }
        let names = Names::new(
            ["Hallway.local.".to_string(), "example.com".to_string(), "localhost".to_string()],
            ["8.8.8.8".parse().unwrap(), "10.0.0.2".parse().unwrap()],
        );
        assert_eq!(names.dns, ["hallway.local", "localhost"]);
        assert_eq!(names.ips, ["10.0.0.2".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn the_authority_outlives_a_restart_and_certificates_renew_before_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("hallway.redb");
        let names = Names::new(["hallway.local".to_string()], ["127.0.0.1".parse().unwrap()]);
        let first = Tls::open(&data, names.clone()).unwrap();
        let fingerprint = first.fingerprint();
        drop(first);
        let tls = Tls::open(&data, names.clone()).unwrap();
        assert_eq!(tls.fingerprint(), fingerprint, "a restart keeps the authority people installed");
        for file in ["ca.key", "ca.pem", "server.pem", "server.key"] {
            let mode = fs::metadata(folder_of(&data).join(file)).unwrap().permissions();
            assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600, "{file}");
        }
        let now = SystemTime::now();
        assert!(!tls.refresh(names.clone(), now).unwrap(), "nothing changed");
        assert!(tls.refresh(names.clone(), now + Duration::from_secs(370 * 24 * 3600)).unwrap(), "30 days before expiry");
        let moved = Names::new(["hallway-2.local".to_string()], ["192.168.1.7".parse().unwrap()]);
        assert!(tls.refresh(moved.clone(), now).unwrap(), "a new name or address");
        assert_eq!(tls.names(), moved);
    }
}
