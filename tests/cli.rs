//! The admin's command line: accounts are managed while the server is stopped, and a running
//! server makes the commands say what to do instead of failing obscurely.

mod common;

use common::process::session_cookie;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn hallway(data: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallway"))
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the hallway binary should run");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write the password");
    child.wait_with_output().expect("hallway finished")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_lists_and_resets_accounts_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");

    let added = hallway(&data, &["user", "add", "carol", "--role", "admin", "--display-name", "Carol C"], "first-password\n");
    assert!(added.status.success(), "adding an account should work on a stopped server: {}", text(&added));
    let added = hallway(&data, &["user", "add", "dave"], "dave-password\n");
    assert!(added.status.success(), "{}", text(&added));
    let refused = hallway(&data, &["user", "add", "dave"], "dave-password\n");
    assert!(!refused.status.success(), "a second dave must be refused");
    assert!(text(&refused).contains("dave"), "the refusal should name the account: {}", text(&refused));
    let short = hallway(&data, &["user", "add", "erin"], "short\n");
    assert!(
        !short.status.success() && text(&short).contains("8 characters"),
        "a short password is refused with the rule: {}",
        text(&short)
    );

    let listed = hallway(&data, &["user", "list"], "");
    let listing = text(&listed);
    assert!(listing.contains("carol") && listing.contains("admin") && listing.contains("Carol C"), "{listing}");
    assert!(listing.contains("dave") && listing.contains("member"), "{listing}");

    let changed = hallway(&data, &["user", "passwd", "carol"], "second-password\n");
    assert!(changed.status.success(), "{}", text(&changed));
    let unknown = hallway(&data, &["user", "passwd", "zed"], "whatever-password\n");
    assert!(!unknown.status.success() && text(&unknown).contains("no account named zed"), "{}", text(&unknown));

    // The server then serves those accounts: carol signs in with her new password, and the
    // CLI-made accounts are in #general like web-made ones.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = hallway::Server::start(listener, hallway::Config::new(data.clone())).await.expect("server starts");
    assert!(server.setup_token().is_none(), "an admin exists, so no setup link is offered");
    let base = format!("http://{}", server.local_addr());
    let http = reqwest::Client::new();
    let login = |password: &str| {
        let request = http.post(format!("{base}/api/login")).json(&serde_json::json!({"name": "carol", "password": password}));
        async move { request.send().await.expect("login") }
    };
    let old = login("first-password").await;
    assert_eq!(old.status(), 401, "the old password must stop working");
    let new = login("second-password").await;
    assert_eq!(new.status(), 200, "the new password works");
    let cookie = session_cookie(&new);
    let rooms: serde_json::Value =
        http.get(format!("{base}/api/rooms")).header("cookie", &cookie).send().await.expect("rooms").json().await.expect("json");
    assert_eq!(rooms["rooms"][0]["name"], "general", "{rooms}");
    assert_eq!(rooms["rooms"][0]["member_count"], 2, "both CLI-made accounts are in #general: {rooms}");

    // While it runs, the command line refuses and says what to do instead.
    let busy = hallway(&data, &["user", "list"], "");
    assert!(!busy.status.success(), "the CLI must not write under a running server");
    assert!(
        text(&busy).contains("server is running") && text(&busy).contains("web client"),
        "the refusal should say what to do: {}",
        text(&busy)
    );
    server.shutdown().await;
}

/// A newcomer's first start: one block says where to go, how to become admin, where the data
/// is and how to stop. If it failed, the person at the console would not know what to open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_prints_where_to_go_the_setup_link_the_data_file_and_how_to_stop() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("office.redb");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hallway"))
        .args(["--listen", "127.0.0.1:0", "--no-mdns", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut block = Vec::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            let last = line.starts_with("Press Ctrl-C");
            block.push(line);
            if last {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("the block within 10 s");
    let block = block.join("\n");
    let addr = block.split("serving on ").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("serving on ADDR");
    assert!(block.contains(&format!("Open:        http://{addr}/")), "the block should say what to open:\n{block}");
    let data_shown = std::fs::canonicalize(&data).expect("the data file was created");
    assert!(
        block.contains(&format!("Data file:   {}", data_shown.display())),
        "the block should give the data file's full path:\n{block}"
    );
    assert!(
        block.contains("this one-time link creates the first admin account"),
        "the block should explain the setup link:\n{block}"
    );
    assert!(block.contains(&format!("http://{addr}/setup#")), "the block should give the setup link:\n{block}");
    let pid = child.id().expect("running") as i32;
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().await.expect("the server stops");
    assert!(status.success(), "SIGTERM should stop the server cleanly: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_disables_enables_and_changes_roles_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    for (name, role) in [("carol", "admin"), ("dave", "member")] {
        let added = hallway(&data, &["user", "add", name, "--role", role], &format!("{name}-password\n"));
        assert!(added.status.success(), "{}", text(&added));
    }
    let last = hallway(&data, &["user", "disable", "carol"], "");
    assert!(!last.status.success() && text(&last).contains("only admin"), "the last admin stays: {}", text(&last));
    let last = hallway(&data, &["user", "role", "carol", "member"], "");
    assert!(!last.status.success() && text(&last).contains("only admin"), "{}", text(&last));

    let disabled = hallway(&data, &["user", "disable", "dave"], "");
    assert!(disabled.status.success(), "{}", text(&disabled));
    let listing = text(&hallway(&data, &["user", "list"], ""));
    assert!(listing.lines().any(|l| l.contains("dave") && l.contains("disabled")), "{listing}");
    let promoted = hallway(&data, &["user", "role", "dave", "reviewer"], "");
    assert!(promoted.status.success() && text(&promoted).contains("reviewer"), "{}", text(&promoted));
    let unknown = hallway(&data, &["user", "enable", "zed"], "");
    assert!(!unknown.status.success() && text(&unknown).contains("no account named zed"), "{}", text(&unknown));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = hallway::Server::start(listener, hallway::Config::new(data.clone())).await.expect("server starts");
    let base = format!("http://{}", server.local_addr());
    let login = || {
        let body = serde_json::json!({"name": "dave", "password": "dave-password"});
        let request = reqwest::Client::new().post(format!("{base}/api/login")).json(&body);
        async move { request.send().await.expect("login") }
    };
    assert_eq!(login().await.status(), 403, "dave was disabled on the command line");
    server.shutdown().await;
    let enabled = hallway(&data, &["user", "enable", "dave"], "");
    assert!(enabled.status.success(), "{}", text(&enabled));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = hallway::Server::start(listener, hallway::Config::new(data.clone())).await.expect("server starts");
    let base = format!("http://{}", server.local_addr());
    let body = serde_json::json!({"name": "dave", "password": "dave-password"});
    let resp = reqwest::Client::new().post(format!("{base}/api/login")).json(&body).send().await.expect("login");
    assert_eq!(resp.status(), 200, "enabled again");
    let user: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(user["user"]["role"], "reviewer", "{user}");
    server.shutdown().await;
}
