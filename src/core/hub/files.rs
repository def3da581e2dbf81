//! Uploads waiting to be sent: the core hands out file ids, checks that a person may upload
//! to a conversation (a member, not a reviewer, and only where messages are recorded), and
//! lets a `send` attach only that person's finished uploads to that conversation. The bytes
//! go to the writer straight from the HTTP handler (`http/files.rs`); reading them back goes
//! through the one door (`core/access.rs`).
//!
//! A conversation that keeps nothing refuses files: the choice was between that and holding
//! them in the in-memory buffer, and a buffer of files would be large, gone after minutes
//! for whoever was away, and one more place a "nothing reaches the disk" promise could leak;
//! so nothing of a file is taken there at all.

use std::collections::HashMap;

use super::HubTask;
use crate::core::records::Kept;
use crate::model::{ConvId, Millis, Role, UserId, now_millis};
use crate::protocol::{ErrorCode, Refusal};
use crate::store::Change;
use crate::store::records::{Attachment, FileRecord};

/// Files one message may carry.
pub(crate) const MAX_ATTACHMENTS: usize = 10;
/// Uploads one person may have waiting (not sent yet) at once.
const MAX_WAITING_PER_USER: usize = 20;
/// An upload not sent this long after it finished is removed by the next sweep.
const WAITING_KEPT_FOR: Millis = 60 * 60 * 1000;

/// An upload the core knows of and no message holds yet.
#[derive(Clone, Debug)]
pub(crate) struct Upload {
    pub(crate) record: FileRecord,
}

/// What a person asks to upload (`Hub::begin_upload`).
#[derive(Clone, Debug)]
pub struct NewUpload {
    pub conv: ConvId,
    pub name: String,
    pub mime: String,
    pub size: u64,
    pub thumb_size: u64,
    pub thumb_mime: String,
}

#[derive(Default)]
pub(crate) struct Uploads {
    next: u64,
    waiting: HashMap<u64, Upload>,
    pub(crate) max_size: u64,
}

impl Uploads {
    /// The uploads the file holds that no message lists; those cut short are to be removed.
    pub(crate) fn load(next: u64, found: Vec<(u64, FileRecord)>, max_size: u64) -> (Uploads, Vec<u64>) {
        let (done, cut): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, f)| f.complete);
        let waiting = done.into_iter().map(|(id, record)| (id, Upload { record })).collect();
        (Uploads { next, waiting, max_size }, cut.into_iter().map(|(id, _)| id).collect())
    }
}

/// The limit in words, as the person reads it (`10 MB`).
pub fn size_words(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        let mb = bytes as f64 / 1_000_000.0;
        if mb.fract() < 0.05 { format!("{mb:.0} MB") } else { format!("{mb:.1} MB") }
    } else if bytes >= 1_000 {
        format!("{} KB", bytes / 1_000)
    } else {
        format!("{bytes} bytes")
    }
}

/// Why a file is refused for its size, with the limit.
pub fn too_large(size: u64, max: u64) -> Refusal {
    Refusal::new(
        ErrorCode::TooLarge,
        format!("this file is {}; files can be at most {} on this server", size_words(size), size_words(max)),
    )
}

impl HubTask {
    /// Takes an upload's id and record, or says why not.
    pub(super) fn begin_upload(&mut self, user: UserId, new: NewUpload) -> Result<(u64, FileRecord), Refusal> {
        self.members_of(new.conv, user)?;
        if self.users.get(&user).is_some_and(|u| u.info.role == Role::Reviewer) {
            return Err(Refusal::new(ErrorCode::Forbidden, "a reviewer reads the archive and does not post"));
        }
        if self.kept(new.conv) == Kept::Nothing {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "this conversation keeps nothing, so files cannot be attached here: a file would have to be stored",
            ));
        }
        if new.size > self.uploads.max_size {
            return Err(too_large(new.size, self.uploads.max_size));
        }
        let waiting = self.uploads.waiting.values().filter(|u| u.record.uploader == user).count();
        if waiting >= MAX_WAITING_PER_USER {
            return Err(Refusal::new(
                ErrorCode::RateLimited,
                format!("you have {waiting} files uploaded and not sent; send or remove some first"),
            ));
        }
        let id = self.uploads.next.max(1);
        self.uploads.next = id + 1;
        let record = FileRecord {
            conv: new.conv,
            uploader: user,
            name: new.name,
            mime: new.mime,
            size: new.size,
            thumb_size: new.thumb_size,
            thumb_mime: new.thumb_mime,
            created: now_millis(),
            complete: false,
            seq: None,
        };
        self.uploads.waiting.insert(id, Upload { record: record.clone() });
        tracing::info!(file = id, conv = record.conv.0, user = user.0, bytes = record.size, "upload started");
        Ok((id, record))
    }

    /// An upload's bytes are all on disk (`ok`), or it was cut short (then its chunks go).
    pub(super) fn upload_done(&mut self, id: u64, ok: bool) {
        if ok {
            if let Some(upload) = self.uploads.waiting.get_mut(&id) {
                upload.record.complete = true;
            }
            return;
        }
        if self.uploads.waiting.remove(&id).is_some() {
            tracing::info!(file = id, "upload cut short; its chunks are removed");
            // Its chunks' bytes stay in redb's free pages until the file is next rewritten.
            self.freed_since_vacuum = true;
            self.persist(
                vec![Change::DeleteFiles(vec![id])],
                super::delivery::Outcome::new(Vec::new(), super::delivery::Reply::None),
            );
        }
    }

    /// The uploads a `send` attaches, taken out of those waiting; refused unless each is the
    /// sender's, finished, and uploaded to this conversation.
    pub(super) fn take_uploads(&mut self, user: UserId, conv: ConvId, ids: &[u64]) -> Result<Vec<(u64, Upload)>, Refusal> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() > MAX_ATTACHMENTS {
            return Err(Refusal::new(ErrorCode::BadRequest, format!("a message carries at most {MAX_ATTACHMENTS} files")));
        }
        if !self.kept(conv).recorded() {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "this conversation keeps nothing, so files cannot be attached here: a file would have to be stored",
            ));
        }
        for (i, id) in ids.iter().enumerate() {
            let ok = self
                .uploads
                .waiting
                .get(id)
                .is_some_and(|u| u.record.uploader == user && u.record.conv == conv && u.record.complete);
            if !ok || ids[..i].contains(id) {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    format!("file {id} is not an upload of yours to this conversation waiting to be sent; upload it again"),
                ));
            }
        }
        Ok(ids.iter().filter_map(|id| self.uploads.waiting.remove(id).map(|u| (*id, u))).collect())
    }

    /// Uploads a `send` took whose message was not saved: they wait again.
    pub(super) fn restore_uploads(&mut self, taken: Vec<(u64, Upload)>) {
        self.uploads.waiting.extend(taken);
    }

    /// Removes uploads finished long ago and never sent (part of the 10-minute sweep).
    pub(super) fn sweep_uploads(&mut self, now: Millis) {
        let old: Vec<u64> = self
            .uploads
            .waiting
            .iter()
            .filter(|(_, u)| u.record.complete && u.record.created + WAITING_KEPT_FOR < now)
            .map(|(id, _)| *id)
            .collect();
        if old.is_empty() {
            return;
        }
        for id in &old {
            self.uploads.waiting.remove(id);
        }
        tracing::info!(files = old.len(), "removed uploads never sent");
        self.freed_since_vacuum = true;
        self.persist(vec![Change::DeleteFiles(old)], super::delivery::Outcome::new(Vec::new(), super::delivery::Reply::None));
    }
}

/// How a message lists an upload.
pub(super) fn attachment(id: u64, upload: &Upload) -> Attachment {
    let r = &upload.record;
    Attachment { id, name: r.name.clone(), size: r.size, mime: r.mime.clone(), thumbnail: r.thumb_size > 0 }
}
