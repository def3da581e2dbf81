//! Conversations and membership: rooms, private rooms, DMs and group DMs; joining, leaving,
//! inviting, topics, and how a conversation looks to one member.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use tokio::time::Instant;

use crate::protocol::Encoded;

use super::delivery::{Outcome, Reply, Target, Undo, ack_reply};
use super::{ConvState, HubTask, MemberState};
use crate::core::ConnId;
use crate::limits::Bucket;
use crate::model::{ConvId, ConvKind, Role, Seq, UserId, now_millis, valid_name};
use crate::protocol::Refusal;
use crate::protocol::{self, ErrorCode, Ref, ServerFrame};
use crate::store::Change;
use crate::store::records::{ConversationRecord, Keep, MemberRecord};

const MAX_TOPIC_CHARS: usize = 250;

impl HubTask {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_room(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        name: String,
        topic: String,
        private: bool,
        members: Vec<UserId>,
        announcements: bool,
    ) -> Result<(), Refusal> {
        let name = name.trim().to_string();
        if !valid_name(&name) {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "a room name is 1-32 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            ));
        }
        // Only public rooms must have unique names: checking private ones too would tell
        // anyone that a private room of that name exists.
        if !private && self.index.room(&name).is_some() {
            return Err(Refusal::new(ErrorCode::NameTaken, format!("a public room named {name} exists")));
        }
        let topic = topic.trim().to_string();
        if topic.chars().count() > MAX_TOPIC_CHARS {
            return Err(Refusal::new(ErrorCode::BadRequest, format!("a topic is at most {MAX_TOPIC_CHARS} characters")));
        }
        let mut everyone = vec![user];
        let mut seen = HashSet::from([user]);
        for member in members {
            if !self.users.contains_key(&member) {
                return Err(Refusal::new(ErrorCode::NotFound, format!("no user with id {member}")));
            }
            if seen.insert(member) {
                everyone.push(member);
            }
        }
        self.may_create(user)?;
        let kind = if private { ConvKind::Private } else { ConvKind::Room };
        let (id, changes, deliveries) = self.new_conversation(kind, name, topic, user, &everyone, announcements);
        let ack = ServerFrame::Ack { reference: reference.clone(), conv: Some(id), seq: None, client_id: None, ts: None };
        let outcome = Outcome::new(deliveries, Reply::Ack(conn, reference, ack.encode())).undo(Undo::RemoveConversation(id));
        self.persist(changes, outcome);
        Ok(())
    }

    pub(super) async fn open_dm(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        users: Vec<UserId>,
    ) -> Result<(), Refusal> {
        let mut everyone = vec![user];
        let mut seen = HashSet::from([user]);
        for other in users {
            if !self.users.contains_key(&other) {
                return Err(Refusal::new(ErrorCode::NotFound, format!("no user with id {other}")));
            }
            if seen.insert(other) {
                everyone.push(other);
            }
        }
        everyone.sort();
        let kind = if everyone.len() <= 2 { ConvKind::Dm } else { ConvKind::Group };
        // A group whose members left down to two is not the DM of those two.
        if let Some(id) = self.index.group(kind, &everyone) {
            // Through the writer queue, so the ack never overtakes the commit that made it.
            let ack = ServerFrame::Ack { reference: reference.clone(), conv: Some(id), seq: None, client_id: None, ts: None };
            self.persist(Vec::new(), Outcome::new(Vec::new(), Reply::Ack(conn, reference, ack.encode())));
            return Ok(());
        }
        self.may_create(user)?;
        let (id, changes, deliveries) = self.new_conversation(kind, String::new(), String::new(), user, &everyone, false);
        let ack = ServerFrame::Ack { reference: reference.clone(), conv: Some(id), seq: None, client_id: None, ts: None };
        let outcome = Outcome::new(deliveries, Reply::Ack(conn, reference, ack.encode())).undo(Undo::RemoveConversation(id));
        self.persist(changes, outcome);
        Ok(())
    }

    pub(super) async fn leave(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
    ) -> Result<(), Refusal> {
        let state = self.convs.get(&conv).filter(|c| c.members.contains_key(&user)).ok_or_else(Refusal::not_found)?;
        if state.record.kind == ConvKind::Dm {
            return Err(Refusal::new(ErrorCode::BadRequest, "a direct message cannot be left"));
        }
        self.drop_member(conn, reference, conv, user, None)
    }

    /// `remove_member`: the room's creator or an admin takes someone else out of a room they
    /// are in. The one removed is told by whom; so are the members who stay.
    pub(super) async fn remove_member(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        member: UserId,
    ) -> Result<(), Refusal> {
        let state = self.convs.get(&conv).filter(|c| c.members.contains_key(&user)).ok_or_else(Refusal::not_found)?;
        if !state.record.kind.is_room() {
            return Err(Refusal::new(ErrorCode::BadRequest, "only rooms have members to remove; a group is left by each member"));
        }
        if member == user {
            return Err(Refusal::new(ErrorCode::BadRequest, "to take yourself out of a room, leave it"));
        }
        let admin = self.users.get(&user).is_some_and(|u| u.info.role == Role::Admin);
        if state.record.created_by != user && !admin {
            return Err(Refusal::new(ErrorCode::Forbidden, "only the room's creator or an admin removes members"));
        }
        if !state.members.contains_key(&member) {
            return Err(Refusal::new(ErrorCode::NotFound, "no such member"));
        }
        tracing::info!(conv = conv.0, by = user.0, user = member.0, "member removed");
        self.drop_member(conn, reference, conv, member, Some(user))
    }

    /// Takes `user` out of `conv` (a member, checked by the caller), removed by `by` or leaving.
    fn drop_member(
        &mut self,
        conn: ConnId,
        reference: Option<Ref>,
        conv: ConvId,
        user: UserId,
        by: Option<UserId>,
    ) -> Result<(), Refusal> {
        let state = self.convs.get_mut(&conv).ok_or_else(Refusal::not_found)?;
        self.index.remove(conv, state);
        let member = state.members.remove(&user);
        self.index.add(conv, state);
        let Some(member) = member else { return Err(Refusal::not_found()) };
        let others: Vec<UserId> = state.members.keys().copied().collect();
        let deliveries = vec![
            (Target::Users(vec![user]), ServerFrame::ConversationLeft { conv, by }.encode()),
            (Target::Users(others), ServerFrame::MemberLeft { conv, user, by }.encode()),
        ];
        let outcome = Outcome::new(deliveries, ack_reply(conn, reference)).undo(Undo::RestoreMember {
            conv,
            user,
            before: member,
            wrote: None,
        });
        self.persist(vec![Change::DeleteMember(conv, user)], outcome);
        Ok(())
    }

    /// Creates a conversation in memory; returns its id, the changes to persist and the frames
    /// that announce it to its members.
    pub(super) fn new_conversation(
        &mut self,
        kind: ConvKind,
        name: String,
        topic: String,
        creator: UserId,
        members: &[UserId],
        announcements: bool,
    ) -> (ConvId, Vec<Change>, Vec<(Target, Encoded)>) {
        let id = ConvId(self.next_conv);
        self.next_conv += 1;
        let now = now_millis();
        let record = ConversationRecord {
            kind,
            name,
            topic,
            created_by: creator,
            created: now,
            keep: Keep::Forever,
            keep_set_by: None,
            choices: Vec::new(),
            announcements,
        };
        let mut changes = vec![Change::PutConversation(id, record.clone())];
        let mut state =
            ConvState { record, members: BTreeMap::new(), last_seq: Seq(0), committed_seq: Seq(0), live: VecDeque::new() };
        for member in members {
            state.members.insert(*member, MemberState { read_seq: Seq(0), joined: now, unread: 0, mentions: 0 });
            changes.push(Change::PutMember(id, *member, MemberRecord { joined: now, read_seq: 0 }));
        }
        self.index.add(id, &state);
        self.convs.insert(id, state);
        let deliveries = members
            .iter()
            .map(|m| {
                (Target::Users(vec![*m]), ServerFrame::Conversation { conversation: self.conversation_for(id, *m) }.encode())
            })
            .collect();
        tracing::info!(conv = id.0, ?kind, members = members.len(), "conversation created");
        (id, changes, deliveries)
    }

    /// Adds a member in memory; returns the changes and the frames announcing it.
    pub(super) fn member_added(&mut self, conv: ConvId, user: UserId) -> (Vec<Change>, Vec<(Target, Encoded)>) {
        let Some(state) = self.convs.get_mut(&conv) else { return (Vec::new(), Vec::new()) };
        let now = now_millis();
        // A newcomer starts with everything before them read.
        let read_seq = state.last_seq;
        self.index.remove(conv, state);
        state.members.insert(user, MemberState { read_seq, joined: now, unread: 0, mentions: 0 });
        self.index.add(conv, state);
        let others: Vec<UserId> = state.members.keys().copied().filter(|m| *m != user).collect();
        let changes = vec![Change::PutMember(conv, user, MemberRecord { joined: now, read_seq: read_seq.0 })];
        let deliveries = vec![
            (Target::Users(vec![user]), ServerFrame::Conversation { conversation: self.conversation_for(conv, user) }.encode()),
            (Target::Users(others), ServerFrame::MemberJoined { conv, user }.encode()),
        ];
        (changes, deliveries)
    }

    pub(super) async fn add_member(&mut self, conv: ConvId, user: UserId, reply: Reply) {
        let (changes, deliveries) = self.member_added(conv, user);
        let mut outcome = Outcome::new(deliveries, reply);
        if let Some(joined) = self.convs.get(&conv).and_then(|c| c.members.get(&user)).map(|m| m.joined) {
            outcome = outcome.undo(Undo::RemoveMember { conv, user, joined });
        }
        self.persist(changes, outcome);
    }

    pub(super) fn conversation_for(&self, id: ConvId, user: UserId) -> protocol::Conversation {
        let state = &self.convs[&id];
        let member = state.members.get(&user);
        protocol::Conversation {
            id,
            kind: state.record.kind,
            name: state.record.name.clone(),
            topic: state.record.topic.clone(),
            members: state.members.keys().copied().collect(),
            last_seq: state.committed_seq,
            read_seq: member.map_or(Seq(0), |m| m.read_seq),
            unread: member.map_or(0, |m| m.unread),
            mentions: member.map_or(0, |m| m.mentions),
            recorded: self.kept(id).recorded(),
            records: self.records_of(id),
            created_by: state.record.created_by,
            announcements: state.record.announcements,
        }
    }

    /// Takes one from the person's budget of new conversations (`RateLimits::conversations`):
    /// one account made 7,859 rooms a second with colleagues in them, and each colleague's next
    /// `hello` listed all of them.
    fn may_create(&mut self, user: UserId) -> Result<(), Refusal> {
        let now = Instant::now();
        let rate = self.limits.conversations;
        let bucket = self.created.entry(user).or_insert_with(|| Bucket::new(rate, now));
        bucket.take(1.0, now).map_err(|wait| {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            tracing::info!(user = user.0, "refused a new conversation: over the creation limit");
            Refusal::new(
                ErrorCode::RateLimited,
                format!("you have created many conversations lately; try again in {minutes} min"),
            )
            .retry_after(wait)
        })
    }

    pub(super) async fn join(&mut self, conn: ConnId, user: UserId, reference: Option<Ref>, conv: ConvId) -> Result<(), Refusal> {
        let state = self.convs.get(&conv).ok_or_else(Refusal::not_found)?;
        if state.record.kind != ConvKind::Room {
            return Err(Refusal::not_found());
        }
        if state.members.contains_key(&user) {
            self.persist(Vec::new(), Outcome::new(Vec::new(), ack_reply(conn, reference)));
            return Ok(());
        }
        self.add_member(conv, user, ack_reply(conn, reference)).await;
        Ok(())
    }

    pub(super) async fn invite(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        invitee: UserId,
    ) -> Result<(), Refusal> {
        let state = self.convs.get(&conv).filter(|c| c.members.contains_key(&user)).ok_or_else(Refusal::not_found)?;
        if !state.record.kind.is_room() {
            return Err(Refusal::new(ErrorCode::BadRequest, "only rooms take invitations; open a new group DM instead"));
        }
        if !self.users.contains_key(&invitee) {
            return Err(Refusal::new(ErrorCode::NotFound, "no such user"));
        }
        if state.members.contains_key(&invitee) {
            self.persist(Vec::new(), Outcome::new(Vec::new(), ack_reply(conn, reference)));
            return Ok(());
        }
        self.add_member(conv, invitee, ack_reply(conn, reference)).await;
        Ok(())
    }

    pub(super) async fn set_topic(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        topic: String,
    ) -> Result<(), Refusal> {
        let members = self.members_of(conv, user)?;
        let topic = topic.trim().to_string();
        if topic.chars().count() > MAX_TOPIC_CHARS {
            return Err(Refusal::new(ErrorCode::BadRequest, format!("a topic is at most {MAX_TOPIC_CHARS} characters")));
        }
        let Some(state) = self.convs.get_mut(&conv) else { return Err(Refusal::not_found()) };
        if !state.record.kind.is_room() {
            return Err(Refusal::new(ErrorCode::BadRequest, "only rooms have a topic"));
        }
        let before = state.record.clone();
        state.record.topic = topic.clone();
        let change = Change::PutConversation(conv, state.record.clone());
        let frame = ServerFrame::Topic { conv, topic, user }.encode();
        let outcome = Outcome::new(vec![(Target::Users(members), frame)], ack_reply(conn, reference)).undo(Undo::RestoreRecord {
            conv,
            before,
            wrote: state.record.clone(),
        });
        self.persist(vec![change], outcome);
        Ok(())
    }
}

/// Finds a conversation by what names it, without a scan of every conversation: public rooms
/// by name (unique), DMs and groups by their members (the lowest id first, as they were
/// created). Kept true wherever members or conversations come and go.
#[derive(Default)]
pub(super) struct ConvIndex {
    rooms: HashMap<String, ConvId>,
    groups: HashMap<(ConvKind, Vec<UserId>), BTreeSet<ConvId>>,
}

impl ConvIndex {
    fn group_key(state: &ConvState) -> Option<(ConvKind, Vec<UserId>)> {
        matches!(state.record.kind, ConvKind::Dm | ConvKind::Group)
            .then(|| (state.record.kind, state.members.keys().copied().collect()))
    }

    pub(super) fn add(&mut self, id: ConvId, state: &ConvState) {
        if state.record.kind == ConvKind::Room {
            self.rooms.entry(state.record.name.clone()).or_insert(id);
        }
        if let Some(key) = Self::group_key(state) {
            self.groups.entry(key).or_default().insert(id);
        }
    }

    pub(super) fn remove(&mut self, id: ConvId, state: &ConvState) {
        if state.record.kind == ConvKind::Room && self.rooms.get(&state.record.name) == Some(&id) {
            self.rooms.remove(&state.record.name);
        }
        if let Some(key) = Self::group_key(state)
            && let Some(ids) = self.groups.get_mut(&key)
        {
            ids.remove(&id);
            if ids.is_empty() {
                self.groups.remove(&key);
            }
        }
    }

    pub(super) fn room(&self, name: &str) -> Option<ConvId> {
        self.rooms.get(name).copied()
    }

    /// The DM or group of exactly these people (`members` sorted).
    pub(super) fn group(&self, kind: ConvKind, members: &[UserId]) -> Option<ConvId> {
        self.groups.get(&(kind, members.to_vec())).and_then(|ids| ids.first().copied())
    }
}
