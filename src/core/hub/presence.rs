//! Tabs and presence: connecting and dropping tabs, what colleagues are told of a person's
//! tabs (aggregated), status text and do-not-disturb, and their expiry.

use std::cmp::Reverse;
use std::time::Duration;

use tokio::time::Instant;

use super::delivery::{Outcome, Reply, Target, Undo, ack_reply};
use super::{ConnState, HubTask, Timer};
use crate::core::{CloseReason, ConnId, Connection, presence};
use crate::model::{Millis, UserId, now_millis};
use crate::protocol::Refusal;
use crate::protocol::{self, ErrorCode, Limits, Presence, Ref, ServerFrame};
use crate::store::Change;
use crate::store::records::StatusRecord;

const MAX_STATUS_CHARS: usize = 100;
/// Colleagues are told of one person's presence changes at most this often.
const PRESENCE_EVERY: Duration = Duration::from_secs(1);

impl HubTask {
    pub(super) async fn connect(&mut self, connection: Connection) {
        let Connection { id, user, session, outbox, closed } = connection;
        let Some(state) = self.users.get_mut(&user) else { return };
        if state.account.disabled {
            // Signed in a moment before the account was disabled (its session is being deleted).
            let _ = closed.set(CloseReason::Disabled);
            tracing::info!(conn = id.0, user = user.0, "refused a tab: the account is disabled");
            return;
        }
        if state.conns.len() >= self.limits.tabs_per_user {
            // Dropping the queue here closes the tab, with this reason.
            let _ = closed.set(CloseReason::TooManyTabs);
            tracing::info!(conn = id.0, user = user.0, tabs = state.conns.len(), "refused a tab: too many open");
            return;
        }
        state.conns.push(id);
        self.conns.insert(id, ConnState { user, session, outbox, closed, idle: false, since: now_millis() });
        self.mark_active(user);
        let hello = protocol::Hello {
            me: self.users[&user].info.clone(),
            limits: Limits { max_frame: self.max_frame, max_file: self.uploads.max_size },
            records: self.policy_info().to_json(),
            users: self.users.values().map(|u| u.info.clone()).collect(),
            presence: self.users.keys().map(|id| self.presence_of(*id)).collect(),
            conversations: self
                .convs
                .iter()
                .filter(|(_, c)| c.members.contains_key(&user))
                .map(|(id, _)| self.conversation_for(*id, user))
                .collect(),
        };
        for part in protocol::hello_parts(&hello) {
            self.deliver(Target::Conn(id), part);
        }
        tracing::debug!(conn = id.0, user = user.0, "tab connected");
        self.seen_now(user);
        self.presence_changed(user);
    }

    pub(super) fn disconnect(&mut self, conn: ConnId) {
        if let Some(state) = self.conns.remove(&conn) {
            self.forget_conn(conn, state.user);
        }
    }

    /// Removes a connection the server is ending; dropping its outbox tells the session.
    pub(super) fn drop_conn(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(state) = self.conns.remove(&conn) {
            let _ = state.closed.set(reason);
            match reason {
                CloseReason::SlowConsumer => {
                    tracing::warn!(conn = conn.0, user = state.user.0, "tab too slow to keep up; disconnecting it")
                }
                _ => tracing::info!(conn = conn.0, user = state.user.0, ?reason, "closing tab"),
            }
            self.forget_conn(conn, state.user);
        }
    }

    pub(super) fn forget_conn(&mut self, conn: ConnId, user: UserId) {
        if let Some(state) = self.users.get_mut(&user) {
            state.conns.retain(|c| *c != conn);
            state.seen = Some(now_millis());
        }
        self.presence_changed(user);
    }

    pub(super) fn presence_of(&self, user: UserId) -> Presence {
        let state = &self.users[&user];
        let idle = state.conns.iter().filter(|c| self.conns.get(c).is_some_and(|c| c.idle)).count();
        Presence {
            user,
            state: presence::aggregate(&state.status, state.conns.len(), idle),
            status: state.status.text.clone(),
            status_expires: state.status.expires,
        }
    }

    /// Tells everyone when a user's aggregated presence changed.
    pub(super) fn presence_changed(&mut self, user: UserId) {
        let presence = self.presence_of(user);
        let Some(state) = self.users.get_mut(&user) else { return };
        if state.shown == presence.state {
            return;
        }
        // Everyone gets every change, so one tab toggling idle as fast as it can would cost
        // every connection: changes close behind the last one wait, and only the state then
        // current is told.
        let now = Instant::now();
        if let Some(told_at) = state.told_at
            && now.duration_since(told_at) < PRESENCE_EVERY
        {
            if !state.told_later {
                state.told_later = true;
                self.timers.push(Reverse((told_at + PRESENCE_EVERY, Timer::Presence(user))));
            }
            return;
        }
        state.shown = presence.state;
        state.told_at = Some(now);
        self.deliver(Target::Everyone, ServerFrame::Presence { presence }.encode());
    }

    /// Sets status text and DND; everyone is told once it is saved (the text may change at
    /// the same presence state, so this always tells).
    pub(super) async fn set_status(&mut self, user: UserId, record: StatusRecord, reply: Reply, expiring: bool) {
        let Some(state) = self.users.get_mut(&user) else { return };
        let before = std::mem::replace(&mut state.status, record.clone());
        let presence = self.presence_of(user);
        if let Some(state) = self.users.get_mut(&user) {
            state.shown = presence.state;
            state.told_at = Some(Instant::now());
        }
        if let Some(at) = record.expires {
            self.expire_at(user, at);
        }
        let frame = ServerFrame::Presence { presence }.encode();
        let mut outcome = Outcome::new(vec![(Target::Everyone, frame)], reply);
        // An expiry that could not be saved stays cleared in memory: undoing it would bring
        // back a status already past its expiry and retry at once, in a loop, on a full disk.
        // At the next start the stored status is found expired and cleared again.
        if !expiring {
            outcome = outcome.undo(Undo::RestoreStatus { user, before, wrote: record.clone() });
        }
        self.persist(vec![Change::PutStatus(user, record)], outcome);
    }

    /// Queues a check of `user`'s status at `at` (wall-clock milliseconds).
    pub(super) fn expire_at(&mut self, user: UserId, at: Millis) {
        let Some(state) = self.users.get_mut(&user) else { return };
        if state.expiry_queued.is_some_and(|queued| queued <= at) {
            return;
        }
        state.expiry_queued = Some(at);
        let due = Instant::now() + Duration::from_millis(at.saturating_sub(now_millis()));
        self.timers.push(Reverse((due, Timer::StatusExpiry(user))));
    }

    /// Runs every timer that is due.
    pub(super) async fn run_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::StatusExpiry(user) => {
                    let Some(state) = self.users.get_mut(&user) else { continue };
                    state.expiry_queued = None;
                    let status = &state.status;
                    if presence::expired(status, now_millis()) {
                        self.set_status(user, StatusRecord::default(), Reply::None, true).await;
                    } else if let Some(at) = status.expires {
                        // Not yet by the wall clock (it moved); look again then.
                        self.expire_at(user, at);
                    }
                }
                Timer::LiveExpiry(conv) => self.forget_live(conv, now),
                Timer::PurgeNext => self.purge_resume(),
                Timer::Sweep => {
                    self.sweep(now_millis(), None);
                    self.timers.push(Reverse((now + super::keeping::SWEEP_EVERY, Timer::Sweep)));
                }
                Timer::Touch => {
                    self.touch();
                    self.timers.push(Reverse((now + self.touch_every, Timer::Touch)));
                }
                Timer::Presence(user) => {
                    if let Some(state) = self.users.get_mut(&user) {
                        state.told_later = false;
                    }
                    self.presence_changed(user);
                }
            }
        }
    }

    /// A tab tells whether its person is using it; away shows once every tab is idle.
    pub(super) fn set_idle(&mut self, conn: ConnId, user: UserId, idle: bool) {
        if let Some(state) = self.conns.get_mut(&conn) {
            state.idle = idle;
        }
        self.presence_changed(user);
    }

    pub(super) async fn status_frame(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        dnd: bool,
        status: String,
        status_expires: Option<Millis>,
    ) -> Result<(), Refusal> {
        let text = status.trim().to_string();
        if text.chars().count() > MAX_STATUS_CHARS {
            return Err(Refusal::new(ErrorCode::BadRequest, format!("a status is at most {MAX_STATUS_CHARS} characters")));
        }
        let record = StatusRecord { dnd, text, expires: status_expires };
        self.set_status(user, record, ack_reply(conn, reference), false).await;
        Ok(())
    }
}
