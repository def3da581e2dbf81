//! Every frame and REST body of the wire protocol as serde types: the single source of the
//! wire format that `docs/protocol.md` documents. Version 1.

use serde::{Deserialize, Serialize};

mod client;
mod errors;
mod objects;
mod parse;
mod server;

pub use client::*;
pub use errors::{ErrorCode, Refusal};
pub use objects::*;
pub use parse::{FrameError, frame_ref, parse_client_frame};
pub use server::*;

pub const PROTOCOL_VERSION: u32 = 1;

/// A client's tag for a request, echoed in the one `ack` or `error` that answers it: a
/// string or any JSON number (`1.5` too), given back as it came.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ref {
    Num(serde_json::Number),
    Str(String),
}
