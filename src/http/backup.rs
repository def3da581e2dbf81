//! The admin page's backups: a fresh backup streamed to the browser, and what the schedule
//! has done (`backups.rs`). Admins only.
//!
//! A download is made as a file beside the data file (a checked backup like any other, on
//! the disk the backup's free-space check covers), opened, and unlinked at once: the open
//! handle streams it, and nothing is left behind however the download ends. Only a crash
//! while the copy is made leaves a file, which the next start removes.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::App;
use super::auth::Session;
use crate::backups::Overview;
use crate::model::Role;
use crate::protocol::{ErrorCode, Refusal};

/// Bytes read from the file per chunk of the response.
const CHUNK: usize = 256 * 1024;

fn admins_only(session: &Session) -> Result<(), Refusal> {
    if session.role != Role::Admin {
        return Err(Refusal::new(ErrorCode::Forbidden, "only admins make and see backups"));
    }
    Ok(())
}

/// `GET /api/admin/backup`: a backup made now, as a download (`hallway-YYYYMMDD-HHMMSS.redb`).
pub async fn download(State(app): State<App>, session: Session) -> Result<Response, Refusal> {
    admins_only(&session)?;
    let temp = app.backups.download_path();
    let copied = app
        .backups
        .backup_to(temp.clone())
        .await
        .map_err(|e| Refusal::new(ErrorCode::Storage, format!("the backup could not be made: {e}")))?;
    let file = tokio::fs::File::open(&temp).await;
    // Unlinked before streaming: the open handle keeps the bytes until the download ends.
    let _ = tokio::fs::remove_file(&temp).await;
    let file = file.map_err(|e| Refusal::new(ErrorCode::Storage, format!("the backup could not be read: {e}")))?;
    tracing::info!(user = session.user.0, bytes = copied.bytes, "an admin downloads a backup");
    let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0; CHUNK];
        let read = tokio::io::AsyncReadExt::read(&mut file, &mut buf).await?;
        if read == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(read);
        Ok(Some((bytes::Bytes::from(buf), file)))
    });
    let name = format!("hallway-{}.redb", crate::backups::stamp(crate::model::now_millis()));
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(copied.bytes));
    // Already as small as it gets for its worth: gzip would cost the server's CPU for long.
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("identity"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/admin/backups`: the schedule, its last result, and the backups in its folder.
pub async fn list(State(app): State<App>, session: Session) -> Result<Json<Overview>, Refusal> {
    admins_only(&session)?;
    let backups = app.backups.clone();
    let overview = tokio::task::spawn_blocking(move || backups.overview())
        .await
        .map_err(|_| Refusal::new(ErrorCode::Internal, "listing the backups failed"))?;
    Ok(Json(overview))
}
