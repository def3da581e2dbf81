//! Counters for the admin's statistics, kept in the same commits as what they count, so that
//! reading them never walks the messages: `day_messages` (messages posted per local day) and
//! `dayuser_active` (who used Hallway on which day, for the last `ACTIVE_KEPT_DAYS`). Both
//! came with schema 6, whose migration fills them from the messages already in the file.

use std::collections::HashSet;

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::records::{MessageRecord, decode};
use super::tables::{CONVSEQ_MESSAGE, DAY_MESSAGES, DAYUSER_ACTIVE};
use super::{SendTables, Store, StoreError};
use crate::model::{Millis, UserId};

/// A calendar day in the server's time zone, counted from 1970-01-01.
pub type Day = u32;

/// Days of activity kept per person: enough for "this week" and a month's look back, while
/// the table stays a few thousand entries.
pub const ACTIVE_KEPT_DAYS: Day = 35;

/// The server's local day of `ts`: an office reads "messages on Tuesday" in its own time.
pub fn local_day(ts: Millis) -> Day {
    let seconds = (ts / 1000) as libc::time_t;
    // SAFETY: localtime_r only writes the struct we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let offset = if unsafe { libc::localtime_r(&seconds, &mut tm) }.is_null() { 0 } else { tm.tm_gmtoff as i64 };
    (seconds as i64 + offset).div_euclid(86_400).clamp(0, Day::MAX as i64) as Day
}

/// The day as `YYYY-MM-DD` (the proleptic Gregorian calendar, from the day count by the
/// usual era arithmetic: 400-year eras of 146,097 days).
pub fn date_of(day: Day) -> String {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Counts a new message (a system line is not one) on its day, in the message's commit.
pub(crate) fn count_message(sends: &mut SendTables, record: &MessageRecord) -> Result<(), StoreError> {
    if record.system.is_some() {
        return Ok(());
    }
    let day = local_day(record.ts);
    let table = sends.day_messages()?;
    let count = table.get(day)?.map_or(0, |v| v.value());
    table.insert(day, count + 1)?;
    Ok(())
}

/// Notes that `user` used Hallway on `day`, and forgets days past `ACTIVE_KEPT_DAYS`.
pub(crate) fn mark_active(txn: &WriteTransaction, day: Day, user: UserId) -> Result<(), StoreError> {
    let mut table = txn.open_table(DAYUSER_ACTIVE)?;
    table.insert((day, user.0), ())?;
    let oldest = day.saturating_sub(ACTIVE_KEPT_DAYS - 1);
    if oldest > 0 {
        table.retain_in(..(oldest, 0), |_, _| false)?;
    }
    Ok(())
}

/// Schema 5 -> 6: counts every message in the file by day, and who posted on the last
/// `ACTIVE_KEPT_DAYS` days as active then. One pass over the messages (a million take a few
/// seconds, once).
pub(crate) fn fill(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut per_day: std::collections::BTreeMap<Day, u64> = Default::default();
    let mut active: HashSet<(Day, u64)> = HashSet::new();
    let recent = local_day(crate::model::now_millis()).saturating_sub(ACTIVE_KEPT_DAYS - 1);
    let mut messages = 0u64;
    for entry in txn.open_table(CONVSEQ_MESSAGE)?.iter()? {
        let (_, value) = entry?;
        let message: MessageRecord = decode(value.value())?;
        if message.system.is_some() {
            continue;
        }
        let day = local_day(message.ts);
        *per_day.entry(day).or_default() += 1;
        if day >= recent {
            active.insert((day, message.author.0));
        }
        messages += 1;
    }
    let mut table = txn.open_table(DAY_MESSAGES)?;
    for (day, count) in &per_day {
        table.insert(*day, *count)?;
    }
    let mut table = txn.open_table(DAYUSER_ACTIVE)?;
    for key in &active {
        table.insert(*key, ())?;
    }
    tracing::info!(messages, days = per_day.len(), "counted the messages per day for the admin's statistics");
    Ok(())
}

impl Store {
    /// Messages posted on each day from `first` to `last`, every day listed (0 for none).
    pub fn messages_per_day(&self, first: Day, last: Day) -> Result<Vec<(Day, u64)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(DAY_MESSAGES)?;
        let mut counts: Vec<(Day, u64)> = (first..=last).map(|day| (day, 0)).collect();
        for entry in table.range(first..=last)? {
            let (day, count) = entry?;
            if let Some(slot) = counts.get_mut((day.value() - first) as usize) {
                slot.1 = count.value();
            }
        }
        Ok(counts)
    }

    /// How many people used Hallway on at least one day from `first` to `last`.
    pub fn active_users(&self, first: Day, last: Day) -> Result<usize, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(DAYUSER_ACTIVE)?;
        let mut users = HashSet::new();
        for entry in table.range((first, 0)..=(last, u64::MAX))? {
            users.insert(entry?.0.value().1);
        }
        Ok(users.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConvId, Seq};
    use crate::store::Change;
    use crate::store::records::SCHEMA_VERSION;
    use crate::store::tables::META;

    #[test]
    fn dates_of_day_numbers_follow_the_calendar() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(59), "1970-03-01");
        assert_eq!(date_of(11_016), "2000-02-29");
        assert_eq!(date_of(20_423), "2025-12-01");
        assert_eq!(date_of(20_818), "2026-12-31");
    }

    fn message(author: u64, ts: Millis) -> MessageRecord {
        MessageRecord { ts, ..crate::store::tests::message(author, &[]) }
    }

    #[test]
    fn upgrading_a_schema_5_file_counts_its_messages_per_day_and_who_posted_lately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let now = crate::model::now_millis();
        let day_ms = 86_400_000;
        let today = local_day(now);
        let mut changes = Vec::new();
        // 3 messages today (two people), 2 five days ago, 1 a hundred days ago.
        for (seq, (author, ts)) in
            [(2, now), (3, now), (2, now), (4, now - 5 * day_ms), (4, now - 5 * day_ms), (5, now - 100 * day_ms)]
                .into_iter()
                .enumerate()
        {
            changes.push(Change::PutMessage(ConvId(1), Seq(seq as u64 + 1), message(author, ts)));
        }
        {
            let store = Store::open(&path).unwrap();
            store.apply_now(changes).unwrap();
        }
        // Make it a schema-5 file: no counters yet.
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(DAY_MESSAGES).unwrap();
            txn.delete_table(DAYUSER_ACTIVE).unwrap();
            txn.open_table(META).unwrap().insert("schema_version", 5u64.to_be_bytes().as_slice()).unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
        let five_ago = local_day(now - 5 * day_ms);
        let counts = store.messages_per_day(five_ago, today).unwrap();
        assert_eq!(counts.len() as u32, today - five_ago + 1, "every day is listed");
        assert_eq!(counts.first(), Some(&(five_ago, 2)));
        assert_eq!(counts.last(), Some(&(today, 3)));
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 5);
        let hundred_ago = local_day(now - 100 * day_ms);
        assert_eq!(store.messages_per_day(hundred_ago, hundred_ago).unwrap(), vec![(hundred_ago, 1)]);
        assert_eq!(store.active_users(today, today).unwrap(), 2, "two people posted today");
        assert_eq!(store.active_users(today - 6, today).unwrap(), 3, "three this week");
        assert_eq!(store.active_users(0, today).unwrap(), 3, "activity longer ago than kept is not filled in");

        // From now on the commits keep the counters.
        store
            .apply_now(vec![Change::PutMessage(ConvId(1), Seq(7), message(6, now)), Change::MarkActive(today, UserId(7))])
            .unwrap();
        assert_eq!(store.messages_per_day(today, today).unwrap(), vec![(today, 4)]);
        assert_eq!(store.active_users(today, today).unwrap(), 3, "opening a tab counts, posting alone does not mark");
    }
}
