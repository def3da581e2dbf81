//! One log line per burst for an event that can repeat thousands of times a second (a full
//! store queue, refused connections, failing accepts): the first is logged at once, then at
//! most one line per interval while it goes on, each saying how many were not logged since.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct RateLimitedLog {
    every: Duration,
    /// When the last line went out, and the events not logged since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    /// `const`, so that a `static` can hold one.
    pub const fn new(every: Duration) -> RateLimitedLog {
        RateLimitedLog { every, state: Mutex::new((None, 0)) }
    }

    /// Calls `log` with the number of events not logged since the last line, unless that
    /// line went out less than `every` ago.
    pub fn warn(&self, log: impl FnOnce(u64)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if state.0.is_some_and(|last| now.duration_since(last) < self.every) {
            state.1 += 1;
            return;
        }
        let skipped = state.1;
        *state = (Some(now), 0);
        drop(state);
        log(skipped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_logs_its_first_event_then_one_line_per_interval_with_the_count_skipped() {
        let log = RateLimitedLog::new(Duration::from_secs(10));
        let mut lines = Vec::new();
        for _ in 0..5 {
            log.warn(|skipped| lines.push(skipped));
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        log.warn(|skipped| lines.push(skipped));
        log.warn(|skipped| lines.push(skipped));
        assert_eq!(lines, [0, 4], "the first at once; the next after the interval, counting the four not logged");
    }
}
