//! Presence: how one person's tabs and chosen status add up to what colleagues see.

use crate::model::Millis;
use crate::protocol::PresenceState;
use crate::store::records::StatusRecord;

/// Aggregates over all of a user's open tabs: none open is offline; do-not-disturb wins while
/// any is open; otherwise online if any tab is in use, away when every tab reported idle.
pub fn aggregate(status: &StatusRecord, open_tabs: usize, idle_tabs: usize) -> PresenceState {
    if open_tabs == 0 {
        PresenceState::Offline
    } else if status.dnd {
        PresenceState::Dnd
    } else if idle_tabs == open_tabs {
        PresenceState::Away
    } else {
        PresenceState::Online
    }
}

/// Whether a status set with an expiry has run out at `now`.
pub fn expired(status: &StatusRecord, now: Millis) -> bool {
    status.expires.is_some_and(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_follows_all_tabs() {
        let plain = StatusRecord::default();
        assert_eq!(aggregate(&plain, 0, 0), PresenceState::Offline);
        assert_eq!(aggregate(&plain, 2, 1), PresenceState::Online, "one tab in use is enough");
        assert_eq!(aggregate(&plain, 2, 2), PresenceState::Away);
        let dnd = StatusRecord { dnd: true, ..Default::default() };
        assert_eq!(aggregate(&dnd, 1, 0), PresenceState::Dnd);
        assert_eq!(aggregate(&dnd, 0, 0), PresenceState::Offline, "nobody is DND while away from every tab");
    }
}
