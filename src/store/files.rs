//! Files attached to messages, in the data file like everything else: a `FileRecord` per
//! file and its bytes in chunks of `CHUNK` bytes keyed by (file id, chunk no), so an upload
//! is written and a download read one chunk at a time and no file ever sits whole in
//! memory. A small copy for showing an image inline (made by the uploader's browser) is kept
//! as chunks of the same file from `THUMB_FIRST` on, so that removing a file's chunk range
//! removes both.
//!
//! A file is uploaded first (`seq: None`), then attached by the message that lists it, in
//! that message's own commit (`attach`). It goes with its message: a purge removes the
//! chunks of every file its messages list, and a delete outside archive removes them too.
//! A vacuum then leaves no byte of them (the tables are copied live).

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::records::{FileRecord, MessageRecord, decode, encode};
use super::tables::{FILE_RECORD, FILECHUNK_BYTES};
use super::{ContentKey, Store, StoreError};
use crate::model::{ConvId, Seq};

/// Bytes per chunk: one redb value each, small enough to read and send at once. A little
/// under 64 KiB, so that a leaf page with one chunk and its key fits 64 KiB: redb's pages go
/// by powers of two, and a chunk of exactly 64 KiB took a 128 KiB page (twice the file's size
/// on disk).
pub const CHUNK: usize = 64 * 1024 - 512;
/// The thumbnail's first chunk number; a file of this many chunks would be 64 PiB.
pub const THUMB_FIRST: u64 = 1 << 40;

/// How many chunks `bytes` of data take.
pub fn chunks_of(bytes: u64) -> u64 {
    bytes.div_ceil(CHUNK as u64)
}

pub(super) fn put_file(txn: &WriteTransaction, id: u64, record: &FileRecord) -> Result<(), StoreError> {
    txn.open_table(FILE_RECORD)?.insert(id, encode(record).as_slice())?;
    Ok(())
}

pub(super) fn put_chunk(txn: &WriteTransaction, id: u64, n: u64, bytes: &[u8]) -> Result<(), StoreError> {
    txn.open_table(FILECHUNK_BYTES)?.insert((id, n), bytes)?;
    Ok(())
}

/// Removes files with all their chunks (thumbnails included); a missing one is skipped.
pub(super) fn remove_files(txn: &WriteTransaction, ids: impl IntoIterator<Item = u64>) -> Result<(), StoreError> {
    let mut records = txn.open_table(FILE_RECORD)?;
    let mut chunks = txn.open_table(FILECHUNK_BYTES)?;
    for id in ids {
        records.remove(id)?;
        chunks.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    }
    Ok(())
}

/// Ties the files a new message lists to it, in the message's own commit. A file that is
/// gone (the sweep of old uploads took it) fails the commit, so no message lists a file
/// that is not there.
pub(super) fn attach(txn: &WriteTransaction, conv: ConvId, seq: Seq, message: &MessageRecord) -> Result<(), StoreError> {
    if message.attachments.is_empty() {
        return Ok(());
    }
    let mut records = txn.open_table(FILE_RECORD)?;
    for attachment in &message.attachments {
        let found = records.get(attachment.id)?.map(|v| decode::<FileRecord>(v.value())).transpose()?;
        let Some(mut file) = found.filter(|f| f.conv == conv && f.complete && f.seq.is_none()) else {
            return Err(StoreError::Internal(format!("file {} is not an upload waiting for this message", attachment.id)));
        };
        file.seq = Some(seq);
        records.insert(attachment.id, encode(&file).as_slice())?;
    }
    Ok(())
}

/// The ids of the files the messages list.
pub(super) fn listed<'a>(messages: impl IntoIterator<Item = &'a MessageRecord>) -> Vec<u64> {
    messages.into_iter().flat_map(|m| m.attachments.iter().map(|a| a.id)).collect()
}

impl Store {
    /// A file's record: what it is and which message holds it (content: behind the key).
    pub fn file(&self, _key: &ContentKey, id: u64) -> Result<Option<FileRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(FILE_RECORD)?.get(id)?.map(|v| decode(v.value())).transpose()?)
    }

    /// One chunk of a file (`None`: gone, e.g. purged while it was being read).
    pub fn file_chunk(&self, _key: &ContentKey, id: u64, n: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(FILECHUNK_BYTES)?.get((id, n))?.map(|v| v.value().to_vec()))
    }

    /// The files not attached to any message yet (uploads waiting to be sent, or cut short),
    /// and the next free file id, for the core at start-up.
    pub fn uploads(&self) -> Result<(u64, Vec<(u64, FileRecord)>), StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(FILE_RECORD)?;
        let next = table.last()?.map_or(1, |(k, _)| k.value() + 1);
        let mut waiting = Vec::new();
        for entry in table.iter()? {
            let (id, value) = entry?;
            let record: FileRecord = decode(value.value())?;
            if record.seq.is_none() {
                waiting.push((id.value(), record));
            }
        }
        Ok((next, waiting))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;
    use crate::store::Change;
    use redb::ReadableDatabase;

    #[test]
    fn a_file_takes_about_its_own_size_in_the_data_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let size = 64 * CHUNK as u64;
        let record = FileRecord {
            conv: ConvId(1),
            uploader: UserId(1),
            name: "big.bin".into(),
            mime: "application/octet-stream".into(),
            size,
            thumb_size: 0,
            thumb_mime: String::new(),
            created: 0,
            complete: true,
            seq: None,
        };
        let mut changes = vec![Change::PutFile(1, record)];
        for n in 0..chunks_of(size) {
            changes.push(Change::PutFileChunk(1, n, vec![n as u8; CHUNK]));
        }
        store.apply_now(changes).unwrap();
        let copy = dir.path().join("copy.redb");
        let (db, _) = crate::store::vacuum::copy_tables(&store.db().unwrap().begin_read().unwrap(), &copy).unwrap();
        drop(db);
        let bytes = std::fs::metadata(&copy).unwrap().len();
        assert!(bytes < size + size / 4 + 1024 * 1024, "a file of {size} bytes takes {bytes} in a compacted data file");
    }
}
