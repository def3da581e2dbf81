//! Backups while the server runs: the one place that asks the store writer for one
//! (`Writer::backup`, see `store/backup.rs`), for `hallway backup` through the control socket
//! (`control.rs`) and for the admin page's download (`http/backup.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::StoreError;
use crate::store::backup::Copied;
use crate::store::writer::Writer;

/// Clone freely.
#[derive(Clone)]
pub struct Backups {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    /// The data file: downloads are made beside it.
    data: PathBuf,
}

impl Backups {
    pub fn new(writer: Writer, data: PathBuf) -> Backups {
        remove_stale_downloads(&data);
        Backups { inner: Arc::new(Inner { writer, data }) }
    }

    /// A checked backup at `dest`, which must not exist.
    pub async fn backup_to(&self, dest: PathBuf) -> Result<Copied, StoreError> {
        let copied = self.inner.writer.backup(dest.clone()).await;
        match &copied {
            Ok(copied) => tracing::info!(
                to = %dest.display(),
                bytes = copied.bytes,
                entries = copied.entries,
                method = copied.method.as_str(),
                millis = (copied.copying + copied.checking).as_millis() as u64,
                "backed up the data file"
            ),
            Err(e) => tracing::warn!(to = %dest.display(), error = %e, "a backup failed"),
        }
        copied
    }

    /// A fresh name beside the data file for a backup that is streamed to a browser: on the
    /// data file's disk, which the backup's free-space check then covers.
    pub fn download_path(&self) -> PathBuf {
        let name = format!("{}{:016x}", download_prefix(&self.inner.data), rand::random::<u64>());
        self.inner.data.with_file_name(name)
    }
}

fn download_prefix(data: &Path) -> String {
    format!("{}.download-", data.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
}

/// Downloads are unlinked as soon as they are opened for streaming; only a crash in the
/// middle of making one leaves its file behind.
fn remove_stale_downloads(data: &Path) {
    let prefix = download_prefix(data);
    let dir = data.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `millis` since the epoch as `YYYYMMDD-HHMMSS` in UTC: file names that sort by time.
pub fn stamp(millis: crate::model::Millis) -> String {
    let secs = millis / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", of_day / 3600, of_day / 60 % 60, of_day % 60)
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_dates_and_times() {
        assert_eq!(stamp(0), "19700101-000000");
        assert_eq!(stamp(951_782_400_000 + 3_723_000), "20000229-010203", "a leap day");
        assert_eq!(stamp(1_798_761_599_000), "20261231-235959");
    }
}
