//! Accounts: creating one (its first room membership with it).

use tokio::sync::oneshot;

use super::delivery::{Outcome, Reply, Target, Undo};
use super::{HubTask, UserState};
use crate::core::{DEFAULT_ROOM, HubError};
use crate::model::{ConvKind, UserId, now_millis};
use crate::protocol::{ErrorCode, Refusal, ServerFrame, User, user_info};
use crate::store::Change;
use crate::store::records::{StatusRecord, UserRecord};

impl HubTask {
    pub(super) async fn create_user(&mut self, mut record: UserRecord, reply: oneshot::Sender<Result<User, HubError>>) {
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
        self.users.insert(id, UserState::new(info.clone(), StatusRecord::default()));
        let mut changes = vec![Change::PutUser(id, record)];
        let mut deliveries = vec![(Target::Everyone, ServerFrame::User { user: info.clone() }.encode())];
        let mut undo = vec![Undo::RemoveUser(id)];
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
                    self.new_conversation(ConvKind::Room, DEFAULT_ROOM.into(), "Everyone in the office".into(), id, &[id]);
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
}
