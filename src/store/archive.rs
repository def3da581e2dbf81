//! What only the `archive` policy keeps: every earlier version of a message (so a reviewer
//! sees the original of an edit and the text of a delete while users see them edited or
//! deleted), and the audit log of what reviewers did, which is only ever appended to.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::records::{AuditRecord, MessageRecord, decode, encode};
use super::tables::{CONVSEQREV_VERSION, N_AUDIT};
use super::{ContentKey, Store, StoreError};
use crate::model::{ConvId, Seq};

/// Keeps `record` as an earlier version of the message at `seq`.
pub(super) fn keep_version(txn: &WriteTransaction, conv: ConvId, seq: Seq, record: &MessageRecord) -> Result<(), StoreError> {
    txn.open_table(CONVSEQREV_VERSION)?.insert((conv.0, seq.0, record.rev), encode(record).as_slice())?;
    Ok(())
}

/// Appends `record` to the audit log.
pub(super) fn audit(txn: &WriteTransaction, record: &AuditRecord) -> Result<(), StoreError> {
    let mut log = txn.open_table(N_AUDIT)?;
    let next = log.last()?.map_or(1, |(n, _)| n.value() + 1);
    log.insert(next, encode(record).as_slice())?;
    Ok(())
}

impl Store {
    /// The earlier versions of the message at `seq`, oldest first.
    pub fn versions(&self, _key: &ContentKey, conv: ConvId, seq: Seq) -> Result<Vec<MessageRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(CONVSEQREV_VERSION)?;
        let mut versions = Vec::new();
        for entry in table.range((conv.0, seq.0, 0)..=(conv.0, seq.0, u64::MAX))? {
            versions.push(decode(entry?.1.value())?);
        }
        Ok(versions)
    }

    /// Up to `limit` audit entries after entry `after`, oldest first, with their numbers.
    pub fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(N_AUDIT)?;
        let mut page = Vec::new();
        for entry in table.range(after.saturating_add(1)..)?.take(limit) {
            let (n, value) = entry?;
            page.push((n.value(), decode(value.value())?));
        }
        Ok(page)
    }
}
