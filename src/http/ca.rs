//! The local certificate authority's page (`/ca`) and downloads (`/ca.pem`, `/ca.crt`),
//! reachable without signing in and over plain HTTP too (people fetch it before their
//! browser trusts the server), and, in HTTPS mode, the router plain HTTP gets: everything
//! else is redirected to the same address over HTTPS.
//!
//! The page is made here rather than in the web client: it must work on a connection the
//! browser does not trust yet, so it needs nothing else from the server (no script, its
//! style inline).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::App;
use crate::protocol::{ErrorCode, Refusal};

/// What plain HTTP gets in HTTPS mode.
pub fn plain_router(state: App) -> Router {
    routes().fallback(to_https).layer(axum::middleware::from_fn(super::security_headers)).with_state(state)
}

pub fn routes() -> Router<App> {
    Router::new().route("/ca", get(page)).route("/ca.pem", get(pem)).route("/ca.crt", get(crt))
}

/// The same address, over HTTPS (307: a browser does not keep it for good, so turning
/// HTTPS off again does not leave people at a dead address).
async fn to_https(headers: HeaderMap, uri: Uri) -> Response {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty()) else {
        return Refusal::new(ErrorCode::BadRequest, "this server speaks HTTPS: open it with https://").into_response();
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    match HeaderValue::from_str(&format!("https://{host}{path}")) {
        Ok(location) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => Refusal::new(ErrorCode::BadRequest, "this server speaks HTTPS: open it with https://").into_response(),
    }
}

async fn pem(State(app): State<App>) -> Response {
    let Some(tls) = app.tls.as_ref() else { return not_https() };
    download(tls.ca_pem().as_bytes().to_vec(), "application/x-pem-file", "hallway-ca.pem")
}

/// The same certificate in DER, the form Windows, Android and iOS open with a tap.
async fn crt(State(app): State<App>) -> Response {
    let Some(tls) = app.tls.as_ref() else { return not_https() };
    download(tls.ca_der().to_vec(), "application/x-x509-ca-cert", "hallway-ca.crt")
}

fn download(body: Vec<u8>, kind: &'static str, name: &'static str) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn not_https() -> Response {
    Refusal::new(ErrorCode::NotFound, "this server does not use HTTPS, so it has no certificate to install").into_response()
}

async fn page(State(app): State<App>, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
    let body = match app.tls.as_ref() {
        Some(tls) => with_https(&escape(&host), &tls.fingerprint(), &tls.thumbprint()),
        None => WITHOUT_HTTPS.to_string(),
    };
    let mut response = (StatusCode::OK, format!("{HEAD}{body}</main></body></html>\n")).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hallway: trust this office's chat</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #f6f6f4; }
main { max-width: 46rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; } h2 { font-size: 1.1rem; margin: 1.75rem 0 .25rem; }
code, .fp { font-family: ui-monospace, monospace; font-size: .9em; overflow-wrap: anywhere; }
.fp { background: #fff; border: 1px solid #d4d4d0; border-radius: 6px; padding: .5rem .75rem; }
.get { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
.get a { background: #1f5fbf; color: #fff; padding: .6rem 1rem; border-radius: 6px; text-decoration: none; font-weight: 600; }
ol { padding-left: 1.3rem; } li { margin: .2rem 0; }
@media (prefers-color-scheme: dark) { body { background: #17181a; color: #e8e8e6; } .fp { background: #222326; border-color: #3a3b3f; } .get a { background: #3b7ddd; } }
</style></head><body><main>
"#;

const WITHOUT_HTTPS: &str = r#"<h1>This server does not use HTTPS</h1>
<p>So there is no certificate to install. Browsers show desktop notifications only on a secure
page: on the server's own machine (<code>localhost</code>), or over HTTPS.</p>
<p>The admin can turn HTTPS on by starting the server with <code>--https</code> (or
<code>https = true</code> in <code>/etc/hallway/hallway.toml</code>) and restarting it. This page then
offers the office's certificate with the steps to install it.</p>
"#;

fn with_https(host: &str, sha256: &str, sha1: &str) -> String {
    format!(
        r#"<h1>Trust this office's chat</h1>
<p>This chat server made its own certificate authority, for this office only. Install its
certificate once on each device and browsers will open <a href="https://{host}/">https://{host}/</a>
without a warning, and can show desktop notifications.</p>
<p>It can vouch only for <code>.local</code> names and private network addresses, never for a site on
the internet. Before you trust it, check that its fingerprint is the one your admin gave you
(the server prints it when it starts):</p>
<p class="fp">SHA-256 {sha256}<br>SHA-1 {sha1}</p>
<div class="get"><a href="/ca.crt" download>Download the certificate (.crt)</a><a href="/ca.pem" download>PEM (.pem)</a></div>

<h2>Windows</h2>
<ol><li>Download the <b>.crt</b> file and open it, then choose <b>Install Certificate…</b></li>
<li>Choose <b>Current User</b>, then <b>Place all certificates in the following store</b>, <b>Browse…</b>, <b>Trusted Root Certification Authorities</b>.</li>
<li>Finish, and confirm the security warning after checking that its thumbprint is the SHA-1 above. Restart the browser.</li></ol>

<h2>macOS</h2>
<ol><li>Download the <b>.crt</b> file and open it: Keychain Access adds it to the <b>login</b> keychain.</li>
<li>Double-click “Hallway local CA” in the list, open <b>Trust</b>, set <b>When using this certificate</b> to <b>Always Trust</b>, close the window and enter your password.</li></ol>

<h2>Linux</h2>
<ol><li>For Chrome and Chromium: Settings → Privacy and security → Security → Manage certificates → Authorities → Import, choose the <b>.pem</b> file and tick “Trust this certificate for identifying websites”. Or in a terminal: <code>certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "Hallway" -i hallway-ca.pem</code> (package <code>libnss3-tools</code>).</li>
<li>For the whole system (curl and other tools): <code>sudo cp hallway-ca.pem /usr/local/share/ca-certificates/hallway-ca.crt &amp;&amp; sudo update-ca-certificates</code></li></ol>

<h2>Firefox (any system)</h2>
<ol><li>Settings → Privacy &amp; Security → Certificates → <b>View Certificates…</b> → Authorities → <b>Import…</b>, choose the file, and tick “Trust this CA to identify websites”.</li></ol>

<h2>Android</h2>
<ol><li>Download the <b>.crt</b> file.</li>
<li>Settings → Security (or Security &amp; privacy) → More security settings → Encryption &amp; credentials → <b>Install a certificate</b> → <b>CA certificate</b> → Install anyway, and pick the file.</li></ol>

<h2>iPhone and iPad</h2>
<ol><li>Open this page in Safari and download the <b>.crt</b> file; allow the configuration profile.</li>
<li>Settings → General → VPN &amp; Device Management → the Hallway profile → <b>Install</b>.</li>
<li>Settings → General → About → <b>Certificate Trust Settings</b> → turn on full trust for “Hallway local CA”.</li></ol>

<p>Then open <a href="https://{host}/">https://{host}/</a>.</p>
"#
    )
}
