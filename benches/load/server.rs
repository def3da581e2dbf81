//! Starting a Hallway to measure (the `hallway` binary next to this tool, on a temp data
//! file, loopback only, mDNS off) and signing people in.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::http;

pub const PASSWORD: &str = "load-test-password";

/// The server's environment for `--slow-repair`: durable commits without redb's quick-repair
/// record (`hallway::store::SLOW_REPAIR_ENV`), to measure what the record costs and saves.
pub fn repair_env(slow: bool) -> &'static [(&'static str, &'static str)] {
    if slow { &[(hallway::store::SLOW_REPAIR_ENV, "1")] } else { &[] }
}

pub struct Target {
    pub addr: String,
    /// The admin's session cookie.
    pub admin: String,
    pub child: Option<Child>,
}

impl Target {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    pub async fn stop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(pid) = child.id() {
                // SIGTERM: the server shuts down gracefully.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            let _ = child.kill().await;
        }
    }
}

/// The `hallway` binary built next to this one.
pub fn sibling_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name("hallway");
    if !path.exists() {
        bail!("no hallway binary next to {}; build it (cargo build --release) or pass --server-bin", me.display());
    }
    Ok(path)
}

/// Starts the server on `data` and returns once it serves, with the time that took.
pub async fn spawn(bin: &Path, data: &Path, extra: &[String]) -> anyhow::Result<(Child, String, Option<String>, Duration)> {
    spawn_with(bin, data, extra, &[], None).await
}

/// `spawn` with environment variables for the server.
pub async fn spawn_with_env(
    bin: &Path,
    data: &Path,
    extra: &[String],
    envs: &[(&str, &str)],
) -> anyhow::Result<(Child, String, Option<String>, Duration)> {
    spawn_with(bin, data, extra, envs, None).await
}

/// A line of the server's log and when the tool read it.
pub type LogLine = (std::time::Instant, String);

/// `spawn`, with the server logging at `filter` (a `RUST_LOG`) and each line of its log
/// (without colours) handed over as it comes.
pub async fn spawn_logged(
    bin: &Path,
    data: &Path,
    extra: &[String],
    filter: &str,
) -> anyhow::Result<(Child, String, Duration, tokio::sync::mpsc::UnboundedReceiver<LogLine>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (child, addr, _, took) = spawn_with(bin, data, extra, &[], Some((filter, tx))).await?;
    Ok((child, addr, took, rx))
}

async fn spawn_with(
    bin: &Path,
    data: &Path,
    extra: &[String],
    envs: &[(&str, &str)],
    log: Option<(&str, tokio::sync::mpsc::UnboundedSender<LogLine>)>,
) -> anyhow::Result<(Child, String, Option<String>, Duration)> {
    let started = std::time::Instant::now();
    let mut command = Command::new(bin);
    // Every tab of a run comes from loopback: no per-address cap, as many as fds allow.
    command
        .envs(envs.iter().copied())
        .args(["--listen", "127.0.0.1:0", "--no-mdns", "--max-connections", "0", "--max-connections-per-address", "0", "--data"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(if log.is_some() { Stdio::piped() } else { Stdio::null() })
        .kill_on_drop(true);
    if let Some((filter, _)) = &log {
        command.env("RUST_LOG", filter).env("NO_COLOR", "1");
    }
    let mut child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
    if let Some((_, tx)) = log {
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send((std::time::Instant::now(), without_colours(&line))).is_err() {
                    break;
                }
            }
        });
    }
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let (mut addr, mut token) = (None, None);
    let ready = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("serving on ").nth(1) {
                addr = rest.split_whitespace().next().map(str::to_owned);
            }
            if let Some(t) = line.split("/setup#").nth(1) {
                token = Some(t.trim().to_owned());
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), ready).await.context("the server did not start within 30 s")?;
    let elapsed = started.elapsed();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr.context("the server printed no address")?, token, elapsed))
}

/// A fresh server on a temp data file with an admin signed in.
pub async fn fresh(bin: &Path, dir: &Path, extra: &[String]) -> anyhow::Result<Target> {
    fresh_with_env(bin, dir, extra, &[]).await
}

/// `fresh` with environment variables for the server.
pub async fn fresh_with_env(bin: &Path, dir: &Path, extra: &[String], envs: &[(&str, &str)]) -> anyhow::Result<Target> {
    let (child, addr, token, _) = spawn_with_env(bin, &dir.join("hallway.redb"), extra, envs).await?;
    let token = token.context("a fresh server should print a setup link")?;
    let response =
        http::request(&addr, "POST", "/api/setup", None, Some(&json!({"token": token, "name": "admin", "password": PASSWORD})))
            .await?;
    if response.status != 200 {
        bail!("setup failed: {} {}", response.status, response.body);
    }
    Ok(Target { addr, admin: response.cookie.context("no session cookie")?, child: Some(child) })
}

/// Creates `count` accounts (`user1`..) and signs each in; returns their session cookies.
pub async fn accounts(target: &Target, count: usize) -> anyhow::Result<Vec<String>> {
    let mut tasks = Vec::new();
    for i in 1..=count {
        let addr = target.addr.clone();
        let admin = target.admin.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("user{i}");
            let created =
                http::request(&addr, "POST", "/api/users", Some(&admin), Some(&json!({"name": name, "password": PASSWORD})))
                    .await?;
            if created.status != 201 && created.status != 409 {
                bail!("creating {name}: {} {}", created.status, created.body);
            }
            let login =
                http::request(&addr, "POST", "/api/login", None, Some(&json!({"name": name, "password": PASSWORD}))).await?;
            login.cookie.with_context(|| format!("signing in {name}: {}", login.status))
        }));
    }
    let mut cookies = Vec::new();
    for task in tasks {
        cookies.push(task.await??);
    }
    Ok(cookies)
}

/// `line` without terminal colour codes (ESC [ ... m).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Resident memory of a process, in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The most resident memory the process has had so far, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Starts the peak (`VmHWM`) afresh from the current resident memory; false if the kernel
/// would not.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time the process has used so far (user + system), in seconds, from /proc.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces; utime and stime are the 14th and 15th
    // fields, the 12th and 13th after it.
    let mut after_name = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = after_name.next()?.parse().ok()?;
    let stime: u64 = after_name.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((utime + stime) as f64 / ticks.max(1) as f64)
}
