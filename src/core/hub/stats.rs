//! What the core knows for the admin's statistics: conversations by kind and the open tabs
//! (who, how many, since when), and the note that a person used Hallway today
//! (`Change::MarkActive`, once a day per person: at connect, send or read).

use std::collections::BTreeMap;

use super::HubTask;
use super::delivery::{Outcome, Reply};
use crate::core::{LiveStats, TabsOf};
use crate::model::{ConvKind, UserId, now_millis};
use crate::store::Change;
use crate::store::stats::local_day;

/// How often the local day is looked up again (a person active just after midnight may be
/// counted on the day before, by at most this much).
const DAY_CHECK_MS: u64 = 60_000;

impl HubTask {
    /// Writes that `user` used Hallway today, the first time today.
    pub(super) fn mark_active(&mut self, user: UserId) {
        let now = now_millis();
        if now >= self.activity.checked + DAY_CHECK_MS {
            let today = local_day(now);
            if today != self.activity.day {
                self.activity.day = today;
                self.activity.marked.clear();
            }
            self.activity.checked = now;
        }
        if self.activity.marked.insert(user) {
            let day = self.activity.day;
            self.persist(vec![Change::MarkActive(day, user)], Outcome::new(Vec::new(), Reply::None));
        }
    }

    pub(super) fn live_stats(&self) -> LiveStats {
        let mut stats = LiveStats::default();
        for conv in self.convs.values() {
            match conv.record.kind {
                ConvKind::Room => stats.rooms += 1,
                ConvKind::Private => stats.private_rooms += 1,
                ConvKind::Dm => stats.dms += 1,
                ConvKind::Group => stats.groups += 1,
            }
        }
        let mut tabs: BTreeMap<UserId, TabsOf> = BTreeMap::new();
        for conn in self.conns.values() {
            let Some(user) = self.users.get(&conn.user) else { continue };
            let entry = tabs.entry(conn.user).or_insert_with(|| TabsOf {
                user: conn.user,
                name: user.info.name.clone(),
                display_name: user.info.display_name.clone(),
                tabs: 0,
                since: conn.since,
            });
            entry.tabs += 1;
            entry.since = entry.since.min(conn.since);
        }
        stats.tabs = tabs.into_values().collect();
        stats
    }
}

/// Who was marked active on which day, so that each person is written once a day.
#[derive(Default)]
pub(super) struct Activity {
    day: crate::store::stats::Day,
    /// When `day` was last looked up (ms since 1970; 0: never).
    checked: u64,
    marked: std::collections::HashSet<UserId>,
}
