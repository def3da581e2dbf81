//! Passwords, session tokens and the sign-in throttle. No HTTP here: `http/auth.rs` uses it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use sha2::{Digest, Sha256};

pub const MIN_PASSWORD: usize = 8;
/// Sessions last this long after sign-in.
pub const SESSION_DAYS: u64 = 30;

/// Password hashes computed at once. Each takes argon2's 19 MiB and a core for tens of
/// milliseconds: a burst of sign-ins waits here instead of exhausting memory.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `hash_password` off the async threads, at most `HASHING` at a time.
pub async fn hash_password_async(password: String) -> Result<String, String> {
    big_allocations_return_to_the_system();
    let _permit = HASHING.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || after_hashing(hash_password(&password))).await.map_err(|e| e.to_string())?
}

/// `verify_password` off the async threads, at most `HASHING` at a time.
pub async fn verify_password_async(password: String, phc: String) -> bool {
    big_allocations_return_to_the_system();
    let Ok(_permit) = HASHING.acquire().await else { return false };
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

/// Attempts allowed before sign-in for a name is slowed down.
const FREE_ATTEMPTS: u32 = 5;
const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// Names tracked at most; past this, names that are not locked out are forgotten first.
const MAX_TRACKED: usize = 100_000;

/// Slows down password guessing: after a few attempts for a name, each further one must wait
/// 1 s, 2 s, 4 s ... up to 5 minutes after the previous one. An attempt counts when it starts,
/// so a thousand parallel guesses get no further than five sequential ones. A success clears it.
#[derive(Default)]
pub struct Throttle {
    attempts: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    /// Counts an attempt for `name`, or `Err(seconds to wait)` while it is locked out.
    pub fn attempt(&self, name: &str) -> Result<(), u64> {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(count, last)) = attempts.get(name)
            && count >= FREE_ATTEMPTS
        {
            let wait = lockout(count);
            let elapsed = last.elapsed();
            if elapsed < wait {
                return Err(((wait - elapsed).as_secs_f64().ceil() as u64).max(1));
            }
        }
        if attempts.len() >= MAX_TRACKED {
            attempts.retain(|_, (count, last)| last.elapsed() < MAX_LOCKOUT && *count >= FREE_ATTEMPTS);
        }
        let entry = attempts.entry(name.to_string()).or_insert((0, Instant::now()));
        entry.0 += 1;
        entry.1 = Instant::now();
        Ok(())
    }

    pub fn succeeded(&self, name: &str) {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
    }
}

/// How long after the last attempt a name with `count` attempts is locked out.
fn lockout(count: u32) -> Duration {
    let exponent = count.saturating_sub(FREE_ATTEMPTS).min(16);
    Duration::from_secs(1u64 << exponent).min(MAX_LOCKOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
    }

    #[test]
    fn repeated_attempts_lock_a_name_out_for_longer_each_time() {
        let throttle = Throttle::default();
        for _ in 0..FREE_ATTEMPTS {
            assert!(throttle.attempt("bob").is_ok());
        }
        assert_eq!(throttle.attempt("bob"), Err(1), "the sixth attempt in a row waits");
        assert!(throttle.attempt("alice").is_ok(), "other names are not affected");
        throttle.succeeded("bob");
        assert!(throttle.attempt("bob").is_ok(), "a success clears the count");
        assert_eq!(lockout(5), Duration::from_secs(1));
        assert_eq!(lockout(6), Duration::from_secs(2));
        assert_eq!(lockout(40), MAX_LOCKOUT);
    }
}
