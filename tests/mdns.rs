//! mDNS, for real and safely: people on the LAN find the server by name.
//!
//! Nothing here may reach this machine's real interfaces. The test makes three network
//! namespaces of its own: a client with a bridge, and two servers, each joined to the bridge
//! by a veth pair created inside the namespaces (never in the host's). The servers announce
//! only there; the client is python-zeroconf, an mDNS implementation nobody on this project
//! wrote (tests/fixtures/mdns_client.py). Where namespaces cannot be made (not root), the
//! test says so and passes without running.
//!
//! If it failed, people typing http://hallway.local:8088/ would get "site not found", two
//! servers on one LAN would fight over a name, or a stopped server would linger in browsers.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const PORT: u16 = 8088;
const CLIENT_ADDR: &str = "10.77.0.100";

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn in_ns(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip(&all)
}

/// Three namespaces, deleted (with their links) when dropped.
struct Lan {
    client: String,
    servers: [String; 2],
}

impl Lan {
    fn make() -> Result<Lan, String> {
        let tag = std::process::id();
        let lan = Lan { client: format!("hw-mdns-{tag}-c"), servers: [format!("hw-mdns-{tag}-a"), format!("hw-mdns-{tag}-b")] };
        ip(&["netns", "add", &lan.client])?;
        for ns in &lan.servers {
            ip(&["netns", "add", ns])?;
        }
        let c = lan.client.as_str();
        in_ns(c, &["link", "set", "lo", "up"])?;
        in_ns(c, &["link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])?;
        in_ns(c, &["addr", "add", &format!("{CLIENT_ADDR}/24"), "dev", "br0"])?;
        in_ns(c, &["link", "set", "br0", "up"])?;
        in_ns(c, &["route", "add", "224.0.0.0/4", "dev", "br0"])?;
        for (i, ns) in lan.servers.iter().enumerate() {
            let port = format!("p{i}");
            // Made inside the client's namespace, one end moved straight into the server's.
            in_ns(c, &["link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
            in_ns(c, &["link", "set", &port, "master", "br0"])?;
            in_ns(c, &["link", "set", &port, "up"])?;
            in_ns(ns, &["link", "set", "lo", "up"])?;
            in_ns(ns, &["addr", "add", &format!("10.77.0.{}/24", i + 1), "dev", "eth0"])?;
            in_ns(ns, &["link", "set", "eth0", "multicast", "on", "up"])?;
            in_ns(ns, &["route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.servers.iter().chain([&self.client]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A server in its namespace; its log lines arrive on `log`.
struct Server {
    child: Child,
    log: tokio::sync::mpsc::UnboundedReceiver<String>,
}

async fn start_server(ns: &str, data: &std::path::Path, more: &[&str]) -> Server {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_hallway"), "--listen", &format!("0.0.0.0:{PORT}"), "--data"])
        .arg(data)
        .args(more)
        .env("RUST_LOG", "hallway=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the server should start in its namespace");
    let (tx, log) = tokio::sync::mpsc::unbounded_channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    Server { child, log }
}

impl Server {
    /// Waits for a console or log line containing `needle`; returns it.
    async fn line_with(&mut self, needle: &str) -> String {
        let wait = async {
            while let Some(line) = self.log.recv().await {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("the server ended before printing {needle:?}");
        };
        // Generous: on a loaded machine the start (and the name's probing) is slow; only a
        // server that never prints the line should fail here.
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("the server should print {needle:?} within 60 s"))
    }

    fn terminate(&self) {
        let pid = self.child.id().expect("a running server") as i32;
        // SAFETY: a plain signal to our own child (ip netns exec replaces itself with the server).
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

struct Client {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Lines read while waiting for another, for a later step that wants them.
    unclaimed: Vec<Value>,
}

impl Client {
    async fn start(ns: &str) -> Client {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mdns_client.py");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-u", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 should start");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut client = Client { _child: child, stdin, lines, unclaimed: Vec::new() };
        client.next_where("ready", |v| v["ready"] == true).await;
        client
    }

    /// The first line, already read or still to come, that `wanted` accepts.
    async fn next_where(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(at) = self.unclaimed.iter().position(&wanted) {
            return self.unclaimed.remove(at);
        }
        let wait = async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("the client printed {line:?}: {e}"));
                if wanted(&value) {
                    return value;
                }
                self.unclaimed.push(value);
            }
            panic!("the mDNS client ended while waiting for {what} (is python zeroconf installed? tests/run.sh installs it)");
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("the mDNS client should see {what} within 20 s"))
    }

    async fn ask(&mut self, command: &str) {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.expect("the client reads commands");
        self.stdin.flush().await.expect("flush");
    }

    async fn resolve(&mut self, host: &str) -> Vec<String> {
        self.ask(&format!("resolve {host}")).await;
        let answer = self.next_where(&format!("an answer for {host}"), |v| v["resolved"] == host).await;
        answer["addresses"].as_array().expect("addresses").iter().map(|a| a.as_str().unwrap_or_default().to_owned()).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lan_finds_the_server_by_name_a_second_one_gets_a_suffix_and_a_stopped_one_says_goodbye() {
    let lan = match Lan::make() {
        Ok(lan) => lan,
        Err(why) => {
            println!("SKIPPED: cannot make network namespaces here ({why}); the mDNS test needs root");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut client = Client::start(&lan.client).await;

    // The first server takes the name and the service.
    let mut first = start_server(&lan.servers[0], &dir.path().join("a.redb"), &[]).await;
    let open = first.line_with("Open:").await;
    assert!(open.contains(&format!("http://hallway.local:{PORT}/")), "the console should print the .local address first: {open}");
    let found =
        client.next_where("the first server's service", |v| v["event"] == "added" && v["server"] == "hallway.local.").await;
    assert_eq!(
        found["addresses"],
        serde_json::json!(["10.77.0.1"]),
        "the service should point at the server's LAN address: {found}"
    );
    assert_eq!(found["port"], PORT);
    assert_eq!(found["txt"]["path"], "/");
    assert_eq!(found["txt"]["https"], "0");
    assert_eq!(found["txt"]["version"], env!("CARGO_PKG_VERSION"));
    let first_service = found["service"].as_str().expect("a service name").to_owned();
    assert!(first_service.starts_with("Hallway on "), "the service should be called Hallway on HOST: {first_service}");
    assert_eq!(client.resolve("hallway.local.").await, ["10.77.0.1"], "hallway.local should resolve to the server");
    client.ask(&format!("get http://10.77.0.1:{PORT}/")).await;
    let page = client.next_where("the page", |v| v.get("get").is_some()).await;
    assert_eq!(page["status"], 200, "the announced address should serve the page: {page}");

    // A second server on the same LAN, wanting the same name, gets a suffixed one; it serves
    // HTTPS, and so announces `_https._tcp`.
    let mut second = start_server(&lan.servers[1], &dir.path().join("b.redb"), &["--https"]).await;
    let taken = second.line_with("the name is taken on the LAN").await;
    assert!(taken.contains("hallway-2.local"), "the second server should log the suffixed name: {taken}");
    let open = second.line_with("Open:").await;
    assert!(open.contains(&format!("https://hallway-2.local:{PORT}/")), "the console should print the name in use: {open}");
    let setup = second.line_with("/setup#").await;
    let token = setup.split("/setup#").nth(1).expect("a token").trim().to_owned();
    let base = format!("https://10.77.0.2:{PORT}");
    let ca = dir.path().join("b.redb.tls").join("ca.pem");
    client.ask(&format!("stats {base} {token} {}", ca.display())).await;
    let stats = client.next_where("the admin page's figures", |v| v.get("stats").is_some()).await;
    assert_eq!(stats["lan_name"], "hallway-2.local", "the admin page should show the name in use: {stats}");
    assert_eq!(client.resolve("hallway-2.local.").await, ["10.77.0.2"], "the suffixed name should resolve to the second server");
    assert_eq!(client.resolve("hallway.local.").await, ["10.77.0.1"], "the first server should keep its name");
    let second_found =
        client.next_where("the second server's service", |v| v["event"] == "added" && v["server"] == "hallway-2.local.").await;
    assert_ne!(second_found["service"], first_service.as_str(), "two servers should not share a service name");
    assert_eq!(found["type"], "_http._tcp.local.", "a plain server announces _http._tcp: {found}");
    assert_eq!(second_found["type"], "_https._tcp.local.", "an HTTPS server announces _https._tcp: {second_found}");
    assert_eq!(second_found["txt"]["https"], "1", "{second_found}");
    // Its certificate comes to name the name in use, once probing settled it.
    let cert = dir.path().join("b.redb.tls").join("server.pem");
    let names = second.line_with("issued a new HTTPS certificate").await;
    assert!(names.contains("hallway-2.local"), "the renewed certificate should name hallway-2.local: {names}");
    let san = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let san = String::from_utf8_lossy(&san.stdout);
    assert!(san.contains("DNS:hallway-2.local") && san.contains("IP Address:10.77.0.2"), "the certificate on disk: {san}");

    // A stopped server withdraws its service at once.
    first.terminate();
    client.next_where("the first service's goodbye", |v| v["event"] == "removed" && v["service"] == first_service.as_str()).await;
    first.line_with("withdrew the mDNS announcement").await;
    second.terminate();
    let _ = second.child.wait().await;
    let _ = first.child.wait().await;
    drop(lan);
}
