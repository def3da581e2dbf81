//! A consistent copy of the data file, made while it is in use: every table is read from one
//! read transaction (one MVCC snapshot, so writers carry on meanwhile) and written into a
//! new file, which is renamed into place only once it is complete and synced. The admin page,
//! `hallway backup` and scheduled backups (a later issue) build on this.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, Value};

use super::tables::*;
use super::{Store, StoreError};

/// Entries written per transaction of the copy; the last one is synced.
const CHUNK: usize = 100_000;

/// What a backup copied.
#[derive(Debug, Default)]
pub struct Copied {
    pub entries: u64,
    pub bytes: u64,
}

impl Store {
    /// Writes a consistent copy of the whole data file to `dest`, which must not exist.
    pub fn backup_to(&self, dest: &Path) -> Result<Copied, StoreError> {
        if dest.exists() {
            return Err(StoreError::Backup(format!("{} exists; choose a new name", dest.display())));
        }
        let partial = PathBuf::from(format!("{}.partial", dest.display()));
        let _ = std::fs::remove_file(&partial);
        let result = self.copy_into(&partial);
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        let mut copied = result?;
        std::fs::rename(&partial, dest).map_err(|e| StoreError::Backup(format!("renaming the finished copy: {e}")))?;
        copied.bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        Ok(copied)
    }

    fn copy_into(&self, path: &Path) -> Result<Copied, StoreError> {
        let snapshot = self.db()?.begin_read()?;
        let out = Database::create(path)?;
        let mut copy = Copy { out: &out, copied: Copied::default() };
        copy.table(&snapshot, META)?;
        copy.table(&snapshot, USER_RECORD)?;
        copy.table(&snapshot, NAME_USER)?;
        copy.table(&snapshot, TOKENHASH_SESSION)?;
        copy.table(&snapshot, USER_TOKENHASH)?;
        copy.table(&snapshot, USER_STATUS)?;
        copy.table(&snapshot, CONV_RECORD)?;
        copy.table(&snapshot, CONVUSER_MEMBER)?;
        copy.table(&snapshot, CONVSEQ_MESSAGE)?;
        copy.table(&snapshot, CONVREV_SEQ)?;
        copy.table(&snapshot, TERMCONVFIRST_POSTINGS)?;
        copy.table(&snapshot, CONV_INDEXEDSEQ)?;
        // A durable empty commit makes the chunks before it durable.
        out.begin_write()?.commit()?;
        Ok(copy.copied)
    }
}

struct Copy<'a> {
    out: &'a Database,
    copied: Copied,
}

impl Copy<'_> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        snapshot: &ReadTransaction,
        definition: TableDefinition<K, V>,
    ) -> Result<(), StoreError> {
        let source = match snapshot.open_table(definition) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut entries = source.iter()?.peekable();
        if entries.peek().is_none() {
            // An empty table is still created, so the copy opens like the original.
            let txn = self.out.begin_write()?;
            txn.open_table(definition)?;
            txn.commit()?;
        }
        while entries.peek().is_some() {
            let mut txn = self.out.begin_write()?;
            txn.set_durability(Durability::None).map_err(|e| StoreError::Redb(e.into()))?;
            {
                let mut table = txn.open_table(definition)?;
                for entry in entries.by_ref().take(CHUNK) {
                    let (key, value) = entry?;
                    table.insert(key.value(), value.value())?;
                    self.copied.entries += 1;
                }
            }
            txn.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConvId, Seq, UserId};
    use crate::store::Change;
    use crate::store::records::MessageRecord;

    fn message(text: &str) -> MessageRecord {
        MessageRecord {
            author: UserId(1),
            text: text.into(),
            ts: 1,
            edited_ts: None,
            deleted: false,
            mentions: Vec::new(),
            client_id: None,
            rev: 0,
        }
    }

    #[test]
    fn a_backup_is_a_data_file_holding_the_snapshot_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.redb")).unwrap();
        let changes =
            (1..=5_001u64).map(|seq| Change::PutMessage(ConvId(1), Seq(seq), message(&format!("note {seq}")))).collect();
        store.apply_now(changes).unwrap();
        store.index_everything().unwrap();

        let dest = dir.path().join("backup.redb");
        let copied = store.backup_to(&dest).unwrap();
        assert!(copied.entries > 5_001, "messages, index and the schema version: {copied:?}");
        assert!(!dir.path().join("backup.redb.partial").exists(), "the partial file became the backup");
        // The live file goes on; the backup keeps the moment it was taken.
        store.apply_now(vec![Change::PutMessage(ConvId(1), Seq(5_002), message("after the backup"))]).unwrap();

        let copy = Store::open(&dest).unwrap();
        assert_eq!(copy.schema_version().unwrap(), store.schema_version().unwrap());
        let (newest, more) = copy.messages_before(ConvId(1), Seq(u64::MAX), 1).unwrap();
        assert_eq!((newest[0].0, newest[0].1.text.as_str(), more), (Seq(5_001), "note 5001", true));
        let found = copy.search(
            &[ConvId(1)],
            &[crate::store::search::Term::Word("4321".into())],
            &crate::store::search::Page { before: None, offset: 0, limit: 5 },
        );
        assert_eq!(found.unwrap().results.len(), 1, "the search index came along");

        let again = store.backup_to(&dest);
        assert!(matches!(again, Err(StoreError::Backup(_))), "an existing file is never overwritten");
    }
}
