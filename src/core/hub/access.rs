//! The one door: who may see what. Every read of a conversation's content is decided here.

use super::{HubTask, Refusal, not_found};
use crate::core::RoomEntry;
use crate::model::{ConvId, ConvKind, Seq, UserId};

impl HubTask {
    /// The members of a conversation `user` belongs to; `not_found` otherwise, so that
    /// non-members cannot tell a private conversation from a missing one.
    pub(super) fn members_of(&self, conv: ConvId, user: UserId) -> Result<Vec<UserId>, Refusal> {
        match self.convs.get(&conv) {
            Some(state) if state.members.contains_key(&user) => Ok(state.members.keys().copied().collect()),
            _ => Err(not_found()),
        }
    }

    /// The conversation's newest committed seq if `user` may read it (is a member).
    pub(super) fn readable(&self, user: UserId, conv: ConvId) -> Option<Seq> {
        self.convs.get(&conv).filter(|c| c.members.contains_key(&user)).map(|c| c.committed_seq)
    }

    /// Every conversation `user` is a member of: what their search covers.
    pub(super) fn memberships(&self, user: UserId) -> Vec<ConvId> {
        self.convs.iter().filter(|(_, c)| c.members.contains_key(&user)).map(|(id, _)| *id).collect()
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
