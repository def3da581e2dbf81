//! HTTPS mode (`--https`), checked with clients nobody on this project wrote: curl (OpenSSL)
//! trusting only the server's own certificate authority, and rustls for the WebSocket.
//! What a user would notice if these failed: a certificate warning on every device, a
//! bookmark of the plain address that no longer opens, a session cookie sent in clear.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use futures_util::StreamExt;
use hallway::{Config, Server};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

struct Https {
    _dir: tempfile::TempDir,
    server: Server,
    addr: SocketAddr,
    ca: std::path::PathBuf,
}

async fn start(https: bool) -> Https {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hallway.redb");
    let mut config = Config::new(data.clone());
    config.https = https.then(|| "hallway".parse().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(listener, config).await.expect("the server starts in HTTPS mode");
    let addr = server.local_addr();
    Https { ca: hallway::tls::folder_of(&data).join("ca.pem"), _dir: dir, server, addr }
}

/// Runs curl (blocking: the tests run the server on other worker threads); returns its exit code, the HTTP status and the headers and body it printed.
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl").args(["-sS", "--max-time", "10", "-i"]).args(args).output().expect("curl is installed");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn status(response: &str) -> u16 {
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_trusting_only_the_office_ca_verifies_the_server_by_name_and_by_address() {
    let s = start(true).await;
    let ca = s.ca.to_str().unwrap();
    let port = s.addr.port();
    let resolve = format!("hallway.local:{port}:127.0.0.1");
    let by_name = format!("https://hallway.local:{port}/api/health");
    let by_address = format!("https://127.0.0.1:{port}/api/health");
    let on_this_machine = format!("https://localhost:{port}/api/health");
    for (what, args) in [
        ("the .local name", vec!["--cacert", ca, "--resolve", &resolve, &by_name]),
        ("the address", vec!["--cacert", ca, &by_address]),
        ("localhost", vec!["--cacert", ca, &on_this_machine]),
    ] {
        let (code, response) = curl(&args);
        assert_eq!(code, 0, "curl should trust the server by {what} with the office's CA: {response}");
        assert_eq!(status(&response), 200, "{response}");
    }
    // Without the CA, the certificate is not trusted: it proves the check above is real.
    let (code, _) = curl(&[&by_address]);
    assert_eq!(code, 60, "curl without the office's CA should refuse the certificate (exit 60)");
    // A name the certificate does not carry is refused too.
    let other = format!("other.local:{port}:127.0.0.1");
    let (code, _) = curl(&["--cacert", ca, "--resolve", &other, &format!("https://other.local:{port}/api/health")]);
    assert_eq!(code, 60, "a name not in the certificate should not verify");
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_same_port_is_redirected_but_the_ca_is_served_to_install() {
    let s = start(true).await;
    let base = format!("http://127.0.0.1:{}", s.addr.port());
    let (code, response) = curl(&[&format!("{base}/some/page?x=1")]);
    assert_eq!(code, 0);
    assert_eq!(status(&response), 307, "{response}");
    let location = format!("location: https://127.0.0.1:{}/some/page?x=1", s.addr.port());
    assert!(response.to_ascii_lowercase().contains(&location), "{response}");

    let tls = s.server.tls().expect("HTTPS mode");
    let (_, page) = curl(&[&format!("{base}/ca")]);
    assert_eq!(status(&page), 200, "{page}");
    assert!(page.contains(&tls.fingerprint()), "the page shows the fingerprint to compare");
    for platform in ["Windows", "macOS", "Linux", "Android", "iPhone"] {
        assert!(page.contains(platform), "install steps for {platform}");
    }
    let pem = Command::new("curl").args(["-sS", &format!("{base}/ca.pem")]).output().unwrap().stdout;
    assert_eq!(pem, std::fs::read(&s.ca).unwrap(), "/ca.pem is the authority kept beside the data file");
    let der = Command::new("curl").args(["-sS", &format!("{base}/ca.crt")]).output().unwrap().stdout;
    assert_eq!(der, tls.ca_der(), "/ca.crt is the same certificate in DER");
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_secure_cookie_and_the_chat_runs_over_tls() {
    let s = start(true).await;
    let token = s.server.setup_token().unwrap();
    let body = json!({ "token": token, "name": "alice", "password": "correct horse battery" }).to_string();
    let url = format!("https://127.0.0.1:{}/api/setup", s.addr.port());
    let (code, response) =
        curl(&["--cacert", s.ca.to_str().unwrap(), "-H", "Content-Type: application/json", "--data", &body, &url]);
    assert_eq!(code, 0, "{response}");
    assert_eq!(status(&response), 200, "{response}");
    let cookie_line = response
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: hallway_session="))
        .expect("setup signs the admin in")
        .to_string();
    assert!(cookie_line.contains("; Secure"), "the session cookie must be Secure over HTTPS: {cookie_line}");
    let session = cookie_line.split_once('=').unwrap().1.split(';').next().unwrap().to_string();

    // A tab's WebSocket over TLS, verified against the office's CA by rustls.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(s.server.tls().unwrap().ca_der().to_vec().into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("hallway.local").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("rustls trusts the server");
    let origin = format!("https://hallway.local:{}", s.addr.port());
    let mut request = format!("wss://hallway.local:{}/api/ws", s.addr.port()).into_client_request().unwrap();
    request.headers_mut().insert("Cookie", HeaderValue::from_str(&format!("hallway_session={session}")).unwrap());
    request.headers_mut().insert("Origin", HeaderValue::from_str(&origin).unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls).await.expect("the WebSocket upgrade over TLS");
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    let hello: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello", "{hello}");
    drop(ws);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_https_the_ca_page_says_how_to_turn_it_on() {
    let s = start(false).await;
    let base = format!("http://127.0.0.1:{}", s.addr.port());
    let (_, page) = curl(&[&format!("{base}/ca")]);
    assert_eq!(status(&page), 200, "{page}");
    assert!(page.contains("--https"), "{page}");
    let (_, pem) = curl(&[&format!("{base}/ca.pem")]);
    assert_eq!(status(&pem), 404, "{pem}");
    let (_, session) = curl(&[&format!("{base}/api/session")]);
    assert_eq!(status(&session), 200, "plain HTTP serves the chat when HTTPS is off");
    s.server.shutdown().await;
}
