//! Backups while the server runs: the one place that asks the store writer for one
//! (`Writer::backup`, see `store/backup.rs`), for `hallway backup` through the control socket
//! (`control.rs`), for the admin page's download (`http/backup.rs`), and on a schedule
//! (`--backup-dir`, `--backup-keep`).
//!
//! A scheduled backup goes into the folder as `hallway-YYYYMMDD-HHMMSS.redb` (UTC), once a
//! day (once an hour when hourly ones are kept), the first as soon as the server starts if
//! the newest in the folder is older than that. Each is checked in full afterwards
//! (`store::check`, as `hallway check` does), then older ones are removed by the rotation: of
//! the backups in the folder, the newest of each of the last N hours, days, ISO weeks and
//! months stay, as `--backup-keep` says ("7 daily, 4 weekly"), and the newest always. Files
//! in the folder with other names are never touched. The last result is kept in memory for
//! the admin page; a failure is logged once with its reason (again only when the reason
//! changes), and retried within the hour.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::model::{Millis, now_millis};
use crate::store::StoreError;
use crate::store::backup::Copied;
use crate::store::writer::Writer;

const HOUR: Millis = 3600 * 1000;
const DAY: Millis = 24 * HOUR;
/// How soon a scheduled backup that failed is tried again (at most its interval).
const RETRY: Millis = HOUR;

/// How many scheduled backups stay, per period (`--backup-keep "7 daily, 4 weekly"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keep {
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl FromStr for Keep {
    type Err = String;

    fn from_str(s: &str) -> Result<Keep, String> {
        let mut keep = Keep::default();
        let wrong = |part: &str| {
            format!("{part:?}: say how many of which to keep, like \"7 daily, 4 weekly\" (hourly, daily, weekly, monthly)")
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (count, period) = part.split_once(char::is_whitespace).ok_or_else(|| wrong(part))?;
            let count: u32 = count.trim().parse().map_err(|_| wrong(part))?;
            let slot = match period.trim() {
                "hourly" => &mut keep.hourly,
                "daily" => &mut keep.daily,
                "weekly" => &mut keep.weekly,
                "monthly" => &mut keep.monthly,
                _ => return Err(wrong(part)),
            };
            *slot = count;
        }
        if keep == Keep::default() {
            return Err(wrong(s));
        }
        Ok(keep)
    }
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> =
            [(self.hourly, "hourly"), (self.daily, "daily"), (self.weekly, "weekly"), (self.monthly, "monthly")]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, period)| format!("{n} {period}"))
                .collect();
        f.write_str(&parts.join(", "))
    }
}

impl Keep {
    /// How often a backup is made: hourly when hourly ones are kept, else daily.
    pub fn every(&self) -> Millis {
        if self.hourly > 0 { HOUR } else { DAY }
    }
}

/// Scheduled backups into `dir`.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub dir: PathBuf,
    pub keep: Keep,
}

/// How one backup went, for the admin page.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// When it started.
    pub at: Millis,
    /// Written and checked.
    pub ok: bool,
    pub file: String,
    pub bytes: u64,
    /// `pages` or `tables`; empty when it failed.
    pub method: &'static str,
    pub millis: u64,
    /// The full check's result, in words (`ok: ...` or the problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Clone freely.
#[derive(Clone)]
pub struct Backups {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    /// The data file: downloads are made beside it.
    data: PathBuf,
    schedule: Option<Schedule>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last: Option<Outcome>,
    last_good: Option<Millis>,
    /// The check result of each scheduled backup made since the server started, by name.
    checks: HashMap<String, String>,
    next_at: Option<Millis>,
}

/// A backup in the folder, as listed on the admin page.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub file: String,
    pub at: Millis,
    pub bytes: u64,
    /// `None`: made before this server started, not checked since.
    pub check: Option<String>,
}

/// What `GET /api/admin/backups` shows.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub schedule: Option<ScheduleView>,
    pub last: Option<Outcome>,
    pub backups: Vec<Listed>,
}

#[derive(Debug, Serialize)]
pub struct ScheduleView {
    pub dir: String,
    pub keep: String,
    pub every_hours: u64,
    pub next_at: Option<Millis>,
}

impl Backups {
    pub fn new(writer: Writer, data: PathBuf, schedule: Option<Schedule>) -> Backups {
        remove_stale_downloads(&data);
        Backups { inner: Arc::new(Inner { writer, data, schedule, state: Mutex::new(State::default()) }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Starts the schedule, if there is one; the task ends when aborted.
    pub fn start_schedule(&self) -> Option<JoinHandle<()>> {
        let schedule = self.inner.schedule.clone()?;
        tracing::info!(dir = %schedule.dir.display(), keep = %schedule.keep, "scheduled backups");
        let backups = self.clone();
        Some(tokio::spawn(async move {
            loop {
                let now = now_millis();
                let due = {
                    let mut state = backups.state();
                    let every = schedule.keep.every();
                    // A newest backup from the future (the clock was set back) waits one interval.
                    *state
                        .next_at
                        .get_or_insert_with(|| newest_in(&schedule.dir).map_or(now, |newest| (newest + every).min(now + every)))
                };
                tokio::time::sleep(Duration::from_millis(due.saturating_sub(now))).await;
                backups.scheduled_once(&schedule).await;
            }
        }))
    }

    /// Makes one scheduled backup, checks it in full and rotates the folder.
    pub async fn scheduled_once(&self, schedule: &Schedule) -> Outcome {
        let at = now_millis();
        let name = format!("hallway-{}.redb", stamp(at));
        let dest = schedule.dir.join(&name);
        let mut outcome =
            Outcome { at, ok: false, file: name.clone(), bytes: 0, method: "", millis: 0, check: None, error: None };
        if let Err(e) = make_folder(&schedule.dir) {
            outcome.error = Some(format!("the backup folder {} cannot be made: {e}", schedule.dir.display()));
        } else {
            match self.inner.writer.backup(dest.clone()).await {
                Ok(copied) => {
                    (outcome.bytes, outcome.method) = (copied.bytes, copied.method.as_str());
                    let checked = tokio::task::spawn_blocking(move || crate::store::check::check_file(&dest)).await;
                    let check = match checked {
                        Ok(Ok(report)) if report.is_ok() => Ok(format!("ok: {}", report.summary())),
                        Ok(Ok(report)) => Err(format!("{} problems: {}", report.problem_count(), report.problems.join("; "))),
                        Ok(Err(e)) => Err(format!("could not be checked: {e}")),
                        Err(_) => Err("could not be checked (the check failed)".into()),
                    };
                    outcome.ok = check.is_ok();
                    let check = check.unwrap_or_else(|problems| {
                        outcome.error = Some(format!("the backup does not check out: {problems}"));
                        problems
                    });
                    self.state().checks.insert(name, check.clone());
                    outcome.check = Some(check);
                }
                Err(e) => outcome.error = Some(e.to_string()),
            }
        }
        outcome.millis = now_millis().saturating_sub(at);
        let repeated = self.state().last.as_ref().is_some_and(|last| !last.ok && last.error == outcome.error);
        match &outcome.error {
            None => {
                tracing::info!(file = %outcome.file, bytes = outcome.bytes, millis = outcome.millis, "scheduled backup written and checked");
                self.rotate(schedule);
            }
            // Once per reason: a full disk would otherwise say so every hour.
            Some(error) if !repeated => {
                tracing::warn!(dir = %schedule.dir.display(), error = %error, "the scheduled backup failed")
            }
            Some(error) => tracing::debug!(error = %error, "the scheduled backup failed again"),
        }
        let every = schedule.keep.every();
        let mut state = self.state();
        state.next_at = Some(if outcome.ok { at + every } else { at + RETRY.min(every) });
        if outcome.ok {
            state.last_good = Some(at);
        }
        state.last = Some(outcome.clone());
        outcome
    }

    /// When the last scheduled backup that was written and checked started, if any since the
    /// server started (`hallway_backup_age_seconds`).
    pub fn last_good(&self) -> Option<Millis> {
        self.state().last_good
    }

    /// Removes the scheduled backups the rotation no longer keeps.
    fn rotate(&self, schedule: &Schedule) {
        let found = listed_in(&schedule.dir);
        for path in to_remove(&found, &schedule.keep) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = %path.display(), "removed an old backup (rotation)"),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "could not remove an old backup"),
            }
            if let Some(name) = path.file_name() {
                self.state().checks.remove(&*name.to_string_lossy());
            }
        }
    }

    /// The schedule, the last result and the backups in the folder, newest first.
    pub fn overview(&self) -> Overview {
        let state = self.state();
        let Some(schedule) = &self.inner.schedule else {
            return Overview { schedule: None, last: state.last.clone(), backups: Vec::new() };
        };
        let mut backups: Vec<Listed> = listed_in(&schedule.dir)
            .into_iter()
            .map(|(path, at)| {
                let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let check = state.checks.get(&file).cloned();
                Listed { file, at, bytes, check }
            })
            .collect();
        backups.sort_by_key(|b| std::cmp::Reverse(b.at));
        Overview {
            schedule: Some(ScheduleView {
                dir: schedule.dir.display().to_string(),
                keep: schedule.keep.to_string(),
                every_hours: schedule.keep.every() / HOUR,
                next_at: state.next_at,
            }),
            last: state.last.clone(),
            backups,
        }
    }
}

/// The folder, made private if it is missing (backups hold password hashes).
fn make_folder(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// The scheduled backups in `dir` and when each was made (from its name).
fn listed_in(dir: &Path) -> Vec<(PathBuf, Millis)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let at = parse_name(&name.to_string_lossy())?;
            Some((entry.path(), at))
        })
        .collect()
}

fn newest_in(dir: &Path) -> Option<Millis> {
    listed_in(dir).into_iter().map(|(_, at)| at).max()
}

/// When the scheduled backup `hallway-YYYYMMDD-HHMMSS.redb` was made; `None` for any other name.
fn parse_name(name: &str) -> Option<Millis> {
    let stamp = name.strip_prefix("hallway-")?.strip_suffix(".redb")?;
    let (date, time) = stamp.split_once('-')?;
    if date.len() != 8 || time.len() != 6 || !date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |s: &str| s.parse::<u32>().ok();
    let (year, month, day) = (number(&date[..4])?, number(&date[4..6])?, number(&date[6..])?);
    let (hour, minute, second) = (number(&time[..2])?, number(&time[2..4])?, number(&time[4..])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + u64::from(hour * 3600 + minute * 60 + second);
    Some(secs * 1000)
}

/// The backups the rotation removes: all but the newest of each of the last `keep.hourly`
/// hours, `keep.daily` days, `keep.weekly` ISO weeks and `keep.monthly` months that have one,
/// and never the newest of all.
pub fn to_remove(backups: &[(PathBuf, Millis)], keep: &Keep) -> Vec<PathBuf> {
    let mut newest_first: Vec<&(PathBuf, Millis)> = backups.iter().collect();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut kept: BTreeSet<&PathBuf> = newest_first.first().map(|(path, _)| path).into_iter().collect();
    let month = |at: Millis| {
        let (year, month, _) = civil_from_days((at / DAY) as i64);
        year * 12 + i64::from(month)
    };
    let periods: [(u32, &dyn Fn(Millis) -> i64); 4] = [
        (keep.hourly, &|at| (at / HOUR) as i64),
        (keep.daily, &|at| (at / DAY) as i64),
        // 1970-01-01 was a Thursday: three days on, weeks start on Mondays.
        (keep.weekly, &|at| ((at / DAY + 3) / 7) as i64),
        (keep.monthly, &month),
    ];
    for (count, period_of) in periods {
        let mut periods = BTreeSet::new();
        for (path, at) in &newest_first {
            if periods.len() == count as usize {
                break;
            }
            if periods.insert(period_of(*at)) {
                kept.insert(path);
            }
        }
    }
    newest_first.iter().filter(|(path, _)| !kept.contains(path)).map(|(path, _)| path.clone()).collect()
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

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        for at in [0, 951_782_400_000 + 3_723_000, 1_798_761_599_000] {
            assert_eq!(parse_name(&format!("hallway-{}.redb", stamp(at))), Some(at), "names read back");
        }
        assert_eq!(parse_name("hallway-20261301-000000.redb"), None);
        assert_eq!(parse_name("notes.redb"), None);
    }

    #[test]
    fn keep_reads_as_the_admin_writes_it() {
        let keep: Keep = "7 daily, 4 weekly".parse().unwrap();
        assert_eq!(keep, Keep { daily: 7, weekly: 4, ..Keep::default() });
        assert_eq!(keep.to_string(), "7 daily, 4 weekly");
        assert_eq!(keep.every(), DAY);
        assert_eq!("24 hourly".parse::<Keep>().unwrap().every(), HOUR);
        for wrong in ["", "seven daily", "7 yearly", "7"] {
            assert!(wrong.parse::<Keep>().is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn the_rotation_keeps_the_newest_of_each_day_and_week_asked_for() {
        // Two a day for 40 days from Monday 2026-01-05 at 01:00 and 13:00.
        let monday = parse_name("hallway-20260105-010000.redb").unwrap();
        let backups: Vec<(PathBuf, Millis)> = (0..80u64)
            .map(|i| monday + (i / 2) * DAY + (i % 2) * 12 * HOUR)
            .map(|at| (PathBuf::from(format!("hallway-{}.redb", stamp(at))), at))
            .collect();
        let keep: Keep = "3 daily, 2 weekly".parse().unwrap();
        let removed: BTreeSet<PathBuf> = to_remove(&backups, &keep).into_iter().collect();
        let mut kept: Vec<String> =
            backups.iter().filter(|(path, _)| !removed.contains(path)).map(|(path, _)| path.display().to_string()).collect();
        kept.sort();
        // Day 39 is Friday 2026-02-13: the last three days' newest, and the newest of the week
        // before (its Sunday, 2026-02-08).
        assert_eq!(
            kept,
            [
                "hallway-20260208-130000.redb",
                "hallway-20260211-130000.redb",
                "hallway-20260212-130000.redb",
                "hallway-20260213-130000.redb",
            ]
        );
        assert!(to_remove(&backups[..1], &keep).is_empty(), "the newest is never removed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scheduled_backup_is_checked_kept_in_memory_and_the_folder_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("live.redb")).unwrap();
        let (writer, thread) = Writer::start(store);
        let folder = dir.path().join("backups");
        let schedule = Schedule { dir: folder.clone(), keep: "2 daily".parse().unwrap() };
        let backups = Backups::new(writer.clone(), dir.path().join("live.redb"), Some(schedule.clone()));
        // Two older backups on other days, and a file of the admin's own.
        std::fs::create_dir(&folder).unwrap();
        for old in ["hallway-20250101-000000.redb", "hallway-20250102-000000.redb", "notes.txt"] {
            std::fs::write(folder.join(old), b"old").unwrap();
        }
        let outcome = backups.scheduled_once(&schedule).await;
        assert!(outcome.ok, "{outcome:?}");
        assert!(outcome.check.as_deref().is_some_and(|c| c.starts_with("ok: schema")), "{outcome:?}");
        let mut left: Vec<String> =
            std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["hallway-20250102-000000.redb", outcome.file.as_str(), "notes.txt"], "two days kept, other files left");
        let overview = backups.overview();
        assert_eq!(overview.backups.len(), 2);
        assert_eq!(overview.backups[0].file, outcome.file, "newest first");
        assert_eq!(overview.backups[0].check, outcome.check);
        assert_eq!(overview.backups[1].check, None, "one made before this server started is not checked");
        assert_eq!(overview.last.map(|l| l.file), Some(outcome.file));

        // A folder that cannot be made: the failure is the last result, with its reason.
        let blocked = Schedule { dir: dir.path().join("notes.txt").join("backups"), keep: schedule.keep };
        std::fs::write(dir.path().join("notes.txt"), b"a file").unwrap();
        let failed = backups.scheduled_once(&blocked).await;
        assert!(!failed.ok && failed.error.as_deref().is_some_and(|e| e.contains("cannot be made")), "{failed:?}");
        assert_eq!(backups.overview().last.and_then(|l| l.error), failed.error);
        thread.stop(writer).await;
    }
}
