//! What the admin watches the server with: `GET /metrics` in Prometheus text format (admins
//! only, or anyone on the separate `--metrics-listen` address) whose figures follow what
//! happens.

mod common;

use std::collections::HashMap;

use common::*;

/// A Prometheus text answer as `name{labels}` -> value; every line must be a comment or a
/// sample, and every sample's name must have a `# TYPE`.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut typed = Vec::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["gauge", "counter", "histogram"].contains(&kind), "unknown type in {line:?}");
            typed.push(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number in {line:?}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            typed
                .iter()
                .any(|t| name == t || name.strip_prefix(t.as_str()).is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))),
            "{name} has no # TYPE before it"
        );
        samples.insert(series.to_owned(), value);
    }
    samples
}

async fn metrics(client: &Client) -> HashMap<String, f64> {
    let (status, body) = client.get("/metrics").await;
    assert_eq!(status, 200, "an admin reads /metrics: {body}");
    parse(body.as_str().expect("/metrics is text, not JSON"))
}

#[tokio::test]
async fn metrics_refuse_members_and_their_figures_move_when_a_message_is_sent() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.add_user(&admin, "bob").await;
    let (status, _) = bob.get("/metrics").await;
    assert_eq!(status, 403, "a member may not read the server's metrics");
    let (status, _) = server.anonymous_get("/metrics").await;
    assert_eq!(status, 401, "without a session /metrics asks to sign in");

    let mut tab = admin.ws().await;
    let general = tab.room_id("general");
    let before = metrics(&admin).await;
    assert_eq!(before["hallway_tabs"], 1.0, "one tab is open");
    assert!(before["hallway_connections"] >= 2.0, "the tab's connection and this request's: {before:?}");
    assert!(before["hallway_data_file_bytes"] > 0.0);
    assert!(before.contains_key("hallway_writer_queue_depth"));
    assert!(before.contains_key("hallway_uptime_seconds"));
    assert_eq!(before.get("hallway_build_info{version=\"0.1.0\"}").copied(), Some(1.0));
    assert!(!before.contains_key("hallway_backup_age_seconds"), "no backup age before any backup");

    tab.send_message(general, "counted once").await;
    let after = metrics(&admin).await;
    assert_eq!(
        after["hallway_messages_committed_total"] - before["hallway_messages_committed_total"],
        1.0,
        "one message sent, one committed"
    );
    assert!(
        after["hallway_commit_duration_seconds_count"] > before["hallway_commit_duration_seconds_count"],
        "its commit is in the latency histogram"
    );
    assert_eq!(after["hallway_commit_duration_seconds_bucket{le=\"+Inf\"}"], after["hallway_commit_duration_seconds_count"]);
    tab.close().await;
}

#[tokio::test]
async fn the_metrics_address_serves_metrics_without_a_session_and_nothing_else() {
    let server = TestServer::start_with(|config| config.metrics_listen = Some("127.0.0.1:0".parse().expect("address"))).await;
    let _admin = server.admin().await;
    let addr = server.metrics_addr().expect("a metrics address was asked for");
    let http = reqwest::Client::new();
    let response = http.get(format!("http://{addr}/metrics")).send().await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let figures = parse(&response.text().await.expect("text"));
    assert!(figures.contains_key("hallway_messages_committed_total"));
    for path in ["/", "/api/users", "/api/session", "/index.html"] {
        let response = http.get(format!("http://{addr}{path}")).send().await.expect("GET");
        assert_eq!(response.status(), 404, "the metrics address serves {path} too");
    }
}

#[tokio::test]
async fn admin_statistics_count_todays_messages_active_people_conversations_and_open_tabs() {
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.add_user(&admin, "bob").await;
    let _carol = server.add_user(&admin, "carol").await;
    let (status, body) = bob.get("/api/admin/stats").await;
    assert_eq!(status, 403, "a member may not see the server's statistics: {body}");
    assert_eq!(body["code"], "forbidden");
    let (status, _) = server.anonymous_get("/api/admin/stats").await;
    assert_eq!(status, 401);

    let started = hallway::model::now_millis();
    let mut alice_tab = admin.ws().await;
    let _alice_second = admin.ws_tab("alice's second tab").await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");
    // Each ack comes after its commit, and the writer commits in order: by these acks the
    // tabs' "active today" notes are on disk too.
    bob_tab.send_message(general, "one").await;
    bob_tab.send_message(general, "two").await;
    alice_tab.send_message(general, "three").await;
    bob_tab.ack(serde_json::json!({"type": "open_dm", "users": [admin.id]})).await;

    let (status, stats) = admin.get("/api/admin/stats").await;
    assert_eq!(status, 200, "{stats}");
    let days = stats["messages_per_day"].as_array().expect("messages_per_day");
    assert_eq!(days.len(), 30, "the last 30 days, every one listed: {stats}");
    assert_eq!(days[29]["messages"], 3, "today's three messages (system lines are not counted): {stats}");
    assert_eq!(days.iter().map(|d| d["messages"].as_u64().unwrap()).sum::<u64>(), 3);
    let dates: Vec<&str> = days.iter().map(|d| d["date"].as_str().expect("date")).collect();
    assert!(dates.windows(2).all(|w| w[0] < w[1]) && dates.iter().all(|d| d.len() == 10), "dates oldest first: {dates:?}");
    assert_eq!(stats["active_users"], serde_json::json!({"today": 2, "week": 2}), "alice and bob, not carol: {stats}");
    assert_eq!(stats["conversations"]["rooms"], 1, "{stats}");
    assert_eq!(stats["conversations"]["dms"], 1, "{stats}");
    assert_eq!(stats["conversations"]["total"], 2, "{stats}");
    assert_eq!(stats["tabs"]["total"], 3, "{stats}");
    let people = stats["tabs"]["people"].as_array().expect("people");
    let tabs_of = |name: &str| people.iter().find(|p| p["name"] == name).map(|p| p["tabs"].as_u64().unwrap());
    assert_eq!((tabs_of("alice"), tabs_of("bob"), tabs_of("carol")), (Some(2), Some(1), None), "{stats}");
    assert!(people.iter().all(|p| p["since"].as_u64().is_some_and(|since| since >= started - 1000)), "{stats}");
    assert!(stats["data_file_bytes"].as_u64().is_some_and(|b| b > 0), "{stats}");
    assert!(stats["free_disk_bytes"].as_u64().is_some_and(|b| b > 0), "{stats}");
    assert_eq!(stats["version"], env!("CARGO_PKG_VERSION"));
    assert!(stats["uptime_seconds"].is_u64() && stats["started"].as_u64().is_some_and(|s| s <= hallway::model::now_millis()));

    // The counters are in the file: a restart keeps them.
    drop((alice_tab, _alice_second, bob_tab));
    server.restart().await;
    let admin = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let (_, stats) = admin.get("/api/admin/stats").await;
    assert_eq!(stats["messages_per_day"][29]["messages"], 3, "{stats}");
    assert_eq!(stats["active_users"]["today"], 2, "{stats}");
    assert_eq!(stats["tabs"]["total"], 0, "{stats}");
}
