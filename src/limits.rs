//! Rate limits in front of the core: token buckets per tab and per person, so that what one
//! client sends (a broken script, a hostile colleague) costs that client, not everyone else.
//! The session checks every frame here before the core sees it; over a limit the frame is
//! refused with `rate_limited` and a `retry_after`, and a tab that keeps going is closed.
//! Defaults and their reasons are in `docs/protocol.md` ("Limits").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::UserId;
use crate::protocol::ClientFrame;

/// A rate: `burst` at once, then `per_second` on average.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub burst: f64,
    pub per_second: f64,
}

impl Rate {
    pub const fn new(burst: f64, per_second: f64) -> Rate {
        Rate { burst, per_second }
    }

    pub const fn per_hour(burst: f64, per_hour: f64) -> Rate {
        Rate { burst, per_second: per_hour / 3600.0 }
    }

    /// No limit at all (benchmarks that measure the server itself).
    pub const UNLIMITED: Rate = Rate { burst: f64::INFINITY, per_second: f64::INFINITY };
}

/// Every limit one client runs into. `RateLimits::default()` is what the server uses.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimits {
    /// Frames of any kind (malformed ones too), per tab.
    pub frames: Rate,
    /// `send`, `edit` and `delete`, per person over all their tabs.
    pub messages: Rate,
    /// Bytes of message text sent or edited, per person: what one person can add to the file.
    pub text_bytes: Rate,
    /// `typing`, per tab (the web client sends one every 3 s at most).
    pub typing: Rate,
    /// `presence` and `set_status`, per tab.
    pub presence: Rate,
    /// `read`, per tab.
    pub reads: Rate,
    /// `create_room`, `open_dm`, `join`, `leave`, `invite`, `set_topic`, per tab.
    pub membership: Rate,
    /// New conversations (rooms, DMs, groups) one person creates, checked by the core.
    pub conversations: Rate,
    /// Refusals a tab may collect before it is closed with `rate_limited`.
    pub strikes: Rate,
    /// Open tabs per person; one more is closed with `too_many_tabs`.
    pub tabs_per_user: usize,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            frames: Rate::new(400.0, 100.0),
            messages: Rate::new(100.0, 20.0),
            text_bytes: Rate::new(2.0 * 1024.0 * 1024.0, 512.0 * 1024.0 / 60.0),
            typing: Rate::new(5.0, 1.0),
            presence: Rate::new(10.0, 1.0),
            reads: Rate::new(100.0, 20.0),
            membership: Rate::new(50.0, 5.0),
            conversations: Rate::per_hour(20.0, 60.0),
            strikes: Rate::new(20.0, 1.0),
            tabs_per_user: 50,
        }
    }
}

impl RateLimits {
    /// No rate limits (`--no-rate-limits`): for load tests that measure the server itself.
    pub fn unlimited() -> RateLimits {
        RateLimits {
            frames: Rate::UNLIMITED,
            messages: Rate::UNLIMITED,
            text_bytes: Rate::UNLIMITED,
            typing: Rate::UNLIMITED,
            presence: Rate::UNLIMITED,
            reads: Rate::UNLIMITED,
            membership: Rate::UNLIMITED,
            conversations: Rate::UNLIMITED,
            strikes: Rate::UNLIMITED,
            tabs_per_user: usize::MAX,
        }
    }
}

/// A token bucket: full at `burst`, refilled at `per_second`.
#[derive(Clone, Debug)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: Rate, now: Instant) -> Bucket {
        Bucket { rate, tokens: rate.burst, at: now }
    }

    /// Whether the bucket has refilled to its burst: forgetting it then loses nothing.
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.rate.burst.is_infinite() || self.tokens + elapsed * self.rate.per_second >= self.rate.burst
    }

    /// Takes `cost` tokens, or says how long until they would be there.
    pub fn take(&mut self, cost: f64, now: Instant) -> Result<(), Duration> {
        self.tokens = self.rate.refill(self.tokens, now.saturating_duration_since(self.at));
        self.at = now;
        self.rate.take(&mut self.tokens, cost)
    }
}

impl Rate {
    /// `tokens` after `elapsed` of refilling. Refilling in two steps gives the same as in one,
    /// so buckets can be refilled whenever is convenient.
    fn refill(&self, tokens: f64, elapsed: Duration) -> f64 {
        if self.burst.is_infinite() { tokens } else { (tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst) }
    }

    /// Takes `cost` from refilled `tokens`, or says how long until they would be there.
    fn take(&self, tokens: &mut f64, cost: f64) -> Result<(), Duration> {
        if self.burst.is_infinite() {
            return Ok(());
        }
        // A cost above the burst (one long text) is allowed from a full bucket, and leaves it
        // in debt, so it is paid for before the next.
        if *tokens >= cost.min(self.burst) {
            *tokens -= cost;
            Ok(())
        } else {
            let missing = cost.min(self.burst) - *tokens;
            Err(Duration::from_secs_f64(missing / self.per_second.max(f64::MIN_POSITIVE)))
        }
    }
}

/// What one person's tabs share.
#[derive(Debug)]
struct PersonBuckets {
    messages: Bucket,
    text_bytes: Bucket,
}

/// The limits and the buckets of every person with an open tab. One per server.
pub struct Limiter {
    limits: RateLimits,
    people: Mutex<People>,
}

struct People {
    /// Kept after the person's last tab closes, until the buckets have refilled: a script
    /// that reconnects must not start from a full budget each time.
    buckets: HashMap<UserId, Arc<Mutex<PersonBuckets>>>,
    /// Size at which entries of people with no open tab and full buckets are dropped.
    prune_at: usize,
}

impl Limiter {
    pub fn new(limits: RateLimits) -> Limiter {
        Limiter { limits, people: Mutex::new(People { buckets: HashMap::new(), prune_at: 1024 }) }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The buckets for a tab of `user` that just opened.
    pub fn tab(self: &Arc<Self>, user: UserId) -> TabLimits {
        let now = Instant::now();
        let person = {
            let mut people = self.people.lock().unwrap_or_else(|e| e.into_inner());
            let person = people
                .buckets
                .entry(user)
                .or_insert_with(|| {
                    Arc::new(Mutex::new(PersonBuckets {
                        messages: Bucket::new(self.limits.messages, now),
                        text_bytes: Bucket::new(self.limits.text_bytes, now),
                    }))
                })
                .clone();
            if people.buckets.len() >= people.prune_at {
                people.buckets.retain(|_, person| {
                    Arc::strong_count(person) > 1 || {
                        let buckets = person.lock().unwrap_or_else(|e| e.into_inner());
                        !(buckets.messages.is_full(now) && buckets.text_bytes.is_full(now))
                    }
                });
                people.prune_at = (2 * people.buckets.len()).max(1024);
            }
            person
        };
        let tokens = TabBucket::ALL.map(|bucket| self.limits.tab_rate(bucket).burst);
        TabLimits { limiter: self.clone(), at: now, tokens, person }
    }
}

/// The buckets each tab has of its own.
#[derive(Clone, Copy)]
enum TabBucket {
    Frames,
    Typing,
    Presence,
    Reads,
    Membership,
    Strikes,
}

impl TabBucket {
    const ALL: [TabBucket; 6] =
        [TabBucket::Frames, TabBucket::Typing, TabBucket::Presence, TabBucket::Reads, TabBucket::Membership, TabBucket::Strikes];
}

impl RateLimits {
    fn tab_rate(&self, bucket: TabBucket) -> Rate {
        match bucket {
            TabBucket::Frames => self.frames,
            TabBucket::Typing => self.typing,
            TabBucket::Presence => self.presence,
            TabBucket::Reads => self.reads,
            TabBucket::Membership => self.membership,
            TabBucket::Strikes => self.strikes,
        }
    }
}

/// One tab's buckets (and its person's shared ones). Every open tab holds one, so it is
/// small: the rates stay in the `Limiter`, and the tab's buckets, all refilled at each
/// frame, share one clock (80 bytes instead of 248 as six `Bucket`s).
pub struct TabLimits {
    limiter: Arc<Limiter>,
    /// When `tokens` were last refilled.
    at: Instant,
    /// Indexed by `TabBucket`.
    tokens: [f64; 6],
    person: Arc<Mutex<PersonBuckets>>,
}

/// What the session does with a frame over a limit.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Refuse it with `rate_limited`; the client may try again after this long.
    Refuse(Duration),
    /// The tab kept going after many refusals: close it.
    Close,
}

impl TabLimits {
    /// Whether a frame may go on to the core (`frame` is `None` when it did not parse).
    pub fn admit(&mut self, frame: Option<&ClientFrame>, now: Instant) -> Result<(), Verdict> {
        let elapsed = now.saturating_duration_since(self.at);
        self.at = now;
        let limits = &self.limiter.limits;
        for bucket in TabBucket::ALL {
            let tokens = &mut self.tokens[bucket as usize];
            *tokens = limits.tab_rate(bucket).refill(*tokens, elapsed);
        }
        let mut take = |bucket: TabBucket| limits.tab_rate(bucket).take(&mut self.tokens[bucket as usize], 1.0);
        let checked = take(TabBucket::Frames).and_then(|()| match frame {
            None | Some(ClientFrame::Ping) => Ok(()),
            Some(ClientFrame::Send { text, .. } | ClientFrame::Edit { text, .. }) => {
                let mut person = self.person.lock().unwrap_or_else(|e| e.into_inner());
                // Both or neither: a refused send must not use up the other bucket.
                let before = (person.messages.clone(), person.text_bytes.clone());
                let taken = person.messages.take(1.0, now).and_then(|()| person.text_bytes.take(text.len() as f64, now));
                if taken.is_err() {
                    (person.messages, person.text_bytes) = before;
                }
                taken
            }
            Some(ClientFrame::Delete { .. } | ClientFrame::React { .. }) => {
                self.person.lock().unwrap_or_else(|e| e.into_inner()).messages.take(1.0, now)
            }
            Some(ClientFrame::Typing { .. }) => take(TabBucket::Typing),
            Some(ClientFrame::Presence { .. } | ClientFrame::SetStatus { .. }) => take(TabBucket::Presence),
            // An acknowledgement is as cheap as a read marker, and as frequent at most.
            Some(ClientFrame::Read { .. } | ClientFrame::Acknowledge { .. } | ClientFrame::Acknowledgements { .. }) => {
                take(TabBucket::Reads)
            }
            Some(
                ClientFrame::CreateRoom { .. }
                | ClientFrame::OpenDm { .. }
                | ClientFrame::Join { .. }
                | ClientFrame::Leave { .. }
                | ClientFrame::Invite { .. }
                | ClientFrame::RemoveMember { .. }
                | ClientFrame::SetTopic { .. }
                | ClientFrame::SetRecords { .. }
                | ClientFrame::SetAnnouncements { .. },
            ) => take(TabBucket::Membership),
        });
        checked.map_err(|retry| match take(TabBucket::Strikes) {
            Ok(()) => Verdict::Refuse(retry),
            Err(_) => Verdict::Close,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(Rate::new(3.0, 2.0), start);
        for _ in 0..3 {
            assert_eq!(bucket.take(1.0, start), Ok(()));
        }
        let wait = bucket.take(1.0, start).expect_err("the burst is used up");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "one token comes back in half a second: {wait:?}");
        assert_eq!(bucket.take(1.0, start + Duration::from_millis(500)), Ok(()));
        assert!(bucket.take(1.0, start + Duration::from_millis(500)).is_err());
        assert_eq!(bucket.take(1.0, start + Duration::from_secs(60)), Ok(()), "refilled after a quiet minute");
    }

    #[test]
    fn a_cost_above_the_burst_passes_once_from_a_full_bucket_and_is_paid_back() {
        let start = Instant::now();
        let mut bucket = Bucket::new(Rate::new(10.0, 10.0), start);
        assert_eq!(bucket.take(25.0, start), Ok(()));
        let wait = bucket.take(1.0, start + Duration::from_secs(1)).expect_err("still in debt");
        assert!(wait > Duration::from_millis(500), "{wait:?}");
    }

    #[test]
    fn a_tab_that_keeps_going_after_refusals_is_closed() {
        let limits = RateLimits { typing: Rate::new(1.0, 1.0), strikes: Rate::new(2.0, 1.0), ..RateLimits::default() };
        let limiter = Arc::new(Limiter::new(limits));
        let mut tab = limiter.tab(UserId(1));
        let now = Instant::now();
        let typing = ClientFrame::Typing { conv: crate::model::ConvId(1) };
        assert_eq!(tab.admit(Some(&typing), now), Ok(()));
        assert!(matches!(tab.admit(Some(&typing), now), Err(Verdict::Refuse(_))));
        assert!(matches!(tab.admit(Some(&typing), now), Err(Verdict::Refuse(_))));
        assert_eq!(tab.admit(Some(&typing), now), Err(Verdict::Close));
    }

    #[test]
    fn a_tab_s_buckets_refill_at_their_own_rates_on_one_clock() {
        let limits = RateLimits { typing: Rate::new(1.0, 1.0), reads: Rate::new(2.0, 4.0), ..RateLimits::default() };
        let limiter = Arc::new(Limiter::new(limits));
        let mut tab = limiter.tab(UserId(1));
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let typing = ClientFrame::Typing { conv: crate::model::ConvId(1) };
        let read = ClientFrame::Read { conv: crate::model::ConvId(1), seq: crate::model::Seq(1) };
        assert_eq!(tab.admit(Some(&typing), at(0)), Ok(()));
        assert_eq!(tab.admit(Some(&read), at(0)), Ok(()));
        assert_eq!(tab.admit(Some(&read), at(0)), Ok(()));
        assert!(tab.admit(Some(&read), at(0)).is_err(), "the burst of reads is used up");
        // Frames of another kind in between refill every bucket; none gains more than its rate.
        assert_eq!(tab.admit(Some(&ClientFrame::Ping), at(200)), Ok(()));
        assert!(tab.admit(Some(&typing), at(500)).is_err(), "half a typing token");
        assert_eq!(tab.admit(Some(&read), at(500)), Ok(()), "two reads came back in half a second");
        assert_eq!(tab.admit(Some(&read), at(500)), Ok(()));
        assert!(tab.admit(Some(&read), at(500)).is_err(), "never more than the burst");
        assert_eq!(tab.admit(Some(&typing), at(1000)), Ok(()), "one typing token a second");
    }

    #[test]
    fn the_tabs_of_one_person_share_the_message_budget() {
        let limits = RateLimits { messages: Rate::new(2.0, 1.0), ..RateLimits::default() };
        let limiter = Arc::new(Limiter::new(limits));
        let (mut first, mut second, mut other) = (limiter.tab(UserId(1)), limiter.tab(UserId(1)), limiter.tab(UserId(2)));
        let now = Instant::now();
        let send = ClientFrame::Send {
            conv: crate::model::ConvId(1),
            text: "hi".into(),
            client_id: None,
            attachments: Vec::new(),
            reply_to: None,
        };
        assert_eq!(first.admit(Some(&send), now), Ok(()));
        assert_eq!(second.admit(Some(&send), now), Ok(()));
        assert!(first.admit(Some(&send), now).is_err(), "a second tab does not double the budget");
        assert_eq!(other.admit(Some(&send), now), Ok(()), "a colleague has a budget of their own");
        drop((first, second));
        let mut reconnected = limiter.tab(UserId(1));
        assert!(reconnected.admit(Some(&send), now).is_err(), "closing every tab and reconnecting does not refill the budget");
    }
}
