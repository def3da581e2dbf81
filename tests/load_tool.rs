//! The load tool itself works (on a tiny run; the real runs are in benches/README.md and never
//! part of the test command): each scenario starts a server, measures, and reports.

use std::process::Command;

fn load(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hallway-load"))
        .args(args)
        .args(["--server-bin", env!("CARGO_BIN_EXE_hallway")])
        .output()
        .expect("hallway-load runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "hallway-load {args:?} failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The cells of the result row that starts with `| name |`.
fn row(report: &str, name: &str) -> Vec<String> {
    let line =
        report.lines().find(|l| l.starts_with(&format!("| {name} |"))).unwrap_or_else(|| panic!("no {name} row in:\n{report}"));
    line.split('|').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect()
}

#[test]
fn the_load_tool_measures_fanout_ingest_idle_history_and_backup_on_a_tiny_run() {
    let fanout = row(
        &load(&["fanout", "--members", "4", "--senders", "2", "--messages", "20", "--rate", "0", "--accounts", "2"]),
        "fanout",
    );
    assert_eq!(fanout[6], "80", "20 messages to 4 tabs are 80 deliveries: {fanout:?}");
    assert_eq!(fanout[7], "0", "no delivery may be lost: {fanout:?}");

    let ingest = row(&load(&["ingest", "--senders", "2", "--seconds", "1"]), "ingest");
    assert!(ingest[4].parse::<u64>().expect("acked count") > 0, "some sends are acknowledged: {ingest:?}");

    let idle = row(&load(&["idle", "--tabs", "20", "--accounts", "2"]), "idle");
    assert_eq!(idle[1], "20", "{idle:?}");

    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("big.redb");
    let data = data.to_str().expect("utf-8 path");
    let generated = load(&["generate", "--messages", "5000", "--data", data]);
    assert!(generated.contains("wrote 5000 messages"), "{generated}");
    let history = load(&["history", "--data", data, "--repeat", "3"]);
    assert!(history.contains("| history | latest 50 of #general"), "{history}");
    assert!(history.contains("| history | search: a rare word"), "{history}");
    let crash = load(&["crash", "--data", data, "--rounds", "1", "--senders", "2", "--write-ms", "100"]);
    assert!(crash.contains("| crash | quick repair |") && crash.contains("after kill -9 #1"), "{crash}");
    let backup = load(&["backup", "--data", data]);
    assert!(backup.lines().last().is_some_and(|l| l.starts_with("| backup |")), "{backup}");
}

#[test]
fn the_load_tool_measures_a_victim_during_a_flood_on_a_tiny_run() {
    for kind in ["typing", "tabs"] {
        let args = ["flood", "--kind", kind, "--seconds", "1", "--members", "3", "--accounts", "1", "--tabs", "20"];
        let flood = row(&load(&args), "flood");
        assert_eq!(flood[1], kind, "{flood:?}");
        assert!(flood[3].parse::<u64>().expect("frames through") > 0, "the flooder got something through: {flood:?}");
        assert_eq!(flood[8], "20", "one second of a message every 50 ms: {flood:?}");
    }
}
