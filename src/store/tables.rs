//! Every redb table of the data file, in one place. Tables are named `<key>_<value>`; integer
//! keys are native redb integers (ordered), records are versioned postcard bytes
//! (see `records.rs`).

use redb::TableDefinition;

/// Facts about the file itself: `schema_version` (u64, big-endian bytes).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// user id -> UserRecord
pub const USER_RECORD: TableDefinition<u64, &[u8]> = TableDefinition::new("user_record");
/// sign-in name -> user id
pub const NAME_USER: TableDefinition<&str, u64> = TableDefinition::new("name_user");
/// SHA-256 of the session token -> SessionRecord. The token itself is never stored, so a
/// copy of the data file does not let anyone sign in.
pub const TOKENHASH_SESSION: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokenhash_session");
/// (user id, SHA-256 of a session token) -> (): a user's sessions, so a password change can
/// end them all. Added in schema version 2.
pub const USER_TOKENHASH: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("user_tokenhash");
/// user id -> StatusRecord (do-not-disturb and custom status survive restarts)
pub const USER_STATUS: TableDefinition<u64, &[u8]> = TableDefinition::new("user_status");
/// conversation id -> ConversationRecord
pub const CONV_RECORD: TableDefinition<u64, &[u8]> = TableDefinition::new("conv_record");
/// (conversation id, user id) -> MemberRecord
pub const CONVUSER_MEMBER: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("convuser_member");
/// (conversation id, seq) -> MessageRecord
pub const CONVSEQ_MESSAGE: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("convseq_message");
/// (conversation id, rev) -> seq of the message that this edit or delete changed; what makes
/// "everything after N" cheap for a tab catching up.
pub const CONVREV_SEQ: TableDefinition<(u64, u64), u64> = TableDefinition::new("convrev_seq");
/// (term hash, conversation id, first seq) -> a block of seqs: the keyword index (see
/// `search/`, and `postings.rs` for the blocks). Added in schema version 3, like the next.
pub const TERMCONVFIRST_POSTINGS: TableDefinition<(u64, u64, u64), &[u8]> = TableDefinition::new("termconvfirst_postings");
/// conversation id -> seq: the high mark of the conversation's band in the keyword index.
/// Every stored message of it above its low mark (`conv_indexedlow`) and up to this seq is in
/// the index, and no other; newer ones are indexed in the background, and searched by
/// reading them meanwhile.
pub const CONV_INDEXEDSEQ: TableDefinition<u64, u64> = TableDefinition::new("conv_indexedseq");
/// conversation id -> seq: the low mark of the band (missing: 0, everything below the high
/// mark is indexed). Set while the index is rebuilt, which goes newest first: the band grows
/// downward, and a search reads the messages at or below it directly, within a budget.
/// Added in schema version 8.
pub const CONV_INDEXEDLOW: TableDefinition<u64, u64> = TableDefinition::new("conv_indexedlow");
/// (user id, n) -> SendRecord: the user's n-th message sent with a `client_id` (n counts up
/// from 1 per user), written in the message's own commit, so that a resend is recognized
/// after a restart as well. Kept for the window of `records::SENDS_KEPT_FOR` and
/// `SENDS_KEPT_PER_USER`; the writer prunes older ones (`Store::prune_sends`). Added in
/// schema version 4, like the next.
pub const USERSENDNO_SEND: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("usersendno_send");
/// (user id, conversation id, client_id) -> n of the send in `usersendno_send`: how the
/// writer finds, in a new message's own transaction, that its `client_id` was sent before.
pub const USERCONVCLIENTID_SENDNO: TableDefinition<(u64, u64, &str), u64> = TableDefinition::new("userconvclientid_sendno");
/// (conversation id, seq, rev) -> MessageRecord: every earlier version of a message (its
/// original and each edit before a delete), written only under the `archive` policy so that a
/// reviewer sees what users no longer do. Added in schema version 5, like the next.
pub const CONVSEQREV_VERSION: TableDefinition<(u64, u64, u64), &[u8]> = TableDefinition::new("convseqrev_version");
/// n -> AuditRecord: what reviewers did, in order (n counts up from 1). Only appended to:
/// nothing in the server changes or removes an entry.
pub const N_AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("n_audit");
/// SHA-256 of an invite link's token -> InviteRecord. Made on open from the release that
/// added invites; a file from before it has none, and readers take a missing table as empty.
pub const INVITEHASH_INVITE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("invitehash_invite");
/// conversation id -> the conversation's highest seq (message or change) when messages of it
/// were last purged, so that its seqs go on from there after a restart even when the newest
/// messages are gone (`purge.rs`). Made by the first purge: older files and files never
/// purged lack it, and readers take a missing table as empty.
pub const CONV_PURGEDSEQ: TableDefinition<u64, u64> = TableDefinition::new("conv_purgedseq");
/// local day (days since 1970-01-01 in the server's time zone) -> messages posted that day,
/// counted in each message's commit (`stats.rs`); a purge does not take them back. Added in
/// schema version 6, like the next.
pub const DAY_MESSAGES: TableDefinition<u32, u64> = TableDefinition::new("day_messages");
/// (local day, user id) -> (): the person opened a tab, posted or read that day. Kept for
/// `stats::ACTIVE_KEPT_DAYS` days.
pub const DAYUSER_ACTIVE: TableDefinition<(u32, u64), ()> = TableDefinition::new("dayuser_active");
/// file id -> FileRecord: an uploaded file (`files.rs`), attached to a message or waiting to
/// be sent. Added in schema version 7, like the next.
pub const FILE_RECORD: TableDefinition<u64, &[u8]> = TableDefinition::new("file_record");
/// (file id, chunk no) -> up to `files::CHUNK` bytes of the file; the thumbnail's chunks are
/// numbered from `files::THUMB_FIRST`. Read and written one chunk at a time, so no file sits
/// whole in memory.
pub const FILECHUNK_BYTES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("filechunk_bytes");
/// (conversation id, seq, user id) -> when that member acknowledged the announcement at that
/// seq ("Got it", `acks.rs`); removed with the message. Added in schema version 8.
pub const CONVSEQUSER_ACK: TableDefinition<(u64, u64, u64), u64> = TableDefinition::new("convsequser_ack");
/// (conversation id, seq, emoji, user id) -> when they reacted (ms): who reacted how to a
/// message of a recorded conversation (`reactions.rs`); removed with the message. Added in
/// schema version 8.
pub const CONVSEQEMOJIUSER_TS: TableDefinition<(u64, u64, &str, u64), u64> = TableDefinition::new("convseqemojiuser_ts");
/// (conversation id, term hash) -> (): a term of messages purged below the conversation's
/// first message, whose index entries (`termconvfirst_postings`) still name them. The purge
/// only queues the term, and the writer takes those entries out in small background steps
/// (`search::sweep_step`), so a retention purge rewrites no posting block in its own commit.
/// Added in schema version 9.
pub const CONVTERM_PURGED: TableDefinition<(u64, u64), ()> = TableDefinition::new("convterm_purged");
