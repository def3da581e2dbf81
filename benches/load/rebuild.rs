//! `hallway-load rebuild`: a server on a file whose search index is not built (made with
//! `generate --no-index`, as after an upgrade or a tokenizer change) rebuilds it in the
//! background. For `--seconds` an admin searches meanwhile (the history scenario's words,
//! in turns) and each search's time is measured, with how many answers were partial; then
//! the tool waits for the rebuild to end (the server's CPU time still for 3 s) and prints
//! the server's CPU time and wall time from its start, and how long its index steps took
//! (from its debug log: the longest is what a message arriving meanwhile may wait).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::{http, server, stats, vocabulary_word};

pub async fn run(bin: &Path, data: &Path, seconds: u64) -> anyhow::Result<()> {
    if !data.exists() {
        bail!("{} does not exist; make it with `hallway-load generate --no-index --data ...`", data.display());
    }
    let (mut child, addr, _, mut log) = server::spawn_logged(bin, data, &[], "hallway::store=debug").await?;
    let started = Instant::now();
    let pid = child.id().context("the server's pid")?;
    let login =
        http::request(&addr, "POST", "/api/login", None, Some(&json!({"name": "admin", "password": server::PASSWORD}))).await?;
    let cookie = login.cookie.context("signing in as admin on the generated file")?;
    let w = vocabulary_word;
    let searches = [
        (format!("q={}", w(1)), "the most common word (rank 1)"),
        (format!("q={}", w(100)), "a word of rank 100"),
        (format!("q={}", w(4000)), "a rare word (rank 4000)"),
        (format!("q={}+{}", w(4000), w(1)), "a rare and a common word together"),
        ("q=nosuchword".to_string(), "a word that is in no message"),
    ];
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); searches.len()];
    let mut partial = vec![0usize; searches.len()];
    let until = Instant::now() + Duration::from_secs(seconds);
    'searching: while Instant::now() < until {
        for (i, (query, _)) in searches.iter().enumerate() {
            if Instant::now() >= until {
                break 'searching;
            }
            let t = Instant::now();
            let response = http::request(&addr, "GET", &format!("/api/search?{query}"), Some(&cookie), None).await?;
            samples[i].push(t.elapsed().as_micros() as u64);
            if response.status != 200 {
                bail!("GET /api/search?{query}: {} {}", response.status, response.body);
            }
            if response.body["partial"] == json!(true) {
                partial[i] += 1;
            }
        }
    }
    // The rebuild is over when the server stops using CPU.
    let mut last = server::cpu_seconds(pid).context("reading the server's CPU time")?;
    let mut still_since = Instant::now();
    let mut done_at = started.elapsed();
    while still_since.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cpu = server::cpu_seconds(pid).context("reading the server's CPU time")?;
        if cpu - last > 0.02 {
            still_since = Instant::now();
            done_at = started.elapsed();
        }
        last = cpu;
    }
    let mut steps = Vec::new();
    while let Ok((_, line)) = log.try_recv() {
        if line.contains("indexed for search")
            && let Some(micros) = line.split("micros=").nth(1).and_then(|rest| rest.split_whitespace().next())
            && let Ok(micros) = micros.parse::<u64>()
        {
            steps.push(micros);
        }
    }
    let _ = child.kill().await;
    println!("| search while the index is rebuilt | p50 ms | p99 ms | max ms | answers | partial |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (i, (_, what)) in searches.iter().enumerate() {
        let count = samples[i].len();
        let summary = stats::summarize(std::mem::take(&mut samples[i]));
        println!(
            "| {what} | {} | {} | {} | {count} | {} |",
            stats::ms(summary.p50),
            stats::ms(summary.p99),
            stats::ms(summary.max),
            partial[i]
        );
    }
    let step_count = steps.len();
    let step = stats::summarize(steps);
    println!(
        "rebuild: server CPU {last:.1} s, {:.1} s from start to done; {step_count} index steps, p50 {} ms, p99 {} ms, max {} ms",
        done_at.as_secs_f64(),
        stats::ms(step.p50),
        stats::ms(step.p99),
        stats::ms(step.max)
    );
    Ok(())
}
