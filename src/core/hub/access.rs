//! The one door: who may see what. Every read of a conversation's content is decided here.

use super::HubTask;
use crate::core::RoomEntry;
use crate::core::access::Action;
use crate::core::records::Kept;
use crate::model::{ConvId, ConvKind, Role, Seq, UserId};
use crate::protocol::Refusal;

impl HubTask {
    /// The members of a conversation `user` belongs to; `not_found` otherwise, so that
    /// non-members cannot tell a private conversation from a missing one.
    pub(super) fn members_of(&self, conv: ConvId, user: UserId) -> Result<Vec<UserId>, Refusal> {
        match self.convs.get(&conv) {
            Some(state) if state.members.contains_key(&user) => Ok(state.members.keys().copied().collect()),
            _ => Err(Refusal::not_found()),
        }
    }

    /// The one rule of who may see what: whether `actor` may do `action` with `conv`, and if
    /// so its newest committed seq. Members read and search their conversations; a reviewer
    /// reads and searches archived ones; nobody else sees them at all.
    pub(super) fn may(&self, actor: UserId, conv: ConvId, action: Action) -> Option<Seq> {
        let state = self.convs.get(&conv)?;
        let allowed = match action {
            Action::History | Action::Search => state.members.contains_key(&actor),
            // Only what the policy archives, so a reviewer never reads a conversation its
            // members were told is kept for N days or until read.
            Action::Review => {
                self.users.get(&actor).is_some_and(|u| u.info.role == Role::Reviewer) && self.kept(conv) == Kept::Archive
            }
            // What is kept, for an admin's training transcript; never what was not recorded.
            Action::Transcript => {
                self.users.get(&actor).is_some_and(|u| u.info.role == Role::Admin) && self.kept(conv).recorded()
            }
        };
        allowed.then_some(state.committed_seq)
    }

    /// Every conversation `actor` may do `action` with.
    pub(super) fn all_they_may(&self, actor: UserId, action: Action) -> Vec<ConvId> {
        self.convs.keys().copied().filter(|conv| self.may(actor, *conv, action).is_some()).collect()
    }

    /// The public rooms, as the directory lists them to `user`.
    pub(super) fn directory(&self, user: UserId) -> Vec<RoomEntry> {
        let mut rooms: Vec<RoomEntry> = self
            .convs
            .iter()
            .filter(|(_, c)| c.record.kind == ConvKind::Room)
            .map(|(id, c)| RoomEntry {
                id: *id,
                name: c.record.name.clone(),
                topic: c.record.topic.clone(),
                member_count: c.members.len(),
                joined: c.members.contains_key(&user),
            })
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        rooms
    }
}
