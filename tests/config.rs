//! The configuration file (`--config`, TOML): an office sets Hallway up once in a file, the
//! environment and flags still win, and a mistake in the file stops start-up with the key
//! and the file named. If it failed, an admin's setting would be ignored in silence, or a
//! typo would start the server with a default the admin did not choose.

mod common;

use std::process::{Command, Output};

use common::process::{sign_in_admin, start_binary_with};

fn hallway(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hallway"));
    // Nothing of the test runner's own environment may decide the outcome.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HALLWAY_") {
            command.env_remove(key);
        }
    }
    command.args(args).envs(envs.iter().copied()).output().expect("the hallway binary runs")
}

fn line_of<'a>(printed: &'a str, key: &str) -> &'a str {
    printed.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("no {key} in:\n{printed}"))
}

#[test]
fn the_file_sets_options_the_environment_beats_it_and_a_flag_beats_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hallway.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9100\"\nmax-frame = 1000\nrecords = \"retain:30\"\nno_mdns = true\nmdns-interface = [\"eth0\", \"wlan0\"]\n")
        .expect("write the file");
    let file = file.to_str().expect("utf-8");
    let out = hallway(&["--config", file, "--records", "archive", "config"], &[("HALLWAY_MAX_FRAME", "2000")]);
    assert!(out.status.success(), "hallway config failed: {}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(line_of(&printed, "listen"), format!("listen = \"127.0.0.1:9100\"  # from file {file}"));
    assert_eq!(line_of(&printed, "max-frame"), "max-frame = 2000  # from environment HALLWAY_MAX_FRAME");
    assert_eq!(line_of(&printed, "records"), "records = \"archive\"  # from flag --records");
    assert_eq!(line_of(&printed, "no-mdns"), format!("no-mdns = true  # from file {file}"));
    assert_eq!(line_of(&printed, "mdns-interface"), format!("mdns-interface = [\"eth0\", \"wlan0\"]  # from file {file}"));
    assert_eq!(line_of(&printed, "header-timeout"), "header-timeout = 10  # from default");
    assert!(printed.contains("# backup-dir is not set"), "an option without a value should say so:\n{printed}");
}

#[test]
fn each_kind_of_mistake_stops_start_up_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("listn = \"0.0.0.0:8088\"\n", "unknown key `listn`"),
        ("max-frame = \"lots\"\n", "`max-frame`: invalid value 'lots'"),
        ("records = \"sometimes\"\n", "`records`: invalid value 'sometimes'"),
        ("no-mdns = \"yes\"\n", "`no-mdns` is true or false"),
        ("mdns-interface = [1, 2]\n", "`mdns-interface` is a list of strings"),
        ("listen = [\"a\"\n", "not valid TOML"),
    ];
    for (i, (text, why)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, text).expect("write the file");
        let file = file.to_str().expect("utf-8");
        let data = dir.path().join(format!("data{i}.redb"));
        let out =
            hallway(&["--config", file, "--no-mdns", "--listen", "127.0.0.1:0", "--data", data.to_str().expect("utf-8")], &[]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a bad file ({text:?}) should stop start-up");
        assert!(said.contains(file) && said.contains(why), "for {text:?} the error should name the file and say {why:?}: {said}");
        assert!(!data.exists(), "a server with a bad configuration should not have created its data file");
    }
    let out = hallway(&["--config", "/nonexistent/hallway.toml", "config"], &[]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration file /nonexistent/hallway.toml")
    );
    let out = hallway(&["config"], &[("HALLWAY_CONFIG", "/nonexistent/from-env.toml")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/from-env.toml"), "HALLWAY_CONFIG should name the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_follows_its_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hallway.toml");
    std::fs::write(&file, "records = \"archive\"\n").expect("write the file");
    let server = start_binary_with(
        &dir.path().join("h.redb"),
        &["--config", file.to_str().expect("utf-8")],
        "info",
        std::process::Stdio::null(),
    )
    .await;
    let http = reqwest::Client::new();
    let cookie = sign_in_admin(&http, &server.addr, server.setup_token.clone()).await;
    let session: serde_json::Value = http
        .get(format!("http://{}/api/session", server.addr))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("GET /api/session")
        .json()
        .await
        .expect("json");
    assert_eq!(session["records"]["policy"], "archive", "the server should archive as its file says: {session}");
}
