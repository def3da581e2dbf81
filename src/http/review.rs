//! The reviewer's endpoints (docs/protocol.md, "Review"): read and search archived
//! conversations with every earlier version, export one, and the admins' audit log. Every
//! read goes through the core's one door (`Action::Review`), and is written to the audit log
//! before it is answered; a member gets `403 forbidden`, never a conversation.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::api::{SearchQuery, SearchRequest};
use super::auth::Session;
use crate::core::access::{Action, HistoryRange, Reviewed};
use crate::core::transcript::Person;
use crate::model::{ConvId, Role, Seq, UserId};
use crate::protocol::{ErrorCode, Refusal};

/// Messages an export holds at most; a longer conversation is exported in date ranges.
const MAX_EXPORT: usize = 100_000;
const MAX_PAGE: usize = 200;

fn reviewers_only(session: &Session) -> Result<(), Refusal> {
    match session.role {
        Role::Reviewer => Ok(()),
        _ => Err(Refusal::new(ErrorCode::Forbidden, "only a reviewer reads the archive")),
    }
}

/// `GET /api/review/conversations`: the archived conversations.
pub async fn conversations(State(app): State<App>, session: Session) -> Result<Json<Value>, Refusal> {
    reviewers_only(&session)?;
    let convs = app.hub.reviewable(session.user).await;
    app.hub.audit(session.user, "list", None, String::new(), convs.len()).await?;
    Ok(Json(json!({ "conversations": convs })))
}

#[derive(Deserialize)]
pub struct Page {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<usize>,
}

fn to_json(page: &[Reviewed]) -> Vec<Value> {
    page.iter()
        .map(|r| {
            let mut message = serde_json::to_value(&r.message).unwrap_or_default();
            message["versions"] = serde_json::to_value(&r.versions).unwrap_or_default();
            message
        })
        .collect()
}

/// `GET /api/review/conversations/{id}/messages?before=&after=&limit=`: a page with each
/// message's earlier versions.
pub async fn messages(
    State(app): State<App>,
    session: Session,
    id: Result<Path<u64>, PathRejection>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, Refusal> {
    reviewers_only(&session)?;
    let Ok(Path(id)) = id else { return Err(Refusal::not_found()) };
    let Query(page) = page?;
    let limit = page.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(Refusal::new(ErrorCode::BadRequest, format!("limit is 1 to {MAX_PAGE}")));
    }
    let (range, asked) = match (page.before, page.after) {
        (Some(_), Some(_)) => return Err(Refusal::new(ErrorCode::BadRequest, "give before or after, not both")),
        (_, Some(after)) => (HistoryRange::After(Seq(after)), format!("after={after}")),
        (before, None) => {
            (HistoryRange::Before(Seq(before.unwrap_or(u64::MAX))), format!("before={}", before.unwrap_or(u64::MAX)))
        }
    };
    let conv = ConvId(id);
    let (found, more) = app.hub.review_history(session.user, conv, range, limit).await?;
    app.hub.audit(session.user, "read", Some(conv), asked, found.len()).await?;
    Ok(Json(json!({ "messages": to_json(&found), "more": more })))
}

/// `GET /api/review/search?q=&from=&conv=&since=&until=&before=&limit=`: every archived
/// conversation (or `conv`), by keyword, person and date.
pub async fn search(
    State(app): State<App>,
    session: Session,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Value>, Refusal> {
    reviewers_only(&session)?;
    let Query(query) = query?;
    let asked = SearchRequest::parse(&query)?;
    let scope = query.conv.map(ConvId);
    let answer = asked.run(&app, session.user, Action::Review, scope).await?;
    app.hub.audit(session.user, "search", scope, query.describe(), answer.found.results.len()).await?;
    let mut json = answer.to_json();
    // With earlier versions: a result may have matched the original of an edit or a delete.
    let reviewed = app.hub.reviewed(session.user, answer.found.results).await?;
    json["results"] = to_json(&reviewed).into();
    Ok(Json(json))
}

#[derive(Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

/// The export format asked for, checked.
fn export_format(format: Option<String>) -> Result<String, Refusal> {
    let format = format.unwrap_or_else(|| "json".into());
    match format.as_str() {
        "json" | "txt" | "html" => Ok(format),
        _ => Err(Refusal::new(ErrorCode::BadRequest, "format is json, txt or html")),
    }
}

/// `messages` as a download in `format` ("json", "txt" or "html"), titled `title`.
fn download(app: &App, title: &str, file: &str, format: &str, messages: &[Reviewed]) -> Result<Response, Refusal> {
    let names: HashMap<UserId, String> = app.store.users()?.into_iter().map(|(id, u)| (id, u.name)).collect();
    let name = |id: UserId| names.get(&id).cloned().unwrap_or_else(|| format!("user {}", id.0));
    let (body, kind) = match format {
        "txt" => (as_text(messages, name), "text/plain; charset=utf-8"),
        "html" => (as_html(title, messages, name), "text/html; charset=utf-8"),
        _ => (json!({ "title": title, "messages": to_json(messages) }).to_string(), "application/json"),
    };
    let disposition = format!("attachment; filename=\"{file}.{format}\"");
    Ok(([(header::CONTENT_TYPE, kind.to_string()), (header::CONTENT_DISPOSITION, disposition)], body).into_response())
}

/// `GET /api/review/search/export?q=&from=&conv=&since=&until=&format=json|txt|html`: every
/// result of a search (at most 100,000), newest first, as a download.
pub async fn export_search(
    State(app): State<App>,
    session: Session,
    query: Result<Query<SearchQuery>, QueryRejection>,
    format: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, Refusal> {
    reviewers_only(&session)?;
    let Query(query) = query?;
    let Query(format) = format?;
    let format = export_format(format.format)?;
    let asked = SearchRequest::parse(&query)?;
    let scope = query.conv.map(ConvId);
    let found = asked.run_all(&app, session.user, Action::Review, scope, MAX_EXPORT).await?;
    app.hub.audit(session.user, "export", scope, format!("{} format={format}", query.describe()), found.len()).await?;
    let messages = app.hub.reviewed(session.user, found).await?;
    download(&app, &format!("Search: {}", query.describe()), "search", &format, &messages)
}

/// `GET /api/review/files/{id}`: a file of an archived conversation, an earlier version's or
/// a deleted message's too; audited like every read, before it is served.
pub async fn file(State(app): State<App>, session: Session, id: Result<Path<u64>, PathRejection>) -> Result<Response, Refusal> {
    reviewers_only(&session)?;
    let Ok(Path(id)) = id else { return Err(Refusal::not_found()) };
    let file = app.hub.review_file(session.user, id).await?;
    app.hub.audit(session.user, "file", Some(file.record.conv), format!("file={id} size={}", file.record.size), 1).await?;
    Ok(super::files::respond(file))
}

/// `GET /api/review/conversations/{id}/export?format=json|txt|html`: the whole conversation,
/// with every earlier version, as a download.
pub async fn export(
    State(app): State<App>,
    session: Session,
    id: Result<Path<u64>, PathRejection>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, Refusal> {
    reviewers_only(&session)?;
    let Ok(Path(id)) = id else { return Err(Refusal::not_found()) };
    let Query(query) = query?;
    let format = export_format(query.format)?;
    let conv = ConvId(id);
    // Every change after seq 0 is the whole conversation, each message once, by seq.
    let (all, _) = app.hub.review_history(session.user, conv, HistoryRange::After(Seq(0)), MAX_EXPORT).await?;
    app.hub.audit(session.user, "export", Some(conv), format!("format={format}"), all.len()).await?;
    download(&app, &format!("Conversation {}", conv.0), &format!("conversation-{}", conv.0), &format, &all)
}

/// One line per version: "[ts] name: text", earlier versions first, marked.
fn as_text(all: &[Reviewed], name: impl Fn(UserId) -> String) -> String {
    let mut out = String::new();
    for r in all {
        for v in &r.versions {
            let _ = writeln!(out, "[{}] {} (earlier version of #{}): {}", v.ts, name(v.author), v.seq, v.text);
        }
        let m = &r.message;
        let state = if m.deleted {
            " (deleted)"
        } else if m.edited_ts.is_some() {
            " (edited)"
        } else {
            ""
        };
        let _ = writeln!(out, "[{}] {} #{}{state}: {}", m.ts, name(m.author), m.seq, m.text);
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A page that reads on its own, offline: every text escaped, no script, no external file.
fn as_html(title: &str, all: &[Reviewed], name: impl Fn(UserId) -> String) -> String {
    let mut out = format!(
        "<!doctype html><meta charset=utf-8><title>{0}</title>\
         <style>body{{font:14px sans-serif;max-width:50em;margin:2em auto}}.v{{color:#777;margin-left:2em}}</style>\
         <h1>{0}</h1>",
        escape(title)
    );
    for r in all {
        let m = &r.message;
        let state = if m.deleted {
            " (deleted)"
        } else if m.edited_ts.is_some() {
            " (edited)"
        } else {
            ""
        };
        let _ =
            write!(out, "<p><b>{}</b> #{}.{} {}{state}: {}</p>", escape(&name(m.author)), m.conv.0, m.seq, m.ts, escape(&m.text));
        for v in &r.versions {
            let _ = write!(out, "<p class=v>earlier version, {}: {}</p>", v.ts, escape(&v.text));
        }
    }
    out
}

/// `GET /api/admin/conversations/{id}/transcript?format=json|txt`: the conversation as kept,
/// every person a pseudonym and addresses removed (`core::transcript`), for training.
pub async fn transcript(
    State(app): State<App>,
    session: Session,
    id: Result<Path<u64>, PathRejection>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, Refusal> {
    if session.role != Role::Admin {
        return Err(Refusal::new(ErrorCode::Forbidden, "only admins export transcripts"));
    }
    let Ok(Path(id)) = id else { return Err(Refusal::not_found()) };
    let Query(query) = query?;
    let format = query.format.unwrap_or_else(|| "json".into());
    if !["json", "txt"].contains(&format.as_str()) {
        return Err(Refusal::new(ErrorCode::BadRequest, "format is json or txt"));
    }
    let conv = ConvId(id);
    let messages = app.hub.transcript(session.user, conv, MAX_EXPORT).await?;
    let users = app.store.users()?;
    let people: Vec<Person> =
        users.iter().map(|(id, u)| Person { id: *id, name: &u.name, display_name: &u.display_name, role: u.role }).collect();
    let lines = crate::core::transcript::transcript(&messages, &people);
    app.hub.audit(session.user, "transcript", Some(conv), format!("format={format}"), lines.len()).await?;
    let (body, kind) = match format.as_str() {
        "txt" => (lines.iter().map(|l| format!("{}: {}\n", l.speaker, l.text)).collect::<String>(), "text/plain; charset=utf-8"),
        _ => (json!({ "conv": conv, "lines": lines }).to_string(), "application/json"),
    };
    let disposition = format!("attachment; filename=\"transcript-{}.{format}\"", conv.0);
    Ok(([(header::CONTENT_TYPE, kind.to_string()), (header::CONTENT_DISPOSITION, disposition)], body).into_response())
}

#[derive(Deserialize)]
pub struct AuditQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/admin/audit?after=&limit=`: what reviewers did, oldest first (admins only).
pub async fn audit(
    State(app): State<App>,
    session: Session,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, Refusal> {
    if session.role != Role::Admin {
        return Err(Refusal::new(ErrorCode::Forbidden, "only admins read the audit log"));
    }
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let page = app.hub.audit_log(query.after.unwrap_or(0), limit).await?;
    let entries: Vec<Value> = page
        .iter()
        .map(|(n, r)| {
            json!({ "n": n, "ts": r.ts, "reviewer": r.reviewer, "action": r.action, "conv": r.conv,
                    "query": r.query, "results": r.results })
        })
        .collect();
    Ok(Json(json!({ "entries": entries, "more": entries.len() == limit })))
}
