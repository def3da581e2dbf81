//! Passwords, session tokens, the sign-in throttle and its device cookies. No HTTP here:
//! `http/auth.rs` uses it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use sha2::{Digest, Sha256};

use crate::limits::{Bucket, Rate};
use crate::model::now_millis;

pub const MIN_PASSWORD: usize = 8;
/// A session's cookie lasts this long in the browser; the server ends the session earlier
/// when it goes unused for the idle time (`--session-idle-days`).
pub const COOKIE_DAYS: u64 = 400;
/// A session's last use is written at most this often: the idle expiry counts days, and a
/// write per request would cost a commit each.
pub const TOUCH_EVERY_MS: u64 = 3600 * 1000;

/// The browser and system of a User-Agent header in words ("Firefox on Linux"), for the
/// list of one's sessions. The header itself is not kept.
pub fn device_label(user_agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(token, _)| user_agent.contains(token))
    .map(|(_, name)| name.to_string());
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| user_agent.contains(token))
    .map(|(_, name)| *name);
    let browser = browser.unwrap_or_else(|| {
        // A bot or a tool: its own first word ("curl/8.5" -> "curl").
        let word: String =
            user_agent.split(['/', ' ']).next().unwrap_or("").chars().filter(|c| c.is_ascii_graphic()).take(32).collect();
        if word.is_empty() { "Unknown browser".to_string() } else { word }
    });
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser,
    }
}

/// Password hashes computed at once. Each takes argon2's 19 MiB and a core for tens of
/// milliseconds: a burst of sign-ins waits here instead of exhausting memory.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `hash_password` off the async threads, at most `HASHING` at a time.
pub async fn hash_password_async(password: String) -> Result<String, String> {
    big_allocations_return_to_the_system();
    let _permit = HASHING.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || after_hashing(hash_password(&password))).await.map_err(|e| e.to_string())?
}

/// A turn to hash, at most `HASHING` at once. Sign-in takes its turn before the throttle
/// counts the attempt, so that sign-ins waiting for a turn hold none of their address's
/// budget: an office signing in at once from one address is not refused, while a guesser's
/// queued attempts are each checked against the budget when their turn comes.
pub async fn hashing_turn() -> Option<tokio::sync::SemaphorePermit<'static>> {
    HASHING.acquire().await.ok()
}

/// `verify_password` off the async threads, in a turn taken with `hashing_turn`.
pub async fn verify_password_in_turn(_turn: tokio::sync::SemaphorePermit<'static>, password: String, phc: String) -> bool {
    big_allocations_return_to_the_system();
    tokio::task::spawn_blocking(move || after_hashing(verify_password(&password, &phc))).await.unwrap_or(false)
}

/// Makes glibc serve every allocation of 1 MiB or more (argon2's 19 MiB) with its own
/// mapping, unmapped when freed. By default glibc raises that threshold after the first such
/// free, and later hashes land in a thread's arena, where fragmentation keeps them: the
/// server grew by about 1 MiB per account signed in (65 MiB with 50 accounts).
fn big_allocations_return_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only changes the allocator's tuning; it has no preconditions.
        ONCE.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        });
    }
}

/// Hands argon2's freed 19 MiB back to the system. Otherwise glibc keeps it in the arena of
/// whichever blocking thread hashed, and a server that has seen a few sign-ins sits on
/// 100+ MB instead of idling at a few.
fn after_hashing<T>(result: T) -> T {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    result
}

/// An argon2id PHC string with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A new random session (or setup) token and the hash under which it is stored.
pub fn new_token() -> (String, [u8; 32]) {
    let bytes: [u8; 32] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Attempts allowed before sign-in for a name (or a device) is slowed down.
const FREE_ATTEMPTS: u32 = 5;
const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// Names, devices and addresses tracked at most each; past this, the ones not locked out
/// are forgotten first.
const MAX_TRACKED: usize = 100_000;
/// Lockouts kept for the admin's list, newest first.
const RECENT_LOCKOUTS: usize = 100;

/// The per-address budget of sign-in attempts: a token bucket, `burst` attempts at once, one
/// more every `refill`. Successes give their token back, so only failures spend it.
#[derive(Clone, Copy, Debug)]
pub struct AddressBudget {
    pub burst: u32,
    pub refill: Duration,
}

/// Slows down password guessing, three ways (OWASP's device-cookie scheme):
/// - per name, for browsers without a device cookie for that account: after 5 attempts each
///   further one must wait 1 s, 2 s, 4 s ... up to 5 minutes after the previous one;
/// - per device cookie (a browser that signed in to the account before): the same count,
///   kept for that browser alone, so a stranger's failures never lock the owner out;
/// - per client address, without a device cookie: an `AddressBudget`, so one machine cannot
///   spray guesses across many names.
///
/// An attempt counts when it starts, so a thousand parallel guesses get no further than
/// sequential ones; a success clears its counter and returns its address token.
pub struct Throttle {
    budget: AddressBudget,
    names: Mutex<HashMap<String, Count>>,
    devices: Mutex<HashMap<[u8; 16], Count>>,
    addresses: Mutex<HashMap<IpAddr, Address>>,
    lockouts: Mutex<VecDeque<Lockout>>,
}

#[derive(Clone, Copy)]
struct Count {
    attempts: u32,
    last: Instant,
    /// Whether this lockout was logged and listed already.
    reported: bool,
}

/// One address's budget (see `AddressBudget`).
struct Address {
    bucket: Bucket,
    /// Whether its running out was logged and listed already; cleared once it is full again.
    reported: bool,
}

/// What an attempt was counted against, to settle once the password is checked.
pub struct Attempt {
    name: String,
    address: IpAddr,
    device: Option<[u8; 16]>,
}

/// Why an attempt was refused, and for how many more seconds.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Name(u64),
    Address(u64),
}

impl Refused {
    pub fn retry_after(&self) -> u64 {
        match self {
            Refused::Name(s) | Refused::Address(s) => *s,
        }
    }
}

/// A run of failed sign-ins an admin may want to know of (`GET /api/admin/signin-failures`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Lockout {
    /// `account` (browsers without a device cookie), `device` (one browser) or `address`.
    pub kind: &'static str,
    /// The account tried; `null` for an address spraying several.
    pub name: Option<String>,
    pub user: Option<u64>,
    /// The address of the latest failure.
    pub address: String,
    pub failures: u32,
    /// Milliseconds since the epoch: the lockout began, the latest failure.
    pub since: u64,
    pub last: u64,
}

impl Throttle {
    pub fn new(budget: AddressBudget) -> Throttle {
        Throttle {
            budget,
            names: Mutex::default(),
            devices: Mutex::default(),
            addresses: Mutex::default(),
            lockouts: Mutex::default(),
        }
    }

    /// Counts an attempt to sign in as `name` from `address`, with the nonce of a valid device
    /// cookie for that name if the browser has one; `Err` while it must wait.
    pub fn attempt(&self, name: &str, address: IpAddr, device: Option<[u8; 16]>) -> Result<Attempt, Refused> {
        self.attempt_at(name, address, device, Instant::now())
    }

    fn attempt_at(&self, name: &str, address: IpAddr, device: Option<[u8; 16]>, now: Instant) -> Result<Attempt, Refused> {
        let attempt = Attempt { name: name.to_string(), address, device };
        if let Some(nonce) = device {
            count_attempt(&mut lock(&self.devices), nonce, now).map_err(Refused::Name)?;
            return Ok(attempt);
        }
        self.take_token(address, now).map_err(Refused::Address)?;
        if let Err(wait) = count_attempt(&mut lock(&self.names), name.to_string(), now) {
            // Refused without a guess: the address keeps its token.
            self.give_token(address, now);
            return Err(Refused::Name(wait));
        }
        Ok(attempt)
    }

    /// The password was right: clear what counted the attempt.
    pub fn succeeded(&self, attempt: &Attempt) {
        match attempt.device {
            Some(nonce) => {
                lock(&self.devices).remove(&nonce);
            }
            None => {
                lock(&self.names).remove(&attempt.name);
                self.give_token(attempt.address, Instant::now());
            }
        }
    }

    /// The password was wrong. The first failure that locks a name, device or address out is
    /// logged and listed for admins; later ones only update the list.
    pub fn failed(&self, attempt: &Attempt, user: Option<u64>) {
        let now = Instant::now();
        let address = attempt.address.to_string();
        let (kind, key, count) = match attempt.device {
            Some(nonce) => ("device", attempt.name.clone(), lock(&self.devices).get_mut(&nonce).map(report_once)),
            None => ("account", attempt.name.clone(), lock(&self.names).get_mut(&attempt.name).map(report_once)),
        };
        if let Some((attempts, newly)) = count
            && attempts >= FREE_ATTEMPTS
        {
            if newly {
                tracing::warn!(kind, user, name = %key, %address, failures = attempts, "repeated failed sign-ins: locked out for a while");
            }
            self.list(kind, Some(key), user, &address, attempts, newly);
        }
        if attempt.device.is_none() {
            let mut addresses = lock(&self.addresses);
            if let Some(entry) = addresses.get_mut(&attempt.address) {
                let now = clock(now);
                entry.settle(now);
                // Spent: the next attempt would be refused.
                if entry.bucket.clone().take(1.0, now).is_err() {
                    let newly = !entry.reported;
                    entry.reported = true;
                    drop(addresses);
                    if newly {
                        tracing::warn!(%address, burst = self.budget.burst, "repeated failed sign-ins from one address: its budget is spent");
                    }
                    self.list("address", None, None, &address, 1, newly);
                }
            }
        }
    }

    /// Recent lockouts, newest first.
    pub fn lockouts(&self) -> Vec<Lockout> {
        lock(&self.lockouts).iter().cloned().collect()
    }

    fn list(&self, kind: &'static str, name: Option<String>, user: Option<u64>, address: &str, failures: u32, newly: bool) {
        let mut lockouts = lock(&self.lockouts);
        let now = now_millis();
        let ongoing =
            lockouts.iter().position(|l| l.kind == kind && l.name == name && (kind != "address" || l.address == address));
        match ongoing.filter(|_| !newly) {
            Some(i) => {
                let lockout = &mut lockouts[i];
                lockout.failures = if kind == "address" { lockout.failures + 1 } else { failures };
                lockout.last = now;
                lockout.address = address.to_string();
            }
            None => {
                let failures = if kind == "address" { self.budget.burst.max(1) } else { failures };
                lockouts.push_front(Lockout { kind, name, user, address: address.to_string(), failures, since: now, last: now });
                lockouts.truncate(RECENT_LOCKOUTS);
            }
        }
    }

    fn take_token(&self, address: IpAddr, now: Instant) -> Result<(), u64> {
        let now = clock(now);
        let mut addresses = lock(&self.addresses);
        if addresses.len() >= MAX_TRACKED {
            // A full bucket is the same as none.
            addresses.retain(|_, entry| !entry.bucket.is_full(now));
        }
        let entry =
            addresses.entry(address).or_insert_with(|| Address { bucket: Bucket::new(self.budget.rate(), now), reported: false });
        entry.settle(now);
        entry.bucket.take(1.0, now).map_err(|wait| (wait.as_secs_f64().ceil() as u64).max(1))
    }

    fn give_token(&self, address: IpAddr, now: Instant) {
        if let Some(entry) = lock(&self.addresses).get_mut(&address) {
            // Taking a negative cost gives tokens back; the bucket may then hold one over
            // its burst until the next take, which caps it again before it counts.
            let _ = entry.bucket.take(-1.0, clock(now));
        }
    }
}

impl Address {
    /// Forgets the report once the budget has refilled: running out again is news again.
    fn settle(&mut self, now: tokio::time::Instant) {
        if self.bucket.is_full(now) {
            self.reported = false;
        }
    }
}

impl AddressBudget {
    fn rate(self) -> Rate {
        if self.refill.is_zero() {
            return Rate::UNLIMITED;
        }
        Rate::new(f64::from(self.burst), 1.0 / self.refill.as_secs_f64())
    }
}

/// `limits::Bucket` counts in tokio's `Instant`, the throttle in the standard one.
fn clock(now: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(now)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks a count's lockout as reported; returns its attempts and whether it was not before.
fn report_once(count: &mut Count) -> (u32, bool) {
    let newly = count.attempts >= FREE_ATTEMPTS && !count.reported;
    count.reported |= newly;
    (count.attempts, newly)
}

/// Counts an attempt under `key`, or `Err(seconds to wait)` while it is locked out.
fn count_attempt<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, Count>, key: K, now: Instant) -> Result<(), u64> {
    if let Some(count) = counts.get(&key)
        && count.attempts >= FREE_ATTEMPTS
    {
        let wait = lockout(count.attempts);
        let elapsed = now.saturating_duration_since(count.last);
        if elapsed < wait {
            return Err(((wait - elapsed).as_secs_f64().ceil() as u64).max(1));
        }
    }
    if counts.len() >= MAX_TRACKED {
        counts.retain(|_, c| now.saturating_duration_since(c.last) < MAX_LOCKOUT && c.attempts >= FREE_ATTEMPTS);
    }
    let count = counts.entry(key).or_insert(Count { attempts: 0, last: now, reported: false });
    count.attempts += 1;
    count.last = now;
    Ok(())
}

/// How long after the last attempt a name with `count` attempts is locked out.
fn lockout(count: u32) -> Duration {
    let exponent = count.saturating_sub(FREE_ATTEMPTS).min(16);
    Duration::from_secs(1u64 << exponent).min(MAX_LOCKOUT)
}

/// The signature of a device cookie: HMAC-SHA256 (RFC 2104) of the account name and the
/// cookie's nonce under the server's key, so only this server can issue one, for one name.
pub fn device_mac(key: &[u8; 32], name: &str, nonce: &[u8; 16]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner =
        Sha256::new().chain_update(pad(0x36)).chain_update(name.as_bytes()).chain_update([0]).chain_update(nonce).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// A new device cookie's value for `name`: `NAME.NONCE.MAC`, hex.
pub fn new_device_cookie(key: &[u8; 32], name: &str) -> String {
    let nonce: [u8; 16] = rand::random();
    format!("{name}.{}.{}", hex(&nonce), hex(&device_mac(key, name, &nonce)))
}

/// The nonce of `cookie` if it is a device cookie this server signed for `name`.
pub fn check_device_cookie(key: &[u8; 32], cookie: &str, name: &str) -> Option<[u8; 16]> {
    let mut parts = cookie.rsplitn(3, '.');
    let (mac, nonce, cookie_name) = (parts.next()?, parts.next()?, parts.next()?);
    if cookie_name != name {
        return None;
    }
    let nonce: [u8; 16] = unhex(nonce)?.try_into().ok()?;
    let given: [u8; 32] = unhex(mac)?.try_into().ok()?;
    let expected = device_mac(key, name, &nonce);
    // Compared without an early exit, so timing does not reveal how much of a forgery is right.
    let differs = given.iter().zip(expected.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    (differs == 0).then_some(nonce)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_agent_is_named_by_its_browser_and_system() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        let chrome_android =
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36";
        let safari_iphone =
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1";
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0";
        assert_eq!(device_label(firefox), "Firefox on Linux");
        assert_eq!(device_label(chrome_android), "Chrome on Android");
        assert_eq!(device_label(safari_iphone), "Safari on iOS");
        assert_eq!(device_label(edge), "Edge on Windows");
        assert_eq!(device_label("curl/8.5.0"), "curl");
        assert_eq!(device_label(""), "Unknown browser");
    }

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const BUDGET: AddressBudget = AddressBudget { burst: 20, refill: Duration::from_secs(3) };

    #[test]
    fn repeated_attempts_lock_a_name_out_for_longer_each_time() {
        let throttle = Throttle::new(BUDGET);
        for _ in 0..FREE_ATTEMPTS {
            assert!(throttle.attempt("bob", LOCAL, None).is_ok());
        }
        assert_eq!(throttle.attempt("bob", LOCAL, None).err(), Some(Refused::Name(1)), "the sixth attempt in a row waits");
        let alice = throttle.attempt("alice", LOCAL, None).expect("other names are not affected");
        throttle.succeeded(&alice);
        let bob_device = [7u8; 16];
        assert!(throttle.attempt("bob", LOCAL, Some(bob_device)).is_ok(), "bob's own browser is not locked out");
        assert_eq!(lockout(5), Duration::from_secs(1));
        assert_eq!(lockout(6), Duration::from_secs(2));
        assert_eq!(lockout(40), MAX_LOCKOUT);
    }

    #[test]
    fn an_address_spends_its_budget_on_failures_and_earns_it_back_with_time() {
        let throttle = Throttle::new(AddressBudget { burst: 3, refill: Duration::from_secs(3) });
        let start = Instant::now();
        for i in 0..3 {
            let attempt = throttle.attempt_at(&format!("name{i}"), LOCAL, None, start).expect("within the budget");
            throttle.failed(&attempt, None);
        }
        assert_eq!(throttle.attempt_at("name9", LOCAL, None, start).err(), Some(Refused::Address(3)));
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
        assert!(throttle.attempt_at("name9", other, None, start).is_ok(), "another address has its own budget");
        let later = start + Duration::from_secs(3);
        assert!(throttle.attempt_at("name9", LOCAL, None, later).is_ok(), "one attempt more every 3 s");
        assert!(throttle.attempt_at("name10", LOCAL, None, later).is_err());
        assert_eq!(throttle.lockouts().iter().filter(|l| l.kind == "address").count(), 1, "listed once");
    }

    #[test]
    fn a_success_gives_its_token_back_but_never_more_than_the_burst() {
        let throttle = Throttle::new(AddressBudget { burst: 3, refill: Duration::from_secs(3) });
        let start = Instant::now();
        for i in 0..5 {
            let attempt = throttle.attempt_at(&format!("name{i}"), LOCAL, None, start).expect("successes spend nothing");
            throttle.succeeded(&attempt);
        }
        // A success told when the budget has refilled meanwhile (as `succeeded` does later).
        let attempt = throttle.attempt_at("slow", LOCAL, None, start).unwrap();
        let later = start + Duration::from_secs(10);
        throttle.give_token(attempt.address, later);
        for i in 0..3 {
            let attempt = throttle.attempt_at(&format!("wrong{i}"), LOCAL, None, later).expect("within the budget");
            throttle.failed(&attempt, None);
        }
        assert_eq!(
            throttle.attempt_at("wrong9", LOCAL, None, later).err(),
            Some(Refused::Address(3)),
            "three failures, not four"
        );
    }

    #[test]
    fn a_device_cookie_is_valid_only_as_signed_and_for_its_own_name() {
        let key = [9u8; 32];
        let cookie = new_device_cookie(&key, "alice.b");
        assert!(check_device_cookie(&key, &cookie, "alice.b").is_some());
        assert!(check_device_cookie(&key, &cookie, "bob").is_none(), "for another account");
        assert!(check_device_cookie(&[8u8; 32], &cookie, "alice.b").is_none(), "signed by another server");
        let forged = format!("{}0", &cookie[..cookie.len() - 1]);
        let forged = if forged == cookie { format!("{}1", &cookie[..cookie.len() - 1]) } else { forged };
        assert!(check_device_cookie(&key, &forged, "alice.b").is_none(), "a changed signature");
        assert!(check_device_cookie(&key, "garbage", "alice.b").is_none());
    }
}
