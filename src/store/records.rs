//! What is stored: each record is postcard-encoded inside a version enum, so the first byte
//! of every value says which layout follows and a newer binary reads every older one.
//! Adding a layout: keep the old struct as `...V1` (private, `Deserialize` only), convert it
//! with `From`, and move the type from `one_layout!` to `two_layouts!` (a third layout would
//! add `V3` the same way).

use serde::{Deserialize, Serialize};

use crate::model::{ConvId, ConvKind, Millis, Role, Seq, UserId};

/// The schema version this binary writes. `migrate.rs` brings older files up to it.
/// Version 1: the first release. Version 2: adds the `user_tokenhash` index of sessions.
/// Version 3: adds the keyword index (`termconvfirst_postings`, `conv_indexedseq`).
/// Version 4: adds the remembered `client_id`s of sends (`usersendno_send`).
/// Version 5: adds the archive's earlier versions of messages and the reviewers' audit log.
/// Version 6: adds the admin's counters, messages per day and active people per day.
/// Version 7: adds files attached to messages (`file_record`, `filechunk_bytes`), and a
/// message's third layout (its attachments and the message it replies to).
/// Version 8: adds acknowledgements of announcements (`convsequser_ack`), a conversation's
/// third layout (whether it is an announcements room), reactions to messages
/// (`convseqemojiuser_ts`), and the low mark of the search index (`conv_indexedlow`), so an
/// index is rebuilt newest first.
/// Version 9: adds the queue of purged messages' terms (`convterm_purged`), whose index
/// entries the writer sweeps in the background.
pub const SCHEMA_VERSION: u64 = 9;

/// A send's `client_id` is remembered at least this long after the message was posted...
pub const SENDS_KEPT_FOR: Millis = 24 * 60 * 60 * 1000;
/// ...and for at least this many of the user's newest sends, however old they are.
pub const SENDS_KEPT_PER_USER: u64 = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub display_name: String,
    /// PHC string ($argon2id$...).
    pub password_hash: String,
    pub role: Role,
    pub created: Millis,
    /// An admin turned the account off: it cannot sign in and has no sessions.
    pub disabled: bool,
    /// When a tab of theirs was last open, to the hour (written at most hourly, so that
    /// presence costs no disk write per tab).
    pub last_seen: Option<Millis>,
}

/// The first layout of `UserRecord`, before accounts could be disabled.
#[derive(Deserialize)]
struct UserRecordV1 {
    name: String,
    display_name: String,
    password_hash: String,
    role: Role,
    created: Millis,
}

impl From<UserRecordV1> for UserRecord {
    fn from(v1: UserRecordV1) -> Self {
        let UserRecordV1 { name, display_name, password_hash, role, created } = v1;
        UserRecord { name, display_name, password_hash, role, created, disabled: false, last_seen: None }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: UserId,
    pub created: Millis,
    /// When it was last used, to the hour (`Change::TouchSession`): a session unused for the
    /// idle time the admin set ends.
    pub last_used: Millis,
    /// The browser and system it signed in from, in words ("Firefox on Linux").
    pub device: String,
    /// The address it was last used from.
    pub address: String,
}

/// The first layout of `SessionRecord`, before sessions were listed to their owner.
#[derive(Deserialize)]
struct SessionRecordV1 {
    user: UserId,
    created: Millis,
}

impl From<SessionRecordV1> for SessionRecord {
    fn from(v1: SessionRecordV1) -> Self {
        SessionRecord { user: v1.user, created: v1.created, last_used: v1.created, device: String::new(), address: String::new() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    pub dnd: bool,
    pub text: String,
    pub expires: Option<Millis>,
}

/// How long a conversation's messages are kept, as chosen for it; the server's policy
/// (`core::records`) bounds it. New variants go last: the stored tag is the variant's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Keep {
    /// Messages are delivered live and never reach the disk.
    Nothing,
    Days(u32),
    Forever,
    /// Kept until every member it was sent to has read it.
    UntilRead,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub kind: ConvKind,
    pub name: String,
    pub topic: String,
    pub created_by: UserId,
    pub created: Millis,
    /// A room's choice; DMs and groups keep the least of `choices`.
    pub keep: Keep,
    /// Who last changed what it keeps (`None`: nobody yet).
    pub keep_set_by: Option<UserId>,
    /// Each member's own choice, in a DM or group (a member without one counts as `Forever`).
    pub choices: Vec<(UserId, Keep)>,
    /// An announcements room: only admins post, and members acknowledge each message
    /// (`core/hub/announce.rs`).
    pub announcements: bool,
}

/// The second layout of `ConversationRecord`, before announcements rooms.
#[derive(Deserialize)]
struct ConversationRecordV2 {
    kind: ConvKind,
    name: String,
    topic: String,
    created_by: UserId,
    created: Millis,
    keep: Keep,
    keep_set_by: Option<UserId>,
    choices: Vec<(UserId, Keep)>,
}

impl From<ConversationRecordV2> for ConversationRecord {
    fn from(v2: ConversationRecordV2) -> Self {
        let ConversationRecordV2 { kind, name, topic, created_by, created, keep, keep_set_by, choices } = v2;
        ConversationRecord { kind, name, topic, created_by, created, keep, keep_set_by, choices, announcements: false }
    }
}

/// The first layout of `ConversationRecord`, before what it keeps could be chosen.
#[derive(Deserialize)]
struct ConversationRecordV1 {
    kind: ConvKind,
    name: String,
    topic: String,
    created_by: UserId,
    created: Millis,
    keep: Keep,
}

impl From<ConversationRecordV1> for ConversationRecord {
    fn from(v1: ConversationRecordV1) -> Self {
        let ConversationRecordV1 { kind, name, topic, created_by, created, keep } = v1;
        ConversationRecordV2 { kind, name, topic, created_by, created, keep, keep_set_by: None, choices: Vec::new() }.into()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberRecord {
    pub joined: Millis,
    /// Highest seq this member has read.
    pub read_seq: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageRecord {
    pub author: UserId,
    pub text: String,
    pub ts: Millis,
    pub edited_ts: Option<Millis>,
    pub deleted: bool,
    pub mentions: Vec<UserId>,
    pub client_id: Option<String>,
    /// Seq of the last change (equal to the message's own seq until edited or deleted).
    pub rev: u64,
    /// What this line announces when the server wrote it (empty `text`); `None` for what
    /// people wrote.
    pub system: Option<SystemLine>,
    /// Files attached to it (`store/files.rs`), kept while the message is, also when it is
    /// deleted under archive (then shown to nobody).
    pub attachments: Vec<Attachment>,
    /// The seq of the message this one answers, quoted above it.
    pub reply_to: Option<Seq>,
}

impl MessageRecord {
    /// A message as first written: not edited or deleted, no mentions, system line, files or
    /// reply (the rest of a record built for tests, the generator and tools).
    pub fn new(author: UserId, text: String, ts: Millis, rev: u64) -> MessageRecord {
        MessageRecord {
            author,
            text,
            ts,
            edited_ts: None,
            deleted: false,
            mentions: Vec::new(),
            client_id: None,
            rev,
            system: None,
            attachments: Vec::new(),
            reply_to: None,
        }
    }
}

/// A file as its message lists it: enough to draw it without reading the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: u64,
    pub name: String,
    pub size: u64,
    /// The media type the uploader's browser gave (shown; never how it is served).
    pub mime: String,
    /// A small copy for showing inline was uploaded with it.
    pub thumbnail: bool,
}

/// An uploaded file (its bytes are in `filechunk_bytes`, see `store/files.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub conv: ConvId,
    pub uploader: UserId,
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// The thumbnail's size in bytes (0: none) and its media type.
    pub thumb_size: u64,
    pub thumb_mime: String,
    pub created: Millis,
    /// Every chunk is written; an upload cut short is removed at the next start.
    pub complete: bool,
    /// The message it is attached to; `None` while uploaded and not sent yet.
    pub seq: Option<Seq>,
}

/// Something that happened to a conversation, kept in its history as a line of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemLine {
    /// The author changed what the conversation keeps (in a DM or group: their own choice).
    Records(Keep),
}

/// The second layout of `MessageRecord`, before attachments and replies.
#[derive(Deserialize)]
struct MessageRecordV2 {
    author: UserId,
    text: String,
    ts: Millis,
    edited_ts: Option<Millis>,
    deleted: bool,
    mentions: Vec<UserId>,
    client_id: Option<String>,
    rev: u64,
    system: Option<SystemLine>,
}

impl From<MessageRecordV2> for MessageRecord {
    fn from(v2: MessageRecordV2) -> Self {
        let MessageRecordV2 { author, text, ts, edited_ts, deleted, mentions, client_id, rev, system } = v2;
        MessageRecord {
            author,
            text,
            ts,
            edited_ts,
            deleted,
            mentions,
            client_id,
            rev,
            system,
            attachments: Vec::new(),
            reply_to: None,
        }
    }
}

/// The first layout of `MessageRecord`, before system lines.
#[derive(Deserialize)]
struct MessageRecordV1 {
    author: UserId,
    text: String,
    ts: Millis,
    edited_ts: Option<Millis>,
    deleted: bool,
    mentions: Vec<UserId>,
    client_id: Option<String>,
    rev: u64,
}

impl From<MessageRecordV1> for MessageRecord {
    fn from(v1: MessageRecordV1) -> Self {
        let MessageRecordV1 { author, text, ts, edited_ts, deleted, mentions, client_id, rev } = v1;
        MessageRecordV2 { author, text, ts, edited_ts, deleted, mentions, client_id, rev, system: None }.into()
    }
}

/// An invite link: whoever opens it may sign up, `max_uses` times at most, until `expires`,
/// with `role`. Only the hash of its token is kept, like a session's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRecord {
    pub created_by: UserId,
    pub created: Millis,
    pub expires: Millis,
    pub max_uses: u32,
    pub uses: u32,
    pub role: Role,
}

/// One thing a reviewer did, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub ts: Millis,
    pub reviewer: UserId,
    /// `list`, `search`, `read`, `export` or `file` (a download of an attachment).
    pub action: String,
    /// The conversation read or searched, if one.
    pub conv: Option<ConvId>,
    /// The search as asked (words, person, dates), or the part of the history read.
    pub query: String,
    pub results: u64,
}

/// A message sent with a `client_id`, so that sending it again is answered with the first
/// message's seq instead of posting it twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    pub conv: ConvId,
    pub client_id: String,
    pub seq: Seq,
    pub ts: Millis,
    /// `text_digest` of the text as sent; `None` when unknown (sent before schema 4 and
    /// changed since), then any text counts as the same.
    pub text_digest: Option<u64>,
}

/// A short fingerprint of a message's text, the same in every run, to tell a resend from
/// another message reusing its `client_id` without keeping the text in memory.
pub fn text_digest(text: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(text.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

/// The on-disk envelope of every record type: the variant's index is the layout's version.
/// A type with one layout stores `V1`; one with two stores `V2` and still reads `V1`.
#[derive(Serialize, Deserialize)]
enum Versioned<A, B = (), C = ()> {
    V1(A),
    V2(B),
    V3(C),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("a stored record could not be decoded: {0}")]
    Postcard(#[from] postcard::Error),
    #[error("a stored record has a layout this binary does not know")]
    UnknownLayout,
}

/// A type stored in the data file, in its newest layout, reading every older one.
pub trait Stored: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// Types that have had one layout only.
macro_rules! one_layout {
    ($($t:ty),*) => {$(
        impl Stored for $t {
            fn to_bytes(&self) -> Vec<u8> {
                // Serializing plain structs into a Vec cannot fail.
                postcard::to_stdvec(&Versioned::<&$t>::V1(self)).unwrap_or_default()
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
                match postcard::from_bytes::<Versioned<$t>>(bytes)? {
                    Versioned::V1(record) => Ok(record),
                    Versioned::V2(()) | Versioned::V3(()) => Err(DecodeError::UnknownLayout),
                }
            }
        }
    )*};
}
one_layout!(StatusRecord, MemberRecord, SendRecord, AuditRecord, InviteRecord, FileRecord);

/// Types with a second layout: written as `V2`, `V1` converted on reading.
macro_rules! two_layouts {
    ($($t:ty => $v1:ty),*) => {$(
        impl Stored for $t {
            fn to_bytes(&self) -> Vec<u8> {
                postcard::to_stdvec(&Versioned::<(), &$t>::V2(self)).unwrap_or_default()
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
                match postcard::from_bytes::<Versioned<$v1, $t>>(bytes)? {
                    Versioned::V1(old) => Ok(old.into()),
                    Versioned::V2(record) => Ok(record),
                    Versioned::V3(()) => Err(DecodeError::UnknownLayout),
                }
            }
        }
    )*};
}
two_layouts!(UserRecord => UserRecordV1, SessionRecord => SessionRecordV1);

/// Types with a third layout: written as `V3`, `V1` and `V2` converted on reading.
macro_rules! three_layouts {
    ($($t:ty => $v1:ty, $v2:ty),*) => {$(
        impl Stored for $t {
            fn to_bytes(&self) -> Vec<u8> {
                postcard::to_stdvec(&Versioned::<(), (), &$t>::V3(self)).unwrap_or_default()
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
                match postcard::from_bytes::<Versioned<$v1, $v2, $t>>(bytes)? {
                    Versioned::V1(old) => Ok(old.into()),
                    Versioned::V2(old) => Ok(old.into()),
                    Versioned::V3(record) => Ok(record),
                }
            }
        }
    )*};
}
three_layouts!(MessageRecord => MessageRecordV1, MessageRecordV2, ConversationRecord => ConversationRecordV1, ConversationRecordV2);

pub fn encode<T: Stored>(record: &T) -> Vec<u8> {
    record.to_bytes()
}

pub fn decode<T: Stored>(bytes: &[u8]) -> Result<T, DecodeError> {
    T::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_behind_its_version_tag() {
        let record = StatusRecord { dnd: true, text: "Building B".into(), expires: Some(5) };
        let bytes = encode(&record);
        assert_eq!(bytes[0], 0, "the first byte is the version tag (V1)");
        let back: StatusRecord = decode(&bytes).unwrap();
        assert_eq!(back.text, "Building B");
        assert!(decode::<StatusRecord>(&[7, 1, 2]).is_err(), "an unknown version is an error, not garbage");
    }

    /// The layout every message had before system lines, written as the old binary wrote it.
    #[derive(Serialize)]
    struct OldMessage {
        author: UserId,
        text: String,
        ts: Millis,
        edited_ts: Option<Millis>,
        deleted: bool,
        mentions: Vec<UserId>,
        client_id: Option<String>,
        rev: u64,
    }

    #[test]
    fn messages_saved_by_an_older_binary_still_read() {
        let old = OldMessage {
            author: UserId(2),
            text: "lunch?".into(),
            ts: 5,
            edited_ts: None,
            deleted: false,
            mentions: vec![UserId(1)],
            client_id: Some("c1".into()),
            rev: 7,
        };
        let bytes = postcard::to_stdvec(&Versioned::<&OldMessage>::V1(&old)).unwrap();
        let read: MessageRecord = decode(&bytes).unwrap();
        assert_eq!((read.author, read.text.as_str(), read.rev, read.system), (UserId(2), "lunch?", 7, None));
        let line = MessageRecord { system: Some(SystemLine::Records(Keep::UntilRead)), text: String::new(), ..read };
        let again: MessageRecord = decode(&encode(&line)).unwrap();
        assert_eq!(again.system, Some(SystemLine::Records(Keep::UntilRead)), "the new layout round-trips");
        assert_eq!(encode(&line)[0], 2, "new records are written in the third layout");
        let v2 = postcard::to_stdvec(&Versioned::<(), (&OldMessage, Option<SystemLine>)>::V2((&old, None))).unwrap();
        let read: MessageRecord = decode(&v2).unwrap();
        assert_eq!((read.text.as_str(), read.attachments.len(), read.reply_to), ("lunch?", 0, None), "the second layout reads");
        let with_file = MessageRecord {
            attachments: vec![Attachment { id: 3, name: "a.png".into(), size: 9, mime: "image/png".into(), thumbnail: true }],
            reply_to: Some(Seq(4)),
            ..read
        };
        assert_eq!(decode::<MessageRecord>(&encode(&with_file)).unwrap().attachments, with_file.attachments);
    }

    #[test]
    fn conversations_saved_before_announcements_read_as_ordinary_rooms() {
        let old = (ConvKind::Room, "news", "", UserId(1), 5u64, Keep::Forever, Some(UserId(1)), Vec::<(UserId, Keep)>::new());
        let bytes = postcard::to_stdvec(&Versioned::<(), _>::V2(&old)).unwrap();
        let read: ConversationRecord = decode(&bytes).unwrap();
        assert_eq!((read.name.as_str(), read.keep_set_by, read.announcements), ("news", Some(UserId(1)), false));
        let news = ConversationRecord { announcements: true, ..read };
        assert_eq!(encode(&news)[0], 2, "new records are written in the third layout");
        assert!(decode::<ConversationRecord>(&encode(&news)).unwrap().announcements, "the new layout round-trips");
    }
}
