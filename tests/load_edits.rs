//! `hallway-load generate --edits` writes edits as the server does under archive (the file
//! checks out), and the reviewer's search on it finds words only earlier versions hold.

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let output = Command::new(bin).args(args).output().expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{bin} {args:?} failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[test]
fn a_generated_archive_with_edits_checks_out_and_the_reviewer_finds_what_edits_took_away() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("edits.redb");
    let data = data.to_str().expect("utf-8 path");
    let load = env!("CARGO_BIN_EXE_hallway-load");
    let generated = run(load, &["generate", "--messages", "3000", "--edits", "400", "--data", data]);
    assert!(generated.contains("included 400 edited messages"), "{generated}");

    let checked = run(env!("CARGO_BIN_EXE_hallway"), &["check", "--data", data]);
    assert!(checked.contains("No problems found"), "{checked}");
    assert!(!checked.contains(" 0 archived versions"), "{checked}");

    let review = run(load, &["review", "--data", data, "--repeat", "1", "--server-bin", env!("CARGO_BIN_EXE_hallway")]);
    let found: usize = review
        .split("the reviewer finds ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of what the reviewer found in:\n{review}"));
    assert!(found > 0, "{review}");
}
