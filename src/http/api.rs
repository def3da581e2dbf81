//! The REST endpoints that are not about signing in: who am I, accounts, the room
//! directory, history pages. Each checks the session through its `Session` argument.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Session;
use super::{App, Body};
use crate::core::access::{Action, HistoryRange};
use crate::core::new_account;
use crate::model::{ConvId, Role, Seq, UserId};
use crate::protocol::user_info;
use crate::protocol::{self, ErrorCode, Refusal};

/// `GET /api/health`: 200 while all is well; 503 while the data file cannot be written or
/// the chat core has stopped.
pub async fn health(State(app): State<App>) -> (StatusCode, Json<Value>) {
    if !app.hub.is_running() {
        let body = json!({ "status": "core_stopped", "message": "the chat core has stopped after an internal error; restart the server (see its log)" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    if app.writer.failing() {
        let body = json!({ "status": "storage_failing", "message": "the data file cannot be written (disk full?); free space: the server retries on the next write" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    (StatusCode::OK, Json(json!({ "status": "ok" })))
}

/// Any other `/api/...` path: a JSON 404, never the web client's page.
pub async fn no_such_endpoint() -> Refusal {
    Refusal::new(ErrorCode::NotFound, "no such endpoint; see docs/protocol.md")
}

/// `GET /api/me`
pub async fn me(State(app): State<App>, session: Session) -> Result<Json<Value>, Refusal> {
    let record = app.store.user(session.user)?.ok_or_else(Refusal::unauthorized)?;
    Ok(Json(json!({ "user": user_info(session.user, &record) })))
}

/// `GET /api/session`: who is signed in, answered 200 either way, so that a page loaded
/// without a session (the sign-in form) logs no failed request.
pub async fn session(State(app): State<App>, session: Result<Session, Refusal>) -> Result<Json<Value>, Refusal> {
    let records = app.hub.policy().await.to_json();
    let session = match session {
        Ok(session) => session,
        Err(e) if e.code == ErrorCode::Unauthorized => return Ok(Json(json!({ "signed_in": false, "records": records }))),
        Err(e) => return Err(e),
    };
    Ok(Json(match app.store.user(session.user)? {
        Some(record) => json!({ "signed_in": true, "user": user_info(session.user, &record), "records": records }),
        None => json!({ "signed_in": false, "records": records }),
    }))
}

/// `GET /api/users`
pub async fn users(State(app): State<App>, _session: Session) -> Result<Json<Value>, Refusal> {
    let mut users: Vec<protocol::User> = app.store.users()?.iter().map(|(id, r)| user_info(*id, r)).collect();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    display_name: String,
    password: String,
    #[serde(default)]
    role: Option<Role>,
}

/// `POST /api/users` (admins only)
pub async fn create_user(
    State(app): State<App>,
    session: Session,
    Body(body): Body<NewUser>,
) -> Result<impl IntoResponse, Refusal> {
    if session.role != Role::Admin {
        return Err(Refusal::new(ErrorCode::Forbidden, "only admins create accounts"));
    }
    let record = new_account(&body.name, &body.display_name, &body.password, body.role.unwrap_or(Role::Member)).await?;
    let user = app.hub.create_user(record).await?;
    Ok((StatusCode::CREATED, Json(json!({ "user": user }))))
}

/// `GET /api/rooms`
pub async fn rooms(State(app): State<App>, session: Session) -> Json<Value> {
    Json(json!({ "rooms": app.hub.rooms(session.user).await }))
}

#[derive(Deserialize)]
pub struct Page {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<usize>,
}

const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 50;

/// `GET /api/conversations/{id}/messages?before=&after=&limit=`
pub async fn messages(
    State(app): State<App>,
    session: Session,
    id: Result<Path<u64>, PathRejection>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, Refusal> {
    let Ok(Path(id)) = id else { return Err(Refusal::not_found()) };
    let Query(page) = page?;
    let conv = ConvId(id);
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    let range = match (page.before, page.after) {
        (Some(_), Some(_)) => Err(Refusal::new(ErrorCode::BadRequest, "give before or after, not both")),
        (_, Some(after)) => Ok(HistoryRange::After(Seq(after))),
        (before, None) => Ok(HistoryRange::Before(Seq(before.unwrap_or(u64::MAX)))),
    };
    // A non-member learns nothing, not even that the arguments were wrong.
    if app.hub.may(session.user, conv, Action::History).await.is_none() {
        return Err(Refusal::not_found());
    }
    if limit == 0 || limit > MAX_PAGE {
        return Err(Refusal::new(ErrorCode::BadRequest, format!("limit is 1 to {MAX_PAGE}")));
    }
    let page = app.hub.history(session.user, conv, range?, limit).await?;
    Ok(Json(json!({ "messages": page.messages, "more": page.more, "last_seq": page.last_seq })))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    from: Option<String>,
    pub(super) conv: Option<u64>,
    before: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
    /// Only messages written at or after this time (milliseconds since 1970).
    since: Option<u64>,
    /// Only messages written at or before this time.
    until: Option<u64>,
}

impl SearchQuery {
    /// The search as asked, for the audit log.
    pub(super) fn describe(&self) -> String {
        let mut parts = vec![format!("q={}", self.q)];
        let optional = [
            ("from", self.from.clone()),
            ("conv", self.conv.map(|c| c.to_string())),
            ("since", self.since.map(|t| t.to_string())),
            ("until", self.until.map(|t| t.to_string())),
        ];
        parts.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| format!("{k}={v}"))));
        parts.join(" ")
    }
}

/// A search position on the wire: "ts.conv.seq" of a result (opaque to clients).
fn position_text(ts: u64, conv: ConvId, seq: Seq) -> String {
    format!("{ts}.{conv}.{seq}")
}

fn parse_position(text: &str) -> Option<(u64, ConvId, Seq)> {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
    match (parts.next()??, parts.next()??, parts.next()??, parts.next()) {
        (ts, conv, seq, None) => Some((ts, ConvId(conv), Seq(seq))),
        _ => None,
    }
}

const MAX_SEARCH_PAGE: usize = 100;
const DEFAULT_SEARCH_PAGE: usize = 20;
/// Paging deeper than this is refused: narrow the search instead.
const MAX_SEARCH_OFFSET: usize = 10_000;
/// Bounds the index cursors a search walks at once (a Chinese or Japanese phrase counts
/// about one word per two characters: `query_words`).
const MAX_SEARCH_WORDS: usize = 16;
/// Searches run at once; more wait. A search takes about a millisecond, but one right after
/// an upgrade (history not indexed yet) reads messages one by one, and two cores must also
/// serve the chat.
static SEARCHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
const MAX_SEARCH_CHARS: usize = 500;

/// `GET /api/search?q=&from=&conv=&before=&offset=&limit=`: messages the user can read (the
/// conversations they are a member of, or just `conv`) that contain every word of `q` and,
/// with `from`, were written by that user; newest first, `before` a page's `next`.
pub async fn search(
    State(app): State<App>,
    session: Session,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Value>, Refusal> {
    let Query(query) = query?;
    let asked = SearchRequest::parse(&query)?;
    Ok(Json(asked.run(&app, session.user, Action::Search, query.conv.map(ConvId)).await?.to_json()))
}

/// A search as asked, checked: its terms, its page, whose messages, since when.
pub(super) struct SearchRequest {
    terms: Vec<crate::store::search::Term>,
    page: crate::store::search::Page,
    from: Option<String>,
}

/// A page of results, newest first.
pub(super) struct SearchAnswer {
    pub found: crate::store::search::Found,
}

impl SearchAnswer {
    pub(super) fn to_json(&self) -> Value {
        let found = &self.found;
        let next = match found.partial {
            Some((ts, conv, seq)) => Some(position_text(ts, conv, seq)),
            None => found.results.last().filter(|_| found.more).map(|(conv, seq, r)| position_text(r.ts, *conv, *seq)),
        };
        let results: Vec<protocol::Message> = found
            .results
            .iter()
            .map(|(conv, seq, r)| {
                let mut message = protocol::message_frame(*conv, *seq, r);
                if let Some(given) = found.reactions.get(&(*conv, *seq)) {
                    message.reactions = protocol::reactions_info(given);
                }
                message
            })
            .collect();
        let mut answer = json!({ "results": results, "more": found.more, "next": next });
        // While the index is rebuilt: the older messages were not searched yet.
        if let Some((ts, ..)) = found.partial {
            answer["partial"] = json!(true);
            answer["searched_after"] = json!(ts);
        }
        answer
    }
}

impl SearchRequest {
    pub(super) fn parse(query: &SearchQuery) -> Result<SearchRequest, Refusal> {
        use crate::store::search::{MIN_WORD, Page, Term, query_words};
        if query.q.chars().count() > MAX_SEARCH_CHARS {
            return Err(Refusal::new(ErrorCode::BadRequest, format!("a search is at most {MAX_SEARCH_CHARS} characters")));
        }
        let mut terms: Vec<Term> = Vec::new();
        for word in query_words(&query.q) {
            if !terms.contains(&Term::Word(word.clone())) {
                terms.push(Term::Word(word));
            }
        }
        if terms.len() > MAX_SEARCH_WORDS {
            return Err(Refusal::new(ErrorCode::BadRequest, format!("search for at most {MAX_SEARCH_WORDS} words")));
        }
        let limit = query.limit.unwrap_or(DEFAULT_SEARCH_PAGE);
        if limit == 0 || limit > MAX_SEARCH_PAGE {
            return Err(Refusal::new(ErrorCode::BadRequest, format!("limit is 1 to {MAX_SEARCH_PAGE}")));
        }
        let offset = query.offset.unwrap_or(0);
        if offset > MAX_SEARCH_OFFSET {
            return Err(Refusal::new(ErrorCode::BadRequest, format!("offset is at most {MAX_SEARCH_OFFSET}; narrow the search")));
        }
        let before = match query.before.as_deref() {
            None | Some("") => None,
            Some(text) => Some(parse_position(text).ok_or_else(|| {
                Refusal::new(ErrorCode::BadRequest, "before is the next of an earlier answer, as it was given")
            })?),
        };
        let page = Page { before, since: query.since, offset, limit };
        let from = query.from.as_deref().map(|n| n.trim_start_matches('@')).filter(|n| !n.is_empty()).map(str::to_owned);
        if terms.is_empty() && from.is_none() {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!("give q (words of at least {MIN_WORD} letters or digits) or from (a user name)"),
            ));
        }
        // `until` (a time, inclusive) is a position: everything older than just after it.
        let page = match query.until {
            Some(until) => {
                let bound = (until.saturating_add(1), ConvId(0), Seq(0));
                Page { before: Some(page.before.map_or(bound, |b| b.min(bound))), ..page }
            }
            None => page,
        };
        Ok(SearchRequest { terms, page, from })
    }

    /// Every result, page by page (at most `max`), newest first: for an export.
    pub(super) async fn run_all(
        self,
        app: &App,
        actor: UserId,
        action: Action,
        scope: Option<ConvId>,
        max: usize,
    ) -> Result<Vec<(ConvId, Seq, crate::store::records::MessageRecord)>, Refusal> {
        let mut all = Vec::new();
        let mut page = crate::store::search::Page { offset: 0, limit: MAX_SEARCH_PAGE, ..self.page };
        loop {
            let request = SearchRequest { terms: self.terms.clone(), page, from: self.from.clone() };
            let found = request.run(app, actor, action, scope).await?.found;
            page.before = found.partial.or(found.results.last().map(|(conv, seq, r)| (r.ts, *conv, *seq)));
            all.extend(found.results);
            if !found.more || all.len() >= max {
                all.truncate(max);
                return Ok(all);
            }
        }
    }

    /// Runs the search through the one door, for `actor` doing `action` in `scope`.
    pub(super) async fn run(
        self,
        app: &App,
        actor: UserId,
        action: Action,
        scope: Option<ConvId>,
    ) -> Result<SearchAnswer, Refusal> {
        let _turn = SEARCHING.acquire().await.map_err(|_| Refusal::new(ErrorCode::Internal, "searching failed"))?;
        let found = app.hub.search(actor, action, scope, self.from, self.terms, self.page).await?;
        Ok(SearchAnswer { found })
    }
}
