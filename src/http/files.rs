//! Files: the upload (`POST /api/conversations/{id}/files`) streams the request body to the
//! store writer chunk by chunk, after the core said the person may attach files there and
//! the declared size is within `--max-file-size` (a bigger file is refused with 413 before
//! a byte of it is read); the download (`GET /api/files/{id}`, `.../thumbnail`) streams the
//! chunks back, after the core's one door (`Hub::file`) let the person in. Served so that
//! nothing uploaded can run in the page's origin: only safe raster images are shown inline,
//! everything else is an `application/octet-stream` attachment, and every answer is
//! sandboxed and `nosniff`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::auth::Session;
use crate::core::access::FileDownload;
use crate::core::{Hub, NewUpload, too_large};
use crate::model::ConvId;
use crate::protocol::{ErrorCode, Refusal};
use crate::store::Change;
use crate::store::files::{CHUNK, THUMB_FIRST};
use crate::store::records::FileRecord;
use crate::store::writer::Writer;

/// Types a browser shows as a picture and nothing else: served inline with their type.
/// (SVG is not among them: it can carry script.)
const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];
/// Largest thumbnail sent with an image.
const MAX_THUMBNAIL: u64 = 256 * 1024;
/// Chunks handed to the writer in one job: a quarter MiB of the body in memory at most.
const CHUNKS_PER_WRITE: usize = 4;
/// A file's name is kept to this many characters.
const MAX_NAME_CHARS: usize = 200;

#[derive(Deserialize)]
pub struct UploadQuery {
    name: String,
    #[serde(rename = "type", default)]
    mime: String,
    /// Bytes of thumbnail at the start of the body, before the file's own.
    #[serde(default)]
    thumbnail: u64,
    #[serde(default)]
    thumbnail_type: String,
}

/// `POST /api/conversations/{id}/files?name=NAME&type=TYPE[&thumbnail=BYTES&thumbnail_type=TYPE]`:
/// the body is the thumbnail's bytes (if any) followed by the file's.
pub async fn upload(
    State(app): State<App>,
    session: Session,
    Path(conv): Path<u64>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, Refusal> {
    let Some(length) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) else {
        return Err(Refusal::new(ErrorCode::BadRequest, "send the file with a Content-Length"));
    };
    if query.thumbnail > MAX_THUMBNAIL.min(length) {
        return Err(Refusal::new(ErrorCode::TooLarge, format!("a thumbnail is at most {MAX_THUMBNAIL} bytes, within the body")));
    }
    let thumb_mime = query.thumbnail_type.to_ascii_lowercase();
    if query.thumbnail > 0 && !INLINE_TYPES.contains(&thumb_mime.as_str()) {
        return Err(Refusal::new(ErrorCode::BadRequest, "a thumbnail is a PNG, JPEG, GIF or WebP image"));
    }
    let size = length - query.thumbnail;
    // Before the core and before a byte of the body: a 10 GB upload costs nothing.
    if size > app.max_file_size {
        return Err(too_large(size, app.max_file_size));
    }
    let upload = NewUpload {
        conv: ConvId(conv),
        name: clean_name(&query.name),
        mime: clean_type(&query.mime),
        size,
        thumb_size: query.thumbnail,
        thumb_mime: if query.thumbnail > 0 { thumb_mime } else { String::new() },
    };
    let (id, record) = app.hub.begin_upload(session.user, upload).await?;
    let mut guard = CutShort { hub: app.hub.clone(), id, armed: true };
    app.writer.write(vec![Change::PutFile(id, record.clone())]).await.map_err(storage)?;
    write_body(&app.writer, id, &record, body).await?;
    let done = FileRecord { complete: true, ..record };
    app.writer.write(vec![Change::PutFile(id, done.clone())]).await.map_err(storage)?;
    app.hub.upload_done(id, true).await;
    guard.armed = false;
    tracing::info!(file = id, conv, user = session.user.0, bytes = done.size, "upload stored");
    Ok(Json(json!({ "file": {
        "id": id, "name": done.name, "size": done.size, "type": done.mime, "thumbnail": done.thumb_size > 0,
    }})))
}

/// Streams the body into chunks: the thumbnail's first (from `THUMB_FIRST`), then the file's.
async fn write_body(writer: &Writer, id: u64, record: &FileRecord, body: axum::body::Body) -> Result<(), Refusal> {
    let thumb = record.thumb_size;
    let total = thumb + record.size;
    let mut stream = body.into_data_stream();
    let (mut pos, mut chunk) = (0u64, Vec::with_capacity(CHUNK));
    let mut changes = Vec::with_capacity(CHUNKS_PER_WRITE);
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|_| Refusal::new(ErrorCode::BadRequest, "the upload was cut short"))?;
        let mut rest: &[u8] = &piece;
        while !rest.is_empty() {
            if pos >= total {
                return Err(Refusal::new(ErrorCode::TooLarge, "the body is longer than its Content-Length"));
            }
            let part_end = if pos < thumb { thumb } else { total };
            let take = (CHUNK - chunk.len()).min((part_end - pos) as usize).min(rest.len());
            chunk.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            pos += take as u64;
            if chunk.len() == CHUNK || pos == part_end {
                let start = pos - chunk.len() as u64;
                let n = if start < thumb { THUMB_FIRST + start / CHUNK as u64 } else { (start - thumb) / CHUNK as u64 };
                changes.push(Change::PutFileChunk(id, n, std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))));
            }
            if changes.len() >= CHUNKS_PER_WRITE {
                writer.write(std::mem::take(&mut changes)).await.map_err(storage)?;
            }
        }
    }
    if pos != total {
        return Err(Refusal::new(ErrorCode::BadRequest, "the upload was cut short"));
    }
    if !changes.is_empty() {
        writer.write(changes).await.map_err(storage)?;
    }
    Ok(())
}

fn storage(e: std::sync::Arc<crate::store::StoreError>) -> Refusal {
    tracing::warn!(error = %e, "an upload could not be written");
    Refusal::new(ErrorCode::Storage, "the file could not be saved; try again")
}

/// Removes an upload that did not finish (an error, or the browser cancelled it and the
/// handler was dropped mid-way).
struct CutShort {
    hub: Hub,
    id: u64,
    armed: bool,
}

impl Drop for CutShort {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (hub, id) = (self.hub.clone(), self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { hub.upload_done(id, false).await });
        }
    }
}

/// `GET /api/files/{id}`
pub async fn download(State(app): State<App>, session: Session, Path(id): Path<u64>) -> Result<Response, Refusal> {
    serve(&app, session, id, false).await
}

/// `GET /api/files/{id}/thumbnail`
pub async fn thumbnail(State(app): State<App>, session: Session, Path(id): Path<u64>) -> Result<Response, Refusal> {
    serve(&app, session, id, true).await
}

async fn serve(app: &App, session: Session, id: u64, thumbnail: bool) -> Result<Response, Refusal> {
    Ok(respond(app.hub.file(session.user, id, thumbnail).await?))
}

/// The file streamed, with the headers that keep it from running as this origin.
pub(super) fn respond(file: FileDownload) -> Response {
    let inline = INLINE_TYPES.contains(&file.mime());
    let served_type = if inline { file.mime().to_string() } else { "application/octet-stream".to_string() };
    let disposition = disposition(if inline { "inline" } else { "attachment" }, &file.record.name);
    let length = file.len();
    let mut response = axum::body::Body::from_stream(file.chunks()).into_response();
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&served_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Opened on its own, nothing in it may run as this origin (an SVG or HTML never gets
    // here as such, but the sandbox holds whatever the type).
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    response
}

/// `inline` or `attachment` with the name: plain ASCII for old clients, UTF-8 for the rest.
fn disposition(kind: &str, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for byte in name.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => encoded.push(*byte as char),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The name as kept: no path, no control characters, not too long.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect();
    let clean = clean.trim();
    if clean.is_empty() { "file".to_string() } else { clean.to_string() }
}

/// A media type as `type/subtype`, lowercase, or `application/octet-stream`.
fn clean_type(mime: &str) -> String {
    let mime = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let ok = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    match mime.split_once('/') {
        Some((kind, sub)) if mime.len() <= 100 && ok(kind) && ok(sub) => mime,
        _ => "application/octet-stream".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types_are_kept_harmless() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(clean_name("\u{7}  "), "file");
        assert_eq!(clean_type("Image/PNG"), "image/png");
        assert_eq!(clean_type("text/html; charset=utf-8"), "text/html");
        assert_eq!(clean_type("<script>"), "application/octet-stream");
        assert_eq!(
            disposition("attachment", "Résumé \"final\".pdf"),
            "attachment; filename=\"R_sum_ _final_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.pdf"
        );
    }
}
