//! The commands on the data file itself: `check`, `restore`, `backup` (through the running
//! server's control socket, or the stopped file), `purge` and `compact`.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::open_for_cli;
use crate::core::records::Policy;
use crate::core::{Hub, Settings};
use crate::store::writer::Writer;
use crate::store::{Store, StoreError};

pub(super) fn check(file: PathBuf) -> anyhow::Result<()> {
    let report = match crate::store::check::check_file(&file) {
        Ok(report) => report,
        Err(StoreError::InUse(_)) => bail!(
            "the server is running with {}, and a file in use is not checked in place: back it up and check the \
             backup (hallway backup /tmp/now.redb && hallway check /tmp/now.redb)",
            file.display()
        ),
        Err(e) => bail!("{e}"),
    };
    println!("Checked {}: {}.", file.display(), report.summary());
    for problem in &report.problems {
        println!("  problem: {problem}");
    }
    if report.more_problems > 0 {
        println!("  ... and {} more problems", report.more_problems);
    }
    if !report.is_ok() {
        bail!("{} problems found in {}", report.problem_count(), file.display());
    }
    println!("No problems found.");
    Ok(())
}

/// Checks the backup (a copy of it, beside the data file, so that the backup itself is left
/// as it was), then swaps it in, keeping the replaced file aside.
pub(super) fn restore(data: PathBuf, backup: PathBuf) -> anyhow::Result<()> {
    use crate::control::{Asked, Request};
    use crate::store::check;
    use redb::ReadableDatabase;
    use std::os::unix::fs::OpenOptionsExt;
    if !backup.is_file() {
        bail!("there is no backup file {}", backup.display());
    }
    let running =
        || anyhow::anyhow!("the server is running with {}: stop it first, then run hallway restore again", data.display());
    if let Asked::Replied(_) = crate::control::ask(&data, &Request::Ping)? {
        return Err(running());
    }
    // Held until the swap, so that no server opens the data file meanwhile. A file that
    // cannot be opened (damaged, or left by a crash) is replaced all the same.
    let _lock = match data.exists().then(|| redb::ReadOnlyDatabase::open(&data)) {
        Some(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => return Err(running()),
        Some(Ok(db)) => Some(db),
        _ => None,
    };
    let restoring = PathBuf::from(format!("{}.restoring", data.display()));
    let _ = std::fs::remove_file(&restoring);
    let copied = (|| -> std::io::Result<()> {
        let mut out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&restoring)?;
        std::io::copy(&mut std::fs::File::open(&backup)?, &mut out)?;
        out.sync_all()
    })();
    let checked = copied.with_context(|| format!("copying {} beside the data file", backup.display())).and_then(|()| {
        let db = check::open_checked(&restoring, &backup)?;
        let report = check::check_snapshot(&db.begin_read()?, &backup)?;
        db.close().map_err(redb::Error::from).map_err(StoreError::from)?;
        Ok(report)
    });
    let report = match checked {
        Ok(report) if report.is_ok() => report,
        Ok(report) => {
            let _ = std::fs::remove_file(&restoring);
            let shown: Vec<&str> = report.problems.iter().take(10).map(String::as_str).collect();
            bail!(
                "{} does not check out ({} problems, e.g. {}); the data file was left as it was",
                backup.display(),
                report.problem_count(),
                shown.join("; ")
            );
        }
        Err(e) => {
            let _ = std::fs::remove_file(&restoring);
            match e.downcast::<StoreError>() {
                Ok(StoreError::TooNew { found, supported }) => bail!(
                    "{} comes from a newer Hallway (schema {found}; this one reads up to {supported}): restore it with \
                     that version or a newer one; the data file was left as it was",
                    backup.display()
                ),
                Ok(e) => bail!("{e}; the data file was left as it was"),
                Err(e) => return Err(e),
            }
        }
    };
    let aside = PathBuf::from(format!("{}.replaced-{}", data.display(), crate::backups::stamp(crate::model::now_millis())));
    if data.exists() {
        std::fs::rename(&data, &aside).with_context(|| format!("moving {} aside", data.display()))?;
    }
    std::fs::rename(&restoring, &data).with_context(|| format!("putting the backup in place of {}", data.display()))?;
    let dir = data.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    // The new names survive a power loss only once the folder is synced.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))?;
    println!("Restored {} from {}: {}.", data.display(), backup.display(), report.summary());
    if aside.exists() {
        println!("The file it replaced is kept as {}.", aside.display());
    }
    Ok(())
}

pub(super) async fn backup(data: PathBuf, out: PathBuf) -> anyhow::Result<()> {
    use crate::control::{Asked, Request};
    let out = std::path::absolute(&out).with_context(|| format!("the backup's name {}", out.display()))?;
    if std::fs::symlink_metadata(&out).is_ok() {
        bail!("{} exists; a backup never replaces a file: choose a new name", out.display());
    }
    let folder = out.parent().unwrap_or(std::path::Path::new("/"));
    if !folder.is_dir() {
        bail!("the folder {} does not exist", folder.display());
    }
    let started = std::time::Instant::now();
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let asked = {
        let (data, out) = (data.clone(), out.clone());
        tokio::task::spawn_blocking(move || crate::control::ask(&data, &Request::Backup { to: out })).await??
    };
    if let Asked::Replied(reply) = asked {
        if !reply.ok {
            bail!("the running server could not make the backup: {}", reply.error.unwrap_or_default());
        }
        println!(
            "Backed up {} (through the running server) to {}: {:.1} MiB, {} entries, checked, in {:.1} s ({} copy {:.1} s, \
             check {:.1} s).",
            data.display(),
            out.display(),
            mib(reply.bytes),
            reply.entries,
            started.elapsed().as_secs_f64(),
            reply.method,
            reply.copy_millis as f64 / 1000.0,
            reply.check_millis as f64 / 1000.0
        );
        return Ok(());
    }
    if !data.exists() {
        bail!("there is no data file {}", data.display());
    }
    let store = match Store::open(&data) {
        Ok(store) => store,
        Err(StoreError::InUse(_)) => bail!(
            "the server is running with {}, but it does not answer on {} (is it an older hallway?); back up              from its admin page, or stop it and run hallway backup again",
            data.display(),
            crate::control::socket_path(&data).display()
        ),
        Err(e) => return Err(e).with_context(|| format!("opening the data file {}", data.display())),
    };
    // Nothing else writes to the file while we hold it: any moment is one to copy.
    let copied =
        tokio::task::spawn_blocking(move || store.pin().and_then(|pinned| store.copy_pinned(pinned, &out).map(|c| (c, out))))
            .await?;
    let (copied, out) = copied.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "Backed up {} (the server is stopped) to {}: {:.1} MiB, {} entries, checked, in {:.1} s ({} copy {:.1} s, check \
         {:.1} s).",
        data.display(),
        out.display(),
        mib(copied.bytes),
        copied.entries,
        started.elapsed().as_secs_f64(),
        copied.method.as_str(),
        copied.copying.as_secs_f64(),
        copied.checking.as_secs_f64()
    );
    Ok(())
}

/// Purges under `records` if given, else under the policy the server would use (the admin
/// page's choice, or keep).
pub(super) async fn purge(data: PathBuf, records: Option<Policy>) -> anyhow::Result<()> {
    let (store, key) = open_for_cli(&data)?;
    let (writer, writer_thread) = Writer::start(store.clone());
    let settings = Settings { records: records.unwrap_or(Policy::Keep), records_fixed: records.is_some(), ..Settings::default() };
    let (hub, hub_task) = Hub::start(store.clone(), key, writer.clone(), settings)?;
    let records = hub.policy().await.policy;
    let purged = hub.purge(crate::model::now_millis()).await;
    hub.shutdown().await;
    let _ = hub_task.await;
    writer_thread.stop(writer).await;
    drop(store);
    // A purge that removed something also rewrote the file, so no byte of it is left.
    println!("Purged {purged} messages past what their conversations keep (--records {records}).");
    Ok(())
}

pub(super) fn compact(data: PathBuf) -> anyhow::Result<()> {
    if !data.exists() {
        bail!("there is no data file {}", data.display());
    }
    let store = match Store::open(&data) {
        Ok(store) => store,
        Err(StoreError::InUse(_)) => {
            bail!("the server is running with {}; stop it, then run hallway compact again", data.display())
        }
        Err(e) => return Err(e).with_context(|| format!("opening the data file {}", data.display())),
    };
    let done = store.vacuum().with_context(|| format!("compacting {}", data.display()))?;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "Compacted {}: {:.1} MiB -> {:.1} MiB ({} entries) in {:.1} s.",
        data.display(),
        mib(done.bytes_before),
        mib(done.bytes_after),
        done.entries,
        done.total.as_secs_f64()
    );
    Ok(())
}
