//! Every frame and REST body of the wire protocol as serde types: the single source of the
//! wire format that `docs/protocol.md` documents. Version 1.

use serde::{Deserialize, Serialize};

use crate::model::{ConvId, ConvKind, Millis, Role, Seq, UserId};

pub const PROTOCOL_VERSION: u32 = 1;

/// A client's tag for a request, echoed in the one `ack` or `error` that answers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ref {
    Num(i64),
    Str(String),
}

// ---- objects ----

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub display_name: String,
    pub role: Role,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Online,
    Away,
    Dnd,
    Offline,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Presence {
    pub user: UserId,
    pub state: PresenceState,
    pub status: String,
    pub status_expires: Option<Millis>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConvId,
    pub kind: ConvKind,
    pub name: String,
    pub topic: String,
    pub members: Vec<UserId>,
    pub last_seq: Seq,
    pub read_seq: Seq,
    pub unread: u32,
    pub mentions: u32,
    pub recorded: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Message {
    pub conv: ConvId,
    pub seq: Seq,
    pub rev: Seq,
    pub author: UserId,
    pub text: String,
    pub ts: Millis,
    pub edited_ts: Option<Millis>,
    pub deleted: bool,
    pub mentions: Vec<UserId>,
    pub client_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Limits {
    pub max_frame: usize,
}

// ---- WebSocket: server -> client ----

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Hello {
        protocol: u32,
        me: User,
        users: Vec<User>,
        presence: Vec<Presence>,
        conversations: Vec<Conversation>,
        limits: Limits,
    },
    Ack {
        #[serde(rename = "ref")]
        reference: Option<Ref>,
        #[serde(skip_serializing_if = "Option::is_none")]
        conv: Option<ConvId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<Seq>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<Millis>,
    },
    Error {
        #[serde(rename = "ref")]
        reference: Option<Ref>,
        code: ErrorCode,
        message: String,
    },
    Message {
        message: Message,
    },
    MessageUpdated {
        message: Message,
    },
    Typing {
        conv: ConvId,
        user: UserId,
    },
    Read {
        conv: ConvId,
        seq: Seq,
    },
    Presence {
        presence: Presence,
    },
    Conversation {
        conversation: Conversation,
    },
    ConversationLeft {
        conv: ConvId,
    },
    MemberJoined {
        conv: ConvId,
        user: UserId,
    },
    MemberLeft {
        conv: ConvId,
        user: UserId,
    },
    Topic {
        conv: ConvId,
        topic: String,
        user: UserId,
    },
    User {
        user: User,
    },
    Pong,
}

impl ServerFrame {
    pub fn ack(reference: Option<Ref>) -> ServerFrame {
        ServerFrame::Ack { reference, conv: None, seq: None, client_id: None, ts: None }
    }

    pub fn error(reference: Option<Ref>, code: ErrorCode, message: impl Into<String>) -> ServerFrame {
        ServerFrame::Error { reference, code, message: message.into() }
    }

    /// Serialized once; the same bytes then go to every recipient.
    pub fn encode(&self) -> axum::extract::ws::Utf8Bytes {
        // Our own frame types always serialize.
        serde_json::to_string(self).unwrap_or_default().into()
    }
}

// ---- WebSocket: client -> server ----

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Send {
        conv: ConvId,
        text: String,
        #[serde(default)]
        client_id: Option<String>,
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
    SetTopic {
        conv: ConvId,
        topic: String,
    },
    Ping,
}

/// Why a client frame could not be understood.
#[derive(Debug)]
pub struct FrameError {
    pub reference: Option<Ref>,
    pub code: ErrorCode,
    pub message: String,
}

/// Parses one text frame. `ref` is read first so even a frame with bad fields is answered
/// under the caller's ref.
pub fn parse_client_frame(text: &str) -> Result<(Option<Ref>, ClientFrame), FrameError> {
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| FrameError {
        reference: None,
        code: ErrorCode::BadJson,
        message: format!("not valid JSON: {e}"),
    })?;
    let Some(object) = value.as_object_mut() else {
        return Err(FrameError { reference: None, code: ErrorCode::BadRequest, message: "a frame must be a JSON object".into() });
    };
    let reference = match object.remove("ref") {
        None | Some(serde_json::Value::Null) => None,
        Some(r) => Some(serde_json::from_value::<Ref>(r).map_err(|_| FrameError {
            reference: None,
            code: ErrorCode::BadRequest,
            message: "`ref` must be a string or an integer".into(),
        })?),
    };
    let fail = |code, message: String| FrameError { reference: reference.clone(), code, message };
    match object.get("type") {
        Some(serde_json::Value::String(_)) => {}
        Some(_) => return Err(fail(ErrorCode::BadRequest, "`type` must be a string".into())),
        None => return Err(fail(ErrorCode::BadRequest, "missing field `type`".into())),
    }
    let frame = serde_json::from_value::<ClientFrame>(value).map_err(|e| {
        let message = e.to_string();
        // serde names an unknown tag "unknown variant"; everything else is a field problem.
        if message.starts_with("unknown variant") {
            fail(ErrorCode::UnknownType, message)
        } else {
            fail(ErrorCode::BadRequest, message)
        }
    })?;
    Ok((reference, frame))
}

// ---- errors ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    BadRequest,
    TooLarge,
    Unauthorized,
    BadCredentials,
    TooManyAttempts,
    Forbidden,
    BadOrigin,
    NotFound,
    NameTaken,
    SetupDone,
    BadToken,
    Storage,
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_told_apart_by_what_is_wrong_with_them() {
        assert_eq!(parse_client_frame("{nope").unwrap_err().code, ErrorCode::BadJson);
        let unknown = parse_client_frame(r#"{"type":"fly","ref":"r1"}"#).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::UnknownType);
        assert_eq!(unknown.reference, Some(Ref::Str("r1".into())));
        assert_eq!(parse_client_frame(r#"{"type":"send","ref":2}"#).unwrap_err().code, ErrorCode::BadRequest);
        let (reference, frame) = parse_client_frame(r#"{"type":"send","ref":2,"conv":1,"text":"hi"}"#).unwrap();
        assert_eq!(reference, Some(Ref::Num(2)));
        assert!(matches!(frame, ClientFrame::Send { conv: ConvId(1), .. }));
    }
}
