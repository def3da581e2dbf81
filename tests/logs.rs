//! The server's log as an admin's log file or journald receives it: standard error is a pipe,
//! so the lines carry no terminal colour codes (they would show as `\x1b[2m...` garbage).

mod common;

use std::process::Stdio;

use common::process::*;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_to_a_pipe_has_no_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let mut server = start_binary_with(&data, &[], "hallway=debug", Stdio::piped()).await;
    let mut stderr = server.child.stderr.take().expect("stderr");
    let reading = tokio::spawn(async move {
        let mut log = Vec::new();
        let _ = stderr.read_to_end(&mut log).await;
        log
    });
    // Lines with fields and levels: a sign-in, a tab, a failed sign-in (a warning or info).
    let http = reqwest::Client::new();
    let cookie = sign_in_admin(&http, &server.addr, server.setup_token.take()).await;
    drop(raw_tab(&server.addr, &cookie).await);
    let wrong = serde_json::json!({"name": common::ADMIN_NAME, "password": "not the password"});
    let _ = http.post(format!("http://{}/api/login", server.addr)).json(&wrong).send().await.expect("a failed sign-in");
    let pid = server.child.id().expect("running") as libc::pid_t;
    // SAFETY: a plain system call on the child we started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(server.child.wait().await.expect("exit").success());
    let log = reading.await.expect("the log");
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("failed sign-in") && text.contains("INFO"), "the log has the usual lines:\n{text}");
    assert!(!log.contains(&0x1b), "the log sent to a pipe has terminal escape codes:\n{text:?}");
}
