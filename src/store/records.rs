//! What is stored: each record is postcard-encoded inside a version enum, so the first bytes
//! of every value say which layout follows and a newer binary can read every older one.
//! Adding a layout: add `V2` to the enum, keep `V1`'s struct, convert in `upgrade`.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::model::{ConvId, ConvKind, Millis, Role, Seq, UserId};

/// The schema version this binary writes. `migrate.rs` brings older files up to it.
/// Version 1: the first release. Version 2: adds the `user_tokenhash` index of sessions.
/// Version 3: adds the keyword index (`termconvfirst_postings`, `conv_indexedseq`).
/// Version 4: adds the remembered `client_id`s of sends (`usersendno_send`).
pub const SCHEMA_VERSION: u64 = 4;

/// A send's `client_id` is remembered at least this long after the message was posted...
pub const SENDS_KEPT_FOR: Millis = 24 * 60 * 60 * 1000;
/// ...and for at least this many of the user's newest sends, however old they are.
pub const SENDS_KEPT_PER_USER: u64 = 10_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub display_name: String,
    /// PHC string ($argon2id$...).
    pub password_hash: String,
    pub role: Role,
    pub created: Millis,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: UserId,
    pub created: Millis,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    pub dnd: bool,
    pub text: String,
    pub expires: Option<Millis>,
}

/// How long a conversation's messages are kept. The server policy (a later issue) bounds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Keep {
    /// Messages are delivered live and never reach the disk.
    Nothing,
    Days(u32),
    Forever,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub kind: ConvKind,
    pub name: String,
    pub topic: String,
    pub created_by: UserId,
    pub created: Millis,
    pub keep: Keep,
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

/// The on-disk envelope of every record type.
#[derive(Serialize, Deserialize)]
enum Versioned<T> {
    V1(T),
}

#[derive(Debug, thiserror::Error)]
#[error("a stored record could not be decoded: {0}")]
pub struct DecodeError(#[from] postcard::Error);

pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Serializing plain structs into a Vec cannot fail.
    postcard::to_stdvec(&Versioned::V1(record)).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match postcard::from_bytes::<Versioned<T>>(bytes)? {
        Versioned::V1(record) => Ok(record),
    }
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
}
