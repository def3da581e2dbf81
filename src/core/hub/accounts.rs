//! Accounts: creating one (its first room membership with it), changing one (disable,
//! enable, role, password) with the rule that the last admin stays, the admins' list, and
//! when each person was last seen, noted coarsely so that tabs cost no disk write each.

use std::time::Duration;

use tokio::sync::oneshot;

use super::delivery::{Outcome, Reply, Target, Undo};
use super::{HubTask, UserState};
use crate::core::{Account, AccountChange, By, CloseReason, ConnId, DEFAULT_ROOM, EndSessions, HubError};
use crate::model::{ConvKind, Role, UserId, now_millis};
use crate::protocol::{ErrorCode, Refusal, ServerFrame, User, user_info};
use crate::store::Change;
use crate::store::records::{StatusRecord, UserRecord};

/// "Last seen" is written to the file at most this often per person: it is for an admin
/// telling a leaver from a colleague on holiday, not for presence.
pub(super) const TOUCH_EVERY: Duration = Duration::from_secs(3600);

impl HubTask {
    pub(super) async fn create_user(&mut self, record: UserRecord, reply: oneshot::Sender<Result<User, HubError>>) {
        self.create_account(record, reply, Vec::new(), Vec::new());
    }

    /// Creates an account (joining #general) with `also` in the same commit (a sign-up's
    /// use of its invite) and `also_undo` to take it back if that commit fails.
    pub(super) fn create_account(
        &mut self,
        mut record: UserRecord,
        reply: oneshot::Sender<Result<User, HubError>>,
        also: Vec<Change>,
        also_undo: Vec<Undo>,
    ) {
        if self.user_names.contains_key(&record.name) {
            let _ = reply.send(Err(HubError::Refused(Refusal::new(
                ErrorCode::NameTaken,
                format!("an account named {} exists", record.name),
            ))));
            return;
        }
        let id = UserId(self.next_user);
        self.next_user += 1;
        record.created = now_millis();
        let info = user_info(id, &record);
        self.user_names.insert(record.name.clone(), id);
        self.users.insert(id, UserState::new(id, record.clone(), StatusRecord::default()));
        let mut changes = vec![Change::PutUser(id, record)];
        let mut deliveries = vec![(Target::Everyone, ServerFrame::User { user: info.clone() }.encode())];
        changes.extend(also);
        let mut undo = vec![Undo::RemoveUser(id)];
        undo.extend(also_undo);
        let general = self.index.room(DEFAULT_ROOM);
        match general {
            Some(conv) => {
                let (more_changes, more_deliveries) = self.member_added(conv, id);
                changes.extend(more_changes);
                deliveries.extend(more_deliveries);
                if let Some(joined) = self.convs.get(&conv).and_then(|c| c.members.get(&id)).map(|m| m.joined) {
                    undo.push(Undo::RemoveMember { conv, user: id, joined });
                }
            }
            None if self.convs.is_empty() => {
                let (conv, more_changes, more_deliveries) =
                    self.new_conversation(ConvKind::Room, DEFAULT_ROOM.into(), "Everyone in the office".into(), id, &[id], false);
                changes.extend(more_changes);
                deliveries.extend(more_deliveries);
                undo.push(Undo::RemoveConversation(conv));
            }
            None => {}
        }
        tracing::info!(user = id.0, "account created");
        let mut outcome = Outcome::new(deliveries, Reply::User(reply, info));
        outcome.undo = undo;
        self.persist(changes, outcome);
    }

    /// Changes an account. Memory changes at once (a tab of a disabled account that connects
    /// meanwhile is refused), its tabs close at once, and the answer waits for the commit.
    pub(super) fn change_account(
        &mut self,
        by: By,
        user: UserId,
        change: AccountChange,
        reply: oneshot::Sender<Result<User, HubError>>,
    ) {
        let (before, after) = match self.checked_change(by, user, &change) {
            Ok(records) => records,
            Err(refusal) => {
                let _ = reply.send(Err(HubError::Refused(refusal)));
                return;
            }
        };
        let Some(state) = self.users.get_mut(&user) else { return };
        state.account = after.clone();
        state.info = user_info(user, &after);
        let info = state.info.clone();
        let mut changes = vec![Change::PutUser(user, after.clone())];
        let mut deliveries = Vec::new();
        let (what, closing) = match &change {
            AccountChange::Disable => ("disabled", Some((None, CloseReason::Disabled))),
            AccountChange::Enable => ("enabled", None),
            AccountChange::Role(_) => ("role changed", None),
            AccountChange::Password { keep, .. } => ("password changed", Some((*keep, CloseReason::SignedOut))),
        };
        if let Some((keep, reason)) = closing {
            changes.push(Change::DeleteUserSessions { user, except: keep });
            let closed: Vec<ConnId> =
                self.conns.iter().filter(|(_, c)| c.user == user && Some(c.session) != keep).map(|(id, _)| *id).collect();
            for conn in closed {
                self.drop_conn(conn, reason);
            }
        }
        if before.role != after.role || before.disabled != after.disabled {
            deliveries.push((Target::Everyone, ServerFrame::User { user: info.clone() }.encode()));
        }
        let by_user = match by {
            By::User(id) => id.0,
            By::Console => 0,
        };
        tracing::info!(user = user.0, by = by_user, role = ?after.role, "account {what}");
        let outcome =
            Outcome::new(deliveries, Reply::User(reply, info)).undo(Undo::RestoreAccount { user, before, wrote: after });
        self.persist(changes, outcome);
    }

    /// Whether `by` may make `change` to `user`'s account; the account before and after.
    fn checked_change(&self, by: By, user: UserId, change: &AccountChange) -> Result<(UserRecord, UserRecord), Refusal> {
        if let By::User(actor) = by {
            let own_password = actor == user && matches!(change, AccountChange::Password { .. });
            let admin = self.users.get(&actor).is_some_and(|u| u.info.role == Role::Admin && !u.account.disabled);
            if !admin && !own_password {
                return Err(Refusal::new(ErrorCode::Forbidden, "only admins change other people's accounts"));
            }
        }
        let state = self.users.get(&user).ok_or_else(|| Refusal::new(ErrorCode::NotFound, "no such account"))?;
        let before = state.account.clone();
        let mut after = before.clone();
        match change {
            AccountChange::Disable => after.disabled = true,
            AccountChange::Enable => after.disabled = false,
            AccountChange::Role(role) => after.role = *role,
            AccountChange::Password { hash, .. } => after.password_hash = hash.clone(),
        }
        let signs_in_as_admin = |r: &UserRecord| r.role == Role::Admin && !r.disabled;
        if signs_in_as_admin(&before) && !signs_in_as_admin(&after) {
            let admins = self.users.values().filter(|u| signs_in_as_admin(&u.account)).count();
            if admins <= 1 {
                return Err(Refusal::new(
                    ErrorCode::LastAdmin,
                    format!("{} is the only admin who can sign in: make another account an admin first", before.name),
                ));
            }
        }
        Ok((before, after))
    }

    /// Every account for the admins' list, by sign-in name.
    pub(super) fn accounts(&self) -> Vec<Account> {
        let now = now_millis();
        let mut list: Vec<Account> = self
            .users
            .iter()
            .map(|(id, u)| Account {
                id: *id,
                name: u.account.name.clone(),
                display_name: u.account.display_name.clone(),
                role: u.account.role,
                disabled: u.account.disabled,
                created: u.account.created,
                tabs: u.conns.len(),
                last_seen: if u.conns.is_empty() { u.seen.max(u.account.last_seen) } else { Some(now) },
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// A tab of `user` is open now: noted in memory, and in the file if it last was more than
    /// `TOUCH_EVERY` ago.
    pub(super) fn seen_now(&mut self, user: UserId) {
        let now = now_millis();
        let Some(state) = self.users.get_mut(&user) else { return };
        state.seen = Some(now);
        let stale = state.account.last_seen.is_none_or(|at| now.saturating_sub(at) >= TOUCH_EVERY.as_millis() as u64);
        if stale {
            state.account.last_seen = Some(now);
            let record = state.account.clone();
            // Nothing to undo if this is not saved: memory is only ahead by the time of day.
            self.persist(vec![Change::PutUser(user, record)], Outcome::new(Vec::new(), Reply::None));
        }
    }

    /// Hourly: whoever has tabs open is seen now, and so are the sessions of those tabs (a
    /// tab open for weeks makes no request that would note its session's use).
    pub(super) fn touch(&mut self) {
        let present: Vec<UserId> = self.users.iter().filter(|(_, u)| !u.conns.is_empty()).map(|(id, _)| *id).collect();
        for user in present {
            self.seen_now(user);
        }
        let mut sessions: Vec<[u8; 32]> = self.conns.values().map(|c| c.session).collect();
        sessions.sort_unstable();
        sessions.dedup();
        if !sessions.is_empty() {
            // The clock the session's idle limit is checked against.
            let at = self.clock.now();
            let changes = sessions.into_iter().map(|hash| Change::TouchSession { hash, at, address: None }).collect();
            self.persist(changes, Outcome::new(Vec::new(), Reply::None));
        }
    }

    /// Ends sessions of `user`: their tabs close at once, the answer waits for the commit.
    pub(super) fn end_sessions(&mut self, user: UserId, which: EndSessions, reply: oneshot::Sender<Result<(), HubError>>) {
        let (change, keep, only) = match which {
            EndSessions::One(hash) => (Change::DeleteSession(hash), None, Some(hash)),
            EndSessions::AllBut(hash) => (Change::DeleteUserSessions { user, except: Some(hash) }, Some(hash), None),
        };
        let ends = |session: &[u8; 32]| only.is_none_or(|one| *session == one) && keep.is_none_or(|kept| *session != kept);
        let closed: Vec<ConnId> =
            self.conns.iter().filter(|(_, c)| c.user == user && ends(&c.session)).map(|(id, _)| *id).collect();
        for conn in closed {
            self.drop_conn(conn, CloseReason::SignedOut);
        }
        self.persist(vec![change], Outcome::new(Vec::new(), Reply::Done(reply)));
    }
}
