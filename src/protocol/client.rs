//! Frames a client sends over the WebSocket (`ClientFrame`); `parse.rs` reads them.

use serde::Deserialize;

use crate::model::{ConvId, Millis, Seq, UserId};

use super::*;

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Send {
        conv: ConvId,
        text: String,
        #[serde(default)]
        client_id: Option<String>,
        /// Ids of files this person uploaded to the conversation and has not sent yet.
        #[serde(default)]
        attachments: Vec<u64>,
        #[serde(default)]
        reply_to: Option<Seq>,
    },
    Edit {
        conv: ConvId,
        seq: Seq,
        text: String,
    },
    Delete {
        conv: ConvId,
        seq: Seq,
    },
    /// Gives (`on: true`) or takes back one's reaction to a message.
    React {
        conv: ConvId,
        seq: Seq,
        emoji: String,
        on: bool,
    },
    Typing {
        conv: ConvId,
    },
    Read {
        conv: ConvId,
        seq: Seq,
    },
    Presence {
        idle: bool,
    },
    SetStatus {
        dnd: bool,
        #[serde(default)]
        status: String,
        #[serde(default)]
        status_expires: Option<Millis>,
    },
    CreateRoom {
        name: String,
        #[serde(default)]
        topic: String,
        #[serde(default)]
        private: bool,
        #[serde(default)]
        members: Vec<UserId>,
        /// An announcements room (admins only).
        #[serde(default)]
        announcements: bool,
    },
    OpenDm {
        users: Vec<UserId>,
    },
    Join {
        conv: ConvId,
    },
    Leave {
        conv: ConvId,
    },
    Invite {
        conv: ConvId,
        user: UserId,
    },
    RemoveMember {
        conv: ConvId,
        user: UserId,
    },
    SetTopic {
        conv: ConvId,
        topic: String,
    },
    SetRecords {
        conv: ConvId,
        keep: KeepKind,
        #[serde(default)]
        days: Option<u32>,
    },
    /// Makes a room an announcements room, or an ordinary one again.
    SetAnnouncements {
        conv: ConvId,
        announcements: bool,
    },
    /// "Got it" on the announcement at `seq`.
    Acknowledge {
        conv: ConvId,
        seq: Seq,
    },
    /// Who has acknowledged: the announcement at `seq`, or every one acknowledged so far.
    Acknowledgements {
        conv: ConvId,
        #[serde(default)]
        seq: Option<Seq>,
    },
    Ping,
}

impl ClientFrame {
    /// The frame's `type`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Send { .. } => "send",
            ClientFrame::Edit { .. } => "edit",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::React { .. } => "react",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Presence { .. } => "presence",
            ClientFrame::SetStatus { .. } => "set_status",
            ClientFrame::CreateRoom { .. } => "create_room",
            ClientFrame::OpenDm { .. } => "open_dm",
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Invite { .. } => "invite",
            ClientFrame::RemoveMember { .. } => "remove_member",
            ClientFrame::SetTopic { .. } => "set_topic",
            ClientFrame::SetRecords { .. } => "set_records",
            ClientFrame::SetAnnouncements { .. } => "set_announcements",
            ClientFrame::Acknowledge { .. } => "acknowledge",
            ClientFrame::Acknowledgements { .. } => "acknowledgements",
            ClientFrame::Ping => "ping",
        }
    }
}
