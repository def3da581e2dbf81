//! `hallway check`: is this a whole Hallway data file? redb's integrity check first (the
//! checksum of every page, the allocator state rebuilt), then every record must decode and
//! every index must agree with the table it indexes: names and sessions with accounts,
//! members with conversations and accounts, edits with their messages, remembered sends with
//! their index, and the search index with the words of the messages in each conversation's
//! band (above its `conv_indexedlow` mark and up to its `conv_indexedseq` mark).
//!
//! The search index is compared without holding either side in memory: each side folds its
//! (term, conversation, seq) triples into a count and a sum of their hashes per conversation,
//! which must be equal. Problems name tables, ids and seqs, never what anyone wrote.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use redb::{
    Database, Key, MultimapTableHandle, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    TableHandle, Value,
};

use super::records::{
    AuditRecord, ConversationRecord, FileRecord, InviteRecord, MemberRecord, MessageRecord, SCHEMA_VERSION, SendRecord,
    SessionRecord, StatusRecord, UserRecord, decode,
};
use super::tables::*;
use super::{CACHE_BYTES, StoreError, postings, search};

/// Problems listed at most; the rest are counted.
const SHOWN_PROBLEMS: usize = 100;

/// What a check found.
#[derive(Debug, Default)]
pub struct Report {
    /// The schema version the file holds.
    pub schema: u64,
    /// Entries per table.
    pub counts: BTreeMap<String, u64>,
    pub problems: Vec<String>,
    /// Problems found beyond those listed.
    pub more_problems: u64,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every problem found, listed or not.
    pub fn problem_count(&self) -> u64 {
        self.problems.len() as u64 + self.more_problems
    }

    fn problem(&mut self, what: String) {
        if self.problems.len() < SHOWN_PROBLEMS {
            self.problems.push(what);
        } else {
            self.more_problems += 1;
        }
    }

    fn count(&self, table: &str) -> u64 {
        self.counts.get(table).copied().unwrap_or(0)
    }

    /// One line: what the file holds.
    pub fn summary(&self) -> String {
        format!(
            "schema {}: {} accounts, {} signed-in sessions, {} conversations, {} memberships, {} messages, {} edits and \
             deletes, {} search index blocks, {} archived versions, {} audit entries",
            self.schema,
            self.count(USER_RECORD.name()),
            self.count(TOKENHASH_SESSION.name()),
            self.count(CONV_RECORD.name()),
            self.count(CONVUSER_MEMBER.name()),
            self.count(CONVSEQ_MESSAGE.name()),
            self.count(CONVREV_SEQ.name()),
            self.count(TERMCONVFIRST_POSTINGS.name()),
            self.count(CONVSEQREV_VERSION.name()),
            self.count(N_AUDIT.name()),
        )
    }
}

/// Opens the file at `path` with redb's integrity check and checks it. The data file of a
/// running server is refused (`InUse`): check a backup of it instead. A file that redb
/// cannot open, or that holds no schema version, is `NotHallway`; one from a newer schema
/// is `TooNew`.
pub fn check_file(path: &Path) -> Result<Report, StoreError> {
    if !path.is_file() {
        return Err(StoreError::NotHallway(format!("{} does not exist or is not a file", path.display())));
    }
    let db = open_checked(path, path)?;
    let report = check_snapshot(&db.begin_read()?, path)?;
    db.close().map_err(redb::Error::from)?;
    Ok(report)
}

/// Opens a file that may be anything with redb's integrity check; errors name it `shown`.
pub(crate) fn open_checked(path: &Path, shown: &Path) -> Result<Database, StoreError> {
    Database::builder().set_check_integrity_on_open(true).set_cache_size(CACHE_BYTES).open(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(shown.display().to_string()),
        redb::DatabaseError::Storage(redb::StorageError::Io(e)) if e.kind() != std::io::ErrorKind::InvalidData => {
            StoreError::Redb(redb::Error::Io(e))
        }
        other => StoreError::NotHallway(format!("{} is not a Hallway data file (redb cannot open it: {other})", shown.display())),
    })
}

/// The schema version of an open file: refused when there is none or it is newer than this
/// binary's.
pub(crate) fn schema_of(txn: &ReadTransaction, path: &Path) -> Result<u64, StoreError> {
    let not_ours =
        || StoreError::NotHallway(format!("{} is not a Hallway data file (it holds no schema version)", path.display()));
    let meta = table(txn, META)?.ok_or_else(not_ours)?;
    let version = meta.get("schema_version")?.and_then(|v| <[u8; 8]>::try_from(v.value()).ok()).map(u64::from_be_bytes);
    let version = version.ok_or_else(not_ours)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found: version, supported: SCHEMA_VERSION });
    }
    Ok(version)
}

/// A table of the snapshot; `None` when the file does not have it (an older schema).
fn table<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    definition: TableDefinition<K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>, StoreError> {
    match txn.open_table(definition) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every entry of a table that may be missing.
macro_rules! each {
    ($txn:expr, $table:expr, |$key:pat_param, $value:pat_param| $body:block) => {
        if let Some(table) = table($txn, $table)? {
            for entry in table.iter()? {
                let (key, value) = entry?;
                let $key = key.value();
                let $value = value.value();
                $body
            }
        }
    };
}

/// Per conversation: how many (term, seq) postings and the sum of their hashes.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
struct Fold {
    count: u64,
    sum: u64,
}

impl Fold {
    fn add(&mut self, term: u64, conv: u64, seq: u64) {
        let mut bytes = [0; 24];
        bytes[..8].copy_from_slice(&term.to_le_bytes());
        bytes[8..16].copy_from_slice(&conv.to_le_bytes());
        bytes[16..].copy_from_slice(&seq.to_le_bytes());
        self.count += 1;
        self.sum = self.sum.wrapping_add(xxhash_rust::xxh3::xxh3_64(&bytes));
    }
}

/// Checks one snapshot of an open file.
pub fn check_snapshot(txn: &ReadTransaction, shown: &Path) -> Result<Report, StoreError> {
    let mut report = Report { schema: schema_of(txn, shown)?, ..Report::default() };
    report.counts = super::backup::table_counts(txn)?;
    let known: BTreeSet<&str> = [
        META.name(),
        USER_RECORD.name(),
        NAME_USER.name(),
        TOKENHASH_SESSION.name(),
        USER_TOKENHASH.name(),
        USER_STATUS.name(),
        CONV_RECORD.name(),
        CONVUSER_MEMBER.name(),
        CONVSEQ_MESSAGE.name(),
        CONVREV_SEQ.name(),
        TERMCONVFIRST_POSTINGS.name(),
        CONV_INDEXEDSEQ.name(),
        CONV_INDEXEDLOW.name(),
        USERSENDNO_SEND.name(),
        USERCONVCLIENTID_SENDNO.name(),
        CONVSEQREV_VERSION.name(),
        N_AUDIT.name(),
        CONV_PURGEDSEQ.name(),
        INVITEHASH_INVITE.name(),
        DAY_MESSAGES.name(),
        DAYUSER_ACTIVE.name(),
        FILE_RECORD.name(),
        FILECHUNK_BYTES.name(),
        CONVSEQUSER_ACK.name(),
        CONVSEQEMOJIUSER_TS.name(),
        CONVTERM_PURGED.name(),
    ]
    .into();
    for name in report.counts.keys().filter(|name| !known.contains(name.as_str())).cloned().collect::<Vec<_>>() {
        report.problem(format!("a table this binary does not know: {name}"));
    }
    if let Some(table) = txn.list_multimap_tables()?.next() {
        report.problem(format!("a table this binary does not know: {}", table.name()));
    }
    let r = &mut report;

    // Accounts and what points at them.
    let mut users: HashMap<u64, String> = HashMap::new();
    each!(txn, USER_RECORD, |id, bytes| {
        match decode::<UserRecord>(bytes) {
            Ok(user) => {
                users.insert(id, user.name);
            }
            Err(e) => r.problem(format!("user_record {id}: {e}")),
        }
    });
    let names = table(txn, NAME_USER)?;
    for (id, name) in &users {
        let points_to = match &names {
            Some(names) => names.get(name.as_str())?.map(|v| v.value()),
            None => None,
        };
        if points_to != Some(*id) {
            r.problem(format!("name_user: the sign-in name of user {id} does not lead to it (it leads to {points_to:?})"));
        }
    }
    each!(txn, NAME_USER, |_, id| {
        if !users.contains_key(&id) {
            r.problem(format!("name_user: a sign-in name leads to user {id}, who does not exist"));
        }
    });
    let by_user = table(txn, USER_TOKENHASH)?;
    let mut sessions: HashMap<Vec<u8>, u64> = HashMap::new();
    each!(txn, TOKENHASH_SESSION, |hash, bytes| {
        match decode::<SessionRecord>(bytes) {
            Ok(session) => {
                let user = session.user.0;
                if !users.contains_key(&user) {
                    r.problem(format!("tokenhash_session: a session of user {user}, who does not exist"));
                }
                let indexed = match &by_user {
                    Some(index) => index.get((user, hash))?.is_some(),
                    None => false,
                };
                if !indexed {
                    r.problem(format!(
                        "user_tokenhash: a session of user {user} is missing, so a password change would not end it"
                    ));
                }
                sessions.insert(hash.to_vec(), user);
            }
            Err(e) => r.problem(format!("tokenhash_session: {e}")),
        }
    });
    each!(txn, USER_TOKENHASH, |(user, hash), ()| {
        if sessions.get(hash) != Some(&user) {
            r.problem(format!("user_tokenhash: an entry of user {user} names no session of theirs"));
        }
    });
    drop(sessions);
    each!(txn, USER_STATUS, |id, bytes| {
        if let Err(e) = decode::<StatusRecord>(bytes) {
            r.problem(format!("user_status {id}: {e}"));
        }
        if !users.contains_key(&id) {
            r.problem(format!("user_status: a status of user {id}, who does not exist"));
        }
    });

    // Conversations and what belongs to them.
    let mut convs: HashSet<u64> = HashSet::new();
    each!(txn, CONV_RECORD, |id, bytes| {
        if let Err(e) = decode::<ConversationRecord>(bytes) {
            r.problem(format!("conv_record {id}: {e}"));
        }
        convs.insert(id);
    });
    each!(txn, CONVUSER_MEMBER, |(conv, user), bytes| {
        if let Err(e) = decode::<MemberRecord>(bytes) {
            r.problem(format!("convuser_member ({conv}, {user}): {e}"));
        }
        if !convs.contains(&conv) || !users.contains_key(&user) {
            r.problem(format!("convuser_member: user {user} is a member of conversation {conv}, but one of them does not exist"));
        }
    });
    let mut indexed: HashMap<u64, u64> = HashMap::new();
    each!(txn, CONV_INDEXEDSEQ, |conv, seq| {
        if !convs.contains(&conv) {
            r.problem(format!("conv_indexedseq: a mark of conversation {conv}, which does not exist"));
        }
        indexed.insert(conv, seq);
    });
    let mut lows: HashMap<u64, u64> = HashMap::new();
    each!(txn, CONV_INDEXEDLOW, |conv, seq| {
        if !convs.contains(&conv) {
            r.problem(format!("conv_indexedlow: a mark of conversation {conv}, which does not exist"));
        }
        if seq > indexed.get(&conv).copied().unwrap_or(0) {
            r.problem(format!("conv_indexedlow: the low mark of conversation {conv} is above its high mark"));
        }
        lows.insert(conv, seq);
    });
    each!(txn, CONV_PURGEDSEQ, |conv, _| {
        if !convs.contains(&conv) {
            r.problem(format!("conv_purgedseq: a mark of conversation {conv}, which does not exist"));
        }
    });

    // Messages, and the search index their words call for.
    let mut expected: HashMap<u64, Fold> = HashMap::new();
    let mut missing_convs: BTreeSet<u64> = BTreeSet::new();
    // Each conversation's first message (`search::floor`): entries below it are of purged
    // messages, never read, and each must be queued for the sweep (`convterm_purged`).
    let mut floors: HashMap<u64, u64> = HashMap::new();
    each!(txn, CONVSEQ_MESSAGE, |(conv, seq), bytes| {
        if !convs.contains(&conv) {
            missing_convs.insert(conv);
        }
        floors.entry(conv).or_insert(seq);
        match decode::<MessageRecord>(bytes) {
            Ok(message) => {
                if message.rev < seq {
                    r.problem(format!("convseq_message ({conv}, {seq}): its last change {} is before it", message.rev));
                }
                if !users.contains_key(&message.author.0) {
                    r.problem(format!("convseq_message ({conv}, {seq}): by user {}, who does not exist", message.author.0));
                }
                let low = lows.get(&conv).copied().unwrap_or(0);
                if seq > low && seq <= indexed.get(&conv).copied().unwrap_or(0) {
                    let fold = expected.entry(conv).or_default();
                    for term in search::terms_of(&message) {
                        fold.add(term, conv, seq);
                    }
                }
            }
            Err(e) => r.problem(format!("convseq_message ({conv}, {seq}): {e}")),
        }
    });
    for conv in missing_convs {
        r.problem(format!("convseq_message: messages of conversation {conv}, which does not exist"));
    }
    let messages = table(txn, CONVSEQ_MESSAGE)?;
    let message_at = |conv: u64, seq: u64| -> Result<Option<MessageRecord>, StoreError> {
        let Some(messages) = &messages else { return Ok(None) };
        Ok(messages.get((conv, seq))?.and_then(|v| decode::<MessageRecord>(v.value()).ok()))
    };
    each!(txn, CONVREV_SEQ, |(conv, rev), seq| {
        match message_at(conv, seq)? {
            Some(message) if message.rev >= rev && rev > seq => {}
            Some(_) => r.problem(format!("convrev_seq ({conv}, {rev}): the change does not fit message {seq}")),
            None => r.problem(format!("convrev_seq ({conv}, {rev}): a change of message {seq}, which is not there")),
        }
    });
    each!(txn, CONVSEQUSER_ACK, |(conv, seq, user), _ts| {
        if message_at(conv, seq)?.is_none_or(|m| m.deleted) {
            r.problem(format!("convsequser_ack ({conv}, {seq}, {user}): an acknowledgement of a message that is not there"));
        }
    });
    each!(txn, CONVSEQREV_VERSION, |(conv, seq, rev), bytes| {
        if let Err(e) = decode::<MessageRecord>(bytes) {
            r.problem(format!("convseqrev_version ({conv}, {seq}, {rev}): {e}"));
        }
        if message_at(conv, seq)?.is_none() {
            r.problem(format!("convseqrev_version ({conv}, {seq}, {rev}): an earlier version of a message that is not there"));
        }
    });

    // Before schema 9 (a file or backup not opened by this binary yet) dead entries waited
    // for the vacuum unqueued; opening the file queues them.
    let sweeps = table(txn, CONVTERM_PURGED)?.is_some();
    let mut queued: BTreeSet<(u64, u64)> = BTreeSet::new();
    each!(txn, CONVTERM_PURGED, |key, ()| {
        queued.insert(key);
    });
    let mut unqueued: BTreeMap<u64, usize> = BTreeMap::new();
    let mut found: HashMap<u64, Fold> = HashMap::new();
    let mut previous: Option<(u64, u64, u64)> = None;
    each!(txn, TERMCONVFIRST_POSTINGS, |(term, conv, first), bytes| {
        match postings::decode(first, bytes) {
            Ok(seqs) => {
                if let Some((p_term, p_conv, p_last)) = previous
                    && (p_term, p_conv) == (term, conv)
                    && p_last >= first
                {
                    r.problem(format!("termconvfirst_postings: blocks of conversation {conv} overlap at seq {first}"));
                }
                if seqs.windows(2).any(|pair| pair[0] >= pair[1]) {
                    r.problem(format!("termconvfirst_postings: a block of conversation {conv} at seq {first} repeats a seq"));
                }
                let fold = found.entry(conv).or_default();
                let floor = floors.get(&conv).copied().unwrap_or(u64::MAX);
                for seq in seqs.iter().filter(|seq| **seq >= floor) {
                    fold.add(term, conv, *seq);
                }
                if sweeps && first < floor && !queued.contains(&(conv, term)) {
                    *unqueued.entry(conv).or_default() += 1;
                }
                previous = Some((term, conv, seqs.last().copied().unwrap_or(first)));
            }
            Err(e) => r.problem(format!("termconvfirst_postings: {e}")),
        }
    });
    for (conv, blocks) in unqueued {
        r.problem(format!(
            "termconvfirst_postings: {blocks} blocks of conversation {conv} name purged messages, and no sweep of \
             them is queued (convterm_purged)"
        ));
    }
    let all: BTreeSet<u64> = expected.keys().chain(found.keys()).copied().collect();
    for conv in all {
        let (want, have) = (expected.get(&conv).copied().unwrap_or_default(), found.get(&conv).copied().unwrap_or_default());
        if want != have {
            r.problem(format!(
                "termconvfirst_postings: the search index of conversation {conv} holds {} postings where its messages \
                 above seq {} and up to seq {} call for {}{}",
                have.count,
                lows.get(&conv).copied().unwrap_or(0),
                indexed.get(&conv).copied().unwrap_or(0),
                want.count,
                if want.count == have.count { ", but not the same ones" } else { "" }
            ));
        }
    }

    // Remembered sends and their index; the audit log.
    let sends = table(txn, USERSENDNO_SEND)?;
    each!(txn, USERSENDNO_SEND, |(user, n), bytes| {
        if let Err(e) = decode::<SendRecord>(bytes) {
            r.problem(format!("usersendno_send ({user}, {n}): {e}"));
        }
    });
    each!(txn, USERCONVCLIENTID_SENDNO, |(user, conv, client_id), n| {
        let send = match &sends {
            Some(sends) => sends.get((user, n))?.and_then(|v| decode::<SendRecord>(v.value()).ok()),
            None => None,
        };
        if !send.is_some_and(|send| send.conv.0 == conv && send.client_id == client_id) {
            r.problem(format!("userconvclientid_sendno: send {n} of user {user} in conversation {conv} is not there"));
        }
    });
    each!(txn, N_AUDIT, |n, bytes| {
        if let Err(e) = decode::<AuditRecord>(bytes) {
            r.problem(format!("n_audit {n}: {e}"));
        }
    });
    each!(txn, INVITEHASH_INVITE, |_hash, bytes| {
        if let Err(e) = decode::<InviteRecord>(bytes) {
            r.problem(format!("invitehash_invite: an invite does not decode: {e}"));
        }
    });
    check_files(txn, r, &message_at)?;
    super::reactions::check(txn, &|user| users.contains_key(&user), &mut |what| r.problem(what))?;
    Ok(report)
}

/// Every file's chunks against its record (as many as its size calls for, each full but the
/// last), every chunk owned by a file, and every attached file listed by its message.
fn check_files(
    txn: &ReadTransaction,
    r: &mut Report,
    message_at: &dyn Fn(u64, u64) -> Result<Option<MessageRecord>, StoreError>,
) -> Result<(), StoreError> {
    use super::files::{CHUNK, THUMB_FIRST, chunks_of};
    let mut files: HashMap<u64, FileRecord> = HashMap::new();
    each!(txn, FILE_RECORD, |id, bytes| {
        match decode::<FileRecord>(bytes) {
            Ok(file) => {
                if let Some(seq) = file.seq {
                    let listed = message_at(file.conv.0, seq.0)?.is_some_and(|m| m.attachments.iter().any(|a| a.id == id));
                    if !listed {
                        r.problem(format!(
                            "file_record {id}: attached to message {} of conversation {}, which does not list it",
                            seq.0, file.conv.0
                        ));
                    }
                }
                files.insert(id, file);
            }
            Err(e) => r.problem(format!("file_record {id}: {e}")),
        }
    });
    // (data chunks, data bytes, thumbnail chunks, thumbnail bytes) found per file.
    let mut found: HashMap<u64, (u64, u64, u64, u64)> = HashMap::new();
    each!(txn, FILECHUNK_BYTES, |(id, n), bytes| {
        let Some(file) = files.get(&id) else {
            r.problem(format!("filechunk_bytes ({id}, {n}): a chunk of file {id}, which does not exist"));
            continue;
        };
        let thumb = n >= THUMB_FIRST;
        let (size, index) = if thumb { (file.thumb_size, n - THUMB_FIRST) } else { (file.size, n) };
        let want = (size - index.saturating_mul(CHUNK as u64).min(size)).min(CHUNK as u64);
        if index >= chunks_of(size) || (file.complete && bytes.len() as u64 != want) {
            r.problem(format!(
                "filechunk_bytes ({id}, {n}): {} bytes where file {id} of {size} bytes calls for {want}",
                bytes.len()
            ));
        }
        let counts = found.entry(id).or_default();
        if thumb {
            counts.2 += 1;
            counts.3 += bytes.len() as u64;
        } else {
            counts.0 += 1;
            counts.1 += bytes.len() as u64;
        }
    });
    for (id, file) in files.iter().filter(|(_, f)| f.complete) {
        let have = found.get(id).copied().unwrap_or_default();
        let want = (chunks_of(file.size), file.size, chunks_of(file.thumb_size), file.thumb_size);
        if have != want {
            r.problem(format!(
                "filechunk_bytes: file {id} has {} chunks of {} bytes (thumbnail: {} of {}) where its record calls for {} of {} ({} of {})",
                have.0, have.1, have.2, have.3, want.0, want.1, want.2, want.3
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConvId, ConvKind, Role, Seq, UserId};
    use crate::store::records::{Keep, encode};
    use crate::store::{Change, Store};

    /// Two accounts in a room, 300 messages (some edited, one deleted), all indexed but the
    /// newest, a session: a file as a server leaves it.
    fn busy_file(path: &Path) {
        let store = Store::open(path).unwrap();
        let user = |name: &str| UserRecord {
            name: name.into(),
            display_name: name.into(),
            password_hash: String::new(),
            role: Role::Member,
            created: 0,
            disabled: false,
            last_seen: None,
        };
        let room = ConversationRecord {
            kind: ConvKind::Room,
            name: "general".into(),
            topic: String::new(),
            created_by: UserId(1),
            created: 0,
            keep: Keep::Forever,
            keep_set_by: None,
            choices: Vec::new(),
            announcements: false,
        };
        let mut changes = vec![
            Change::PutUser(UserId(1), user("alice")),
            Change::PutUser(UserId(2), user("bob")),
            Change::PutSession(
                [7; 32],
                SessionRecord { user: UserId(2), created: 0, last_used: 0, device: String::new(), address: String::new() },
            ),
            Change::PutConversation(ConvId(1), room),
            Change::PutMember(ConvId(1), UserId(1), MemberRecord { joined: 0, read_seq: 0 }),
            Change::PutMember(ConvId(1), UserId(2), MemberRecord { joined: 0, read_seq: 0 }),
        ];
        for seq in 1..=300u64 {
            let mut message = crate::store::tests::message(1 + seq % 2, &[]);
            message.text = format!("printer {seq} jammed again");
            message.rev = seq;
            message.client_id = Some(format!("c{seq}"));
            changes.push(Change::PutMessage(ConvId(1), Seq(seq), message));
        }
        store.apply_now(changes).unwrap();
        store.index_everything().unwrap();
        let mut edited = crate::store::tests::message(2, &[]);
        (edited.text, edited.rev) = ("printer fixed".into(), 301);
        let mut deleted = crate::store::tests::message(1, &[]);
        (deleted.deleted, deleted.rev) = (true, 302);
        let mut newest = crate::store::tests::message(1, &[]);
        (newest.text, newest.rev) = ("not indexed yet".into(), 303);
        store
            .apply_now(vec![
                Change::UpdateMessage(ConvId(1), Seq(10), edited),
                Change::UpdateMessage(ConvId(1), Seq(11), deleted),
                Change::PutMessage(ConvId(1), Seq(303), newest),
            ])
            .unwrap();
    }

    fn damage(path: &Path, harm: impl FnOnce(&redb::WriteTransaction)) {
        let db = Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        harm(&txn);
        txn.commit().unwrap();
    }

    #[test]
    fn a_file_as_the_server_leaves_it_checks_out_with_its_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        busy_file(&path);
        let report = check_file(&path).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!((report.schema, report.count("convseq_message"), report.count("user_record")), (SCHEMA_VERSION, 301, 2));
        assert!(report.summary().contains("301 messages"), "{}", report.summary());
    }

    #[test]
    fn every_kind_of_disagreement_between_an_index_and_its_table_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        busy_file(&path);
        // The words of message 20 are gone from the index; a sign-in name without its
        // account; a member of no conversation; a session missing from its user's list; a
        // record that does not decode.
        let terms = search::terms_of(&MessageRecord { text: "jammed".into(), ..crate::store::tests::message(1, &[]) });
        damage(&path, |txn| {
            let mut index = txn.open_table(TERMCONVFIRST_POSTINGS).unwrap();
            for term in terms {
                postings::remove(&mut index, term, 1, 20).unwrap();
            }
            drop(index);
            txn.open_table(NAME_USER).unwrap().insert("carol", 9).unwrap();
            txn.open_table(CONVUSER_MEMBER)
                .unwrap()
                .insert((5, 1), encode(&MemberRecord { joined: 0, read_seq: 0 }).as_slice())
                .unwrap();
            txn.open_table(USER_TOKENHASH).unwrap().remove((2, [7u8; 32].as_slice())).unwrap();
            txn.open_table(USER_STATUS).unwrap().insert(1, [9u8, 9, 9].as_slice()).unwrap();
        });
        let report = check_file(&path).unwrap();
        let all = report.problems.join("\n");
        for expected in ["search index of conversation 1", "name_user", "convuser_member", "user_tokenhash", "user_status 1"] {
            assert!(all.contains(expected), "{expected} should be found among:\n{all}");
        }
        assert_eq!(report.problem_count(), 5, "{all}");
        assert!(!all.contains("jammed") && !all.contains("printer"), "problems never quote what people wrote: {all}");
    }

    #[test]
    fn junk_and_a_newer_schema_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.redb");
        std::fs::write(&junk, vec![7u8; 100_000]).unwrap();
        assert!(matches!(check_file(&junk), Err(StoreError::NotHallway(_))), "{:?}", check_file(&junk));
        let other = dir.path().join("other.redb");
        drop(Database::create(&other).unwrap());
        assert!(matches!(check_file(&other), Err(StoreError::NotHallway(why)) if why.contains("schema version")));
        let newer = dir.path().join("newer.redb");
        busy_file(&newer);
        damage(&newer, |txn| {
            txn.open_table(META).unwrap().insert("schema_version", (SCHEMA_VERSION + 1).to_be_bytes().as_slice()).unwrap();
        });
        assert!(matches!(check_file(&newer), Err(StoreError::TooNew { .. })));
    }
}
