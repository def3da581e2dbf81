//! The data file's schema version, and bringing an older file up to date on open. A
//! migration runs in the same single write transaction that records the new version, so a
//! crash mid-way leaves the file as it was.

use redb::{Database, ReadableTable, WriteTransaction};

use super::records::{MessageRecord, SENDS_KEPT_FOR, SendRecord, SessionRecord, decode, encode, text_digest};
use crate::model::{ConvId, Seq, UserId, now_millis};

use super::StoreError;
use super::records::SCHEMA_VERSION;
use super::tables::*;

const VERSION_KEY: &str = "schema_version";

pub fn bring_up_to_date(db: &Database) -> Result<(), StoreError> {
    let txn = super::begin_write(db)?;
    let found = stored_version(&txn)?;
    match found {
        Some(found) if found > SCHEMA_VERSION => {
            return Err(StoreError::TooNew { found, supported: SCHEMA_VERSION });
        }
        Some(found) if found == SCHEMA_VERSION => {}
        Some(found) => {
            tracing::info!(from = found, to = SCHEMA_VERSION, "migrating the data file");
            create_tables(&txn)?;
            // Each step takes the file from version N to N+1.
            if found < 2 {
                index_sessions_by_user(&txn)?;
            }
            // 2 -> 3 only adds (empty) tables: the server indexes the existing messages in the
            // background, and searches read the ones not indexed yet.
            if found < 4 {
                remember_recent_sends(&txn)?;
            }
            // 4 -> 5 only adds (empty) tables: the archive's versions, the audit log and the
            // purged-seq marks.
            if found < 6 {
                super::stats::fill(&txn)?;
            }
            // 6 -> 7 only adds (empty) file tables: messages of the second layout read as
            // messages without attachments or reply.
            // 7 -> 8 adds acknowledgements of announcements, the (empty) reactions table and
            // the index bands.
            if found < 8 {
                add_acknowledgements(&txn)?;
                index_bands(&txn)?;
            }
            // 8 -> 9 queues the terms of messages purged earlier, whose entries waited for
            // a vacuum, for the writer's sweep.
            if found < 9 {
                let queued = super::search::queue_dead_entries(&txn)?;
                tracing::info!(terms = queued, "queued the search index entries of purged messages for the sweep");
            }
        }
        None => create_tables(&txn)?,
    }
    let migrated = found != Some(SCHEMA_VERSION);
    if migrated {
        txn.open_table(META)?.insert(VERSION_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())?;
    }
    if super::search::check_tokenizer(&txn)? || migrated {
        txn.commit()?;
    } else {
        txn.abort()?; // nothing to write: opening a file leaves it as it was
    }
    Ok(())
}

/// 1 -> 2: fill the new per-user index from the existing sessions.
fn index_sessions_by_user(txn: &WriteTransaction) -> Result<(), StoreError> {
    let sessions = txn.open_table(TOKENHASH_SESSION)?;
    let mut index = txn.open_table(USER_TOKENHASH)?;
    let mut count = 0;
    for entry in sessions.iter()? {
        let (hash, value) = entry?;
        let session: SessionRecord = decode(value.value())?;
        index.insert((session.user.0, hash.value()), ())?;
        count += 1;
    }
    tracing::info!(sessions = count, "indexed sessions by user");
    Ok(())
}

/// 7 -> 8: the search index's low marks (`conv_indexedlow`), empty: every conversation's
/// band starts at 0, which is what the index held (everything up to `conv_indexedseq`).
fn index_bands(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(CONV_INDEXEDLOW)?;
    Ok(())
}

/// Messages per conversation, newest first, whose `client_id` the 3 -> 4 upgrade remembers
/// (as far back as `SENDS_KEPT_FOR`, and the last 64 whatever their age, which the earlier
/// versions remembered across a restart).
const UPGRADE_SENDS_PER_CONVERSATION: usize = 10_000;
const UPGRADE_SENDS_ANY_AGE: usize = 64;

/// 3 -> 4: remember the `client_id`s of recent messages, so a resend across the upgrade is
/// still recognized. The texts of messages edited or deleted since are unknown: any text
/// then counts as the same.
fn remember_recent_sends(txn: &WriteTransaction) -> Result<(), StoreError> {
    let cutoff = now_millis().saturating_sub(SENDS_KEPT_FOR);
    let messages = txn.open_table(CONVSEQ_MESSAGE)?;
    let mut sends: Vec<(UserId, SendRecord)> = Vec::new();
    for entry in txn.open_table(CONV_RECORD)?.iter()? {
        let conv = entry?.0.value();
        for (i, entry) in messages.range((conv, 0)..=(conv, u64::MAX))?.rev().take(UPGRADE_SENDS_PER_CONVERSATION).enumerate() {
            let (key, value) = entry?;
            let message: MessageRecord = decode(value.value())?;
            if i >= UPGRADE_SENDS_ANY_AGE && message.ts < cutoff {
                break;
            }
            let Some(client_id) = message.client_id else { continue };
            let unchanged = message.edited_ts.is_none() && !message.deleted;
            let text_digest = unchanged.then(|| text_digest(&message.text));
            sends.push((
                message.author,
                SendRecord { conv: ConvId(conv), client_id, seq: Seq(key.value().1), ts: message.ts, text_digest },
            ));
        }
    }
    sends.sort_by_key(|(user, send)| (*user, send.ts, send.conv, send.seq));
    let mut table = txn.open_table(USERSENDNO_SEND)?;
    let mut index = txn.open_table(USERCONVCLIENTID_SENDNO)?;
    let mut n = 0;
    for (i, (user, send)) in sends.iter().enumerate() {
        n = if i > 0 && sends[i - 1].0 == *user { n + 1 } else { 1 };
        table.insert((user.0, n), encode(send).as_slice())?;
        index.insert((user.0, send.conv.0, send.client_id.as_str()), n)?;
    }
    tracing::info!(sends = sends.len(), "remembered the client_ids of recent messages");
    Ok(())
}

/// 7 -> 8: the (empty) table of acknowledgements; conversations of the second layout read as
/// rooms that are not announcements rooms.
fn add_acknowledgements(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(CONVSEQUSER_ACK)?;
    Ok(())
}

/// The schema version the file records (`None` for a new, empty file).
pub fn schema_version(db: &Database) -> Result<Option<u64>, StoreError> {
    use redb::ReadableDatabase;
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let version = meta.get(VERSION_KEY)?.and_then(|v| v.value().try_into().ok()).map(u64::from_be_bytes);
    Ok(version)
}

fn stored_version(txn: &WriteTransaction) -> Result<Option<u64>, StoreError> {
    let meta = txn.open_table(META)?;
    let version = meta.get(VERSION_KEY)?.and_then(|v| v.value().try_into().ok()).map(u64::from_be_bytes);
    Ok(version)
}

/// Opening a table in a write transaction creates it; readers then never meet a missing one.
fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(USER_RECORD)?;
    txn.open_table(NAME_USER)?;
    txn.open_table(TOKENHASH_SESSION)?;
    txn.open_table(USER_TOKENHASH)?;
    txn.open_table(USER_STATUS)?;
    txn.open_table(CONV_RECORD)?;
    txn.open_table(CONVUSER_MEMBER)?;
    txn.open_table(CONVSEQ_MESSAGE)?;
    txn.open_table(CONVREV_SEQ)?;
    txn.open_table(TERMCONVFIRST_POSTINGS)?;
    txn.open_table(CONV_INDEXEDSEQ)?;
    txn.open_table(CONV_INDEXEDLOW)?;
    txn.open_table(USERSENDNO_SEND)?;
    txn.open_table(USERCONVCLIENTID_SENDNO)?;
    txn.open_table(CONVSEQREV_VERSION)?;
    txn.open_table(N_AUDIT)?;
    txn.open_table(CONV_PURGEDSEQ)?;
    txn.open_table(INVITEHASH_INVITE)?;
    txn.open_table(DAY_MESSAGES)?;
    txn.open_table(DAYUSER_ACTIVE)?;
    txn.open_table(FILE_RECORD)?;
    txn.open_table(FILECHUNK_BYTES)?;
    txn.open_table(CONVSEQUSER_ACK)?;
    txn.open_table(CONVSEQEMOJIUSER_TS)?;
    txn.open_table(CONVTERM_PURGED)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Change, Store};
    use redb::ReadableDatabase;

    #[test]
    fn upgrading_a_schema_3_file_remembers_the_client_ids_of_recent_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let now = now_millis();
        let message = |author: u64, client_id: Option<&str>, ts: u64, edited: bool| MessageRecord {
            author: UserId(author),
            text: format!("from {author}"),
            ts,
            edited_ts: edited.then_some(ts + 1),
            deleted: false,
            mentions: Vec::new(),
            client_id: client_id.map(str::to_owned),
            rev: 0,
            system: None,
            attachments: Vec::new(),
            reply_to: None,
        };
        let conversation = crate::store::records::ConversationRecord {
            kind: crate::model::ConvKind::Room,
            name: "general".into(),
            topic: String::new(),
            created_by: UserId(1),
            created: 0,
            keep: crate::store::records::Keep::Forever,
            keep_set_by: None,
            choices: Vec::new(),
            announcements: false,
        };
        let old = now - 2 * SENDS_KEPT_FOR;
        let mut changes = vec![Change::PutConversation(ConvId(1), conversation)];
        // 100 old messages, then three recent ones (one edited, one without client_id): the
        // last 64 messages count whatever their age.
        for seq in 1..=100 {
            changes.push(Change::PutMessage(ConvId(1), Seq(seq), message(2, Some(&format!("old-{seq}")), old + seq, false)));
        }
        changes.push(Change::PutMessage(ConvId(1), Seq(101), message(3, Some("fresh"), now, false)));
        changes.push(Change::PutMessage(ConvId(1), Seq(102), message(2, Some("edited"), now, true)));
        changes.push(Change::PutMessage(ConvId(1), Seq(103), message(2, None, now, false)));
        {
            let store = Store::open(&path).unwrap();
            store.apply_now(changes).unwrap();
        }
        // Make it a schema-3 file: no remembered sends yet.
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(USERSENDNO_SEND).unwrap();
            txn.delete_table(USERCONVCLIENTID_SENDNO).unwrap();
            txn.open_table(META).unwrap().insert(VERSION_KEY, 3u64.to_be_bytes().as_slice()).unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
        let sends = store.remembered_sends().unwrap();
        let ids: Vec<(u64, String)> = sends.iter().map(|(user, send)| (user.0, send.client_id.clone())).collect();
        let mut want: Vec<(u64, String)> = (40..=100).map(|seq| (2, format!("old-{seq}"))).collect();
        want.push((2, "edited".into()));
        want.push((3, "fresh".into()));
        assert_eq!(
            ids, want,
            "the last 64 messages whatever their age (61 old ones), and the last day's, each user's oldest first"
        );
        let digest = |id: &str| sends.iter().find(|(_, s)| s.client_id == id).map(|(_, s)| s.text_digest);
        assert_eq!(digest("fresh"), Some(Some(text_digest("from 3"))));
        assert_eq!(digest("edited"), Some(None), "an edited message's first text is unknown");
    }

    #[test]
    fn upgrading_a_schema_8_file_queues_the_entries_its_purges_left_for_the_vacuum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let message = |seq: u64| MessageRecord {
            author: UserId(1),
            text: format!("lunch n{seq}"),
            ts: seq,
            edited_ts: None,
            deleted: false,
            mentions: Vec::new(),
            client_id: None,
            rev: seq,
            system: None,
            attachments: Vec::new(),
            reply_to: None,
        };
        {
            let store = Store::open(&path).unwrap();
            let changes =
                (1..=200).flat_map(|seq| [1, 2].map(|conv| Change::PutMessage(ConvId(conv), Seq(seq), message(seq)))).collect();
            store.apply_now(changes).unwrap();
            store.index_everything().unwrap();
            store.apply_now(vec![Change::PurgeMessages(ConvId(1), (1..=150).map(Seq).collect())]).unwrap();
        }
        // As schema 8 left it: the entries of purged messages waited for the vacuum, unqueued.
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(CONVTERM_PURGED).unwrap();
            txn.open_table(META).unwrap().insert(VERSION_KEY, 8u64.to_be_bytes().as_slice()).unwrap();
            txn.commit().unwrap();
        }
        // A backup of that age checks out (it could not be restored otherwise).
        let report = crate::store::check::check_file(&path).unwrap();
        assert!(!report.problems.iter().any(|p| p.contains("no sweep")), "{:?}", report.problems);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
        let queued = |store: &Store| -> Vec<(u64, u64)> {
            let txn = store.db().unwrap().begin_read().unwrap();
            txn.open_table(CONVTERM_PURGED).unwrap().iter().unwrap().map(|e| e.unwrap().0.value()).collect()
        };
        // "lunch" and the author (their blocks start at 1), and "nI" of each purged message;
        // nothing of conversation 2, which was never purged.
        assert_eq!(queued(&store).len(), 2 + 150);
        assert!(queued(&store).iter().all(|(conv, _)| *conv == 1));
        while store.sweep_step(true).unwrap().more {}
        assert!(queued(&store).is_empty());
        let txn = store.db().unwrap().begin_read().unwrap();
        let index = txn.open_table(TERMCONVFIRST_POSTINGS).unwrap();
        let firsts: Vec<(u64, u64)> = index.iter().unwrap().map(|e| e.unwrap().0.value()).map(|(_, c, f)| (c, f)).collect();
        assert!(firsts.iter().all(|(conv, first)| *conv == 2 || *first > 150), "the sweep took every purged entry out");
        assert_eq!(firsts.iter().filter(|(conv, _)| *conv == 1).count(), 2 + 50, "and kept the 50 messages left");
    }
}
