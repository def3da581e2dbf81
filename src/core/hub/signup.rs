//! Sign-up without an admin: the mode (admin-created only, invite links, open on the office
//! network), the invite links (expiry, uses, role) and signing up through one. An invite's
//! use is taken in memory at once and written in the new account's own commit, so two
//! people racing for the last use cannot both win, and a failed commit gives it back.

use tokio::sync::oneshot;

use super::HubTask;
use super::delivery::{Outcome, Reply, Undo};
use crate::core::{HubError, InviteInfo, SignupMode, SignupWith};
use crate::model::{Role, UserId};
use crate::protocol::{ErrorCode, Refusal, User};
use crate::store::Change;
use crate::store::records::{InviteRecord, UserRecord};

/// The `meta` key of the sign-up mode.
pub(super) const SIGNUP_KEY: &str = "signup_mode";

/// An invite's id on the wire: the first 8 bytes of its token's hash, in hex.
pub(crate) fn invite_id(hash: &[u8; 32]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn info(hash: &[u8; 32], record: &InviteRecord) -> InviteInfo {
    InviteInfo {
        id: invite_id(hash),
        role: record.role,
        uses: record.uses,
        max_uses: record.max_uses,
        created: record.created,
        expires: record.expires,
        created_by: record.created_by,
    }
}

impl HubTask {
    pub(super) fn admin(&self, user: UserId) -> Result<(), Refusal> {
        match self.users.get(&user) {
            Some(u) if u.info.role == Role::Admin && !u.account.disabled => Ok(()),
            _ => Err(Refusal::new(ErrorCode::Forbidden, "only admins may do this")),
        }
    }

    /// Invite links, newest first (used-up and expired ones too, until revoked).
    pub(super) fn invite_list(&self) -> Vec<InviteInfo> {
        let mut list: Vec<InviteInfo> = self.invites.iter().map(|(hash, record)| info(hash, record)).collect();
        list.sort_by_key(|i| std::cmp::Reverse(i.created));
        list
    }

    pub(super) fn set_signup(&mut self, by: UserId, mode: SignupMode, reply: oneshot::Sender<Result<(), HubError>>) {
        if let Err(refusal) = self.admin(by) {
            let _ = reply.send(Err(HubError::Refused(refusal)));
            return;
        }
        // Not undone on a failed commit: the admin is told it failed and sets it again.
        self.signup = mode;
        tracing::info!(by = by.0, mode = mode.as_str(), "sign-up mode set");
        let change = Change::PutMeta(SIGNUP_KEY, mode.as_str().as_bytes().to_vec());
        self.persist(vec![change], Outcome::new(Vec::new(), Reply::Done(reply)));
    }

    pub(super) fn create_invite(
        &mut self,
        by: UserId,
        hash: [u8; 32],
        record: InviteRecord,
        reply: oneshot::Sender<Result<InviteInfo, HubError>>,
    ) {
        let refused = self.admin(by).err().or_else(|| {
            (self.signup == SignupMode::Admin).then(|| {
                Refusal::new(ErrorCode::BadRequest, "sign-up is for accounts admins create only: allow invite links first")
            })
        });
        if let Some(refusal) = refused {
            let _ = reply.send(Err(HubError::Refused(refusal)));
            return;
        }
        let shown = info(&hash, &record);
        self.invites.insert(hash, record.clone());
        tracing::info!(by = by.0, invite = shown.id, uses = record.max_uses, "invite link made");
        let (done, answer) = oneshot::channel();
        let undo = Undo::RestoreInvite { hash, before: None };
        self.persist(vec![Change::PutInvite(hash, record)], Outcome::new(Vec::new(), Reply::Done(done)).undo(undo));
        tokio::spawn(async move {
            let result = answer.await.unwrap_or(Err(HubError::Gone)).map(|()| shown);
            let _ = reply.send(result);
        });
    }

    pub(super) fn revoke_invite(&mut self, by: UserId, id: String, reply: oneshot::Sender<Result<(), HubError>>) {
        if let Err(refusal) = self.admin(by) {
            let _ = reply.send(Err(HubError::Refused(refusal)));
            return;
        }
        let Some(hash) = self.invites.keys().find(|hash| invite_id(hash) == id).copied() else {
            let _ = reply.send(Err(HubError::Refused(Refusal::new(ErrorCode::NotFound, "no such invite link"))));
            return;
        };
        let before = self.invites.remove(&hash);
        tracing::info!(by = by.0, invite = id, "invite link revoked");
        let undo = Undo::RestoreInvite { hash, before };
        self.persist(vec![Change::DeleteInvite(hash)], Outcome::new(Vec::new(), Reply::Done(reply)).undo(undo));
    }

    /// The role a sign-up `with` would get now, and the invite it would use; or why not.
    pub(super) fn may_sign_up(&self, with: SignupWith) -> Result<(Role, Option<&InviteRecord>), Refusal> {
        let closed = || Refusal::new(ErrorCode::Forbidden, "this server does not take sign-ups: ask an admin for an account");
        match with {
            _ if self.signup == SignupMode::Admin => Err(closed()),
            SignupWith::Invite(hash) => {
                let bad =
                    |why: &str| Refusal::new(ErrorCode::BadToken, format!("this invite link {why}; ask an admin for a new one"));
                let invite = self.invites.get(&hash).ok_or_else(|| bad("is not valid (it may have been revoked)"))?;
                if self.clock.now() >= invite.expires {
                    return Err(bad("has expired"));
                }
                if invite.uses >= invite.max_uses {
                    return Err(bad("has been used as often as it may"));
                }
                Ok((invite.role, Some(invite)))
            }
            SignupWith::Open { .. } if self.signup != SignupMode::Open => Err(closed()),
            SignupWith::Open { lan: false } => Err(Refusal::new(
                ErrorCode::Forbidden,
                "open sign-up is for the office network only: ask an admin for an invite link",
            )),
            SignupWith::Open { lan: true } => Ok((Role::Member, None)),
        }
    }

    pub(super) fn sign_up(&mut self, with: SignupWith, mut record: UserRecord, reply: oneshot::Sender<Result<User, HubError>>) {
        let (role, invite) = match self.may_sign_up(with) {
            Ok((role, invite)) => (role, invite.cloned()),
            Err(refusal) => {
                let _ = reply.send(Err(HubError::Refused(refusal)));
                return;
            }
        };
        if self.user_names.contains_key(&record.name) {
            let refusal =
                Refusal::new(ErrorCode::NameTaken, format!("an account named {} exists: choose another name", record.name));
            let _ = reply.send(Err(HubError::Refused(refusal)));
            return;
        }
        record.role = role;
        let (mut also, mut undo) = (Vec::new(), Vec::new());
        if let (SignupWith::Invite(hash), Some(before)) = (with, invite) {
            let used = InviteRecord { uses: before.uses + 1, ..before.clone() };
            self.invites.insert(hash, used.clone());
            tracing::info!(invite = invite_id(&hash), uses = used.uses, "invite link used");
            also.push(Change::PutInvite(hash, used));
            undo.push(Undo::RestoreInvite { hash, before: Some(before) });
        }
        self.create_account(record, reply, also, undo);
    }
}
