//! What is kept: the server's policy (`--records`), set by the operator, bounds what each
//! conversation chooses (`Keep`). A room has one choice, made by its creator or an admin; a
//! DM or group keeps the least of its members' choices, so it is never recorded more than
//! anyone in it agreed to. The core asks `Policy::kept` before anything reaches the disk.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

use crate::model::{ConvKind, Role, UserId};
use crate::protocol::{ErrorCode, KeepKind, Refusal};
use crate::store::records::{ConversationRecord, Keep};

/// The most days a conversation may choose (a hundred years: longer is `forever`).
pub const MAX_DAYS: u32 = 36_500;

/// The operator's rule for the whole server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Nothing is ever written to disk.
    Off,
    /// Each conversation chooses (the default).
    Keep,
    /// Each conversation keeps at most this many days.
    Retain(u32),
    /// Everything is kept for a reviewer, and nobody can turn that off.
    Archive,
}

/// What a conversation keeps, in effect now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    Nothing,
    /// Until every member it was sent to has read it, and at most these days.
    UntilRead(Option<u32>),
    Days(u32),
    Forever,
    Archive,
}

impl Kept {
    /// Whether its messages are written to the data file at all.
    pub fn recorded(self) -> bool {
        self != Kept::Nothing
    }

    /// Its name on the wire.
    pub fn wire(self) -> (KeepKind, Option<u32>) {
        match self {
            Kept::Nothing => (KeepKind::Nothing, None),
            Kept::UntilRead(days) => (KeepKind::UntilRead, days),
            Kept::Days(days) => (KeepKind::Days, Some(days)),
            Kept::Forever => (KeepKind::Forever, None),
            Kept::Archive => (KeepKind::Archive, None),
        }
    }
}

impl Policy {
    /// What a conversation that chose `chosen` keeps under this policy.
    pub fn kept(self, chosen: Keep) -> Kept {
        match (self, chosen) {
            (Policy::Off, _) => Kept::Nothing,
            (Policy::Archive, _) => Kept::Archive,
            (_, Keep::Nothing) => Kept::Nothing,
            (Policy::Keep, Keep::UntilRead) => Kept::UntilRead(None),
            (Policy::Keep, Keep::Days(days)) => Kept::Days(days),
            (Policy::Keep, Keep::Forever) => Kept::Forever,
            (Policy::Retain(limit), Keep::UntilRead) => Kept::UntilRead(Some(limit)),
            (Policy::Retain(limit), Keep::Days(days)) => Kept::Days(days.min(limit)),
            (Policy::Retain(limit), Keep::Forever) => Kept::Days(limit),
        }
    }

    /// What a new conversation keeps.
    pub fn default_kept(self) -> Kept {
        self.kept(Keep::Forever)
    }

    /// Whether anyone may choose `wanted` under this policy; the refusal says why not.
    pub fn allows(self, wanted: Keep) -> Result<(), Refusal> {
        match (self, wanted) {
            (Policy::Archive, _) => Err(Refusal::new(
                ErrorCode::Forbidden,
                "this server archives every conversation for compliance review; what is kept cannot be changed",
            )),
            (Policy::Off, _) => {
                Err(Refusal::new(ErrorCode::Forbidden, "this server keeps no records at all; nothing can be recorded"))
            }
            (_, Keep::Days(0)) => Err(Refusal::new(ErrorCode::BadRequest, "keep at least 1 day (or choose nothing)")),
            (_, Keep::Days(days)) if days > MAX_DAYS => {
                Err(Refusal::new(ErrorCode::BadRequest, format!("keep at most {MAX_DAYS} days (or choose forever)")))
            }
            (Policy::Retain(limit), Keep::Days(days)) if days > limit => Err(Refusal::new(
                ErrorCode::BadRequest,
                format!("this server keeps messages at most {limit} days; choose {limit} or fewer"),
            )),
            _ => Ok(()),
        }
    }

    /// The policy as `hello` and `GET /api/session` show it.
    pub fn to_json(self, buffer_seconds: u64) -> Value {
        let (policy, days) = match self {
            Policy::Off => ("off", None),
            Policy::Keep => ("keep", None),
            Policy::Retain(days) => ("retain", Some(days)),
            Policy::Archive => ("archive", None),
        };
        json!({ "policy": policy, "days": days, "buffer_seconds": buffer_seconds })
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        let bad = || format!("`{s}`: the records policy is off, keep, retain:DAYS (1 to {MAX_DAYS}) or archive");
        match s {
            "off" => Ok(Policy::Off),
            "keep" => Ok(Policy::Keep),
            "archive" => Ok(Policy::Archive),
            _ => {
                let days: u32 = s.strip_prefix("retain:").ok_or_else(bad)?.parse().map_err(|_| bad())?;
                if (1..=MAX_DAYS).contains(&days) { Ok(Policy::Retain(days)) } else { Err(bad()) }
            }
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Off => f.write_str("off"),
            Policy::Keep => f.write_str("keep"),
            Policy::Retain(days) => write!(f, "retain:{days}"),
            Policy::Archive => f.write_str("archive"),
        }
    }
}

/// Orders choices from keeping least to keeping most.
fn rank(keep: Keep) -> (u8, u32) {
    match keep {
        Keep::Nothing => (0, 0),
        Keep::UntilRead => (1, 0),
        Keep::Days(days) => (2, days),
        Keep::Forever => (3, 0),
    }
}

/// What `record` chose: a room's own choice, or the least of its `members`' choices in a DM
/// or group (a member who never chose counts as `Forever`).
pub fn chosen(record: &ConversationRecord, members: impl IntoIterator<Item = UserId>) -> Keep {
    if record.kind.is_room() {
        return record.keep;
    }
    members
        .into_iter()
        .map(|member| record.choices.iter().find(|(who, _)| *who == member).map_or(Keep::Forever, |(_, keep)| *keep))
        .min_by_key(|keep| rank(*keep))
        .unwrap_or(Keep::Forever)
}

/// Whether `user` may change what `record` keeps: in a room its creator or an admin; in a DM
/// or group every member (their own choice).
pub fn may_set(record: &ConversationRecord, user: UserId, role: Role) -> bool {
    match record.kind {
        ConvKind::Room | ConvKind::Private => record.created_by == user || role == Role::Admin,
        ConvKind::Dm | ConvKind::Group => true,
    }
}

/// The words of a system line: "set this conversation to: kept for 7 days".
pub fn describe(keep: Keep) -> String {
    match keep {
        Keep::Nothing => "not recorded".into(),
        Keep::UntilRead => "kept until everyone has read it".into(),
        Keep::Days(1) => "kept for 1 day".into(),
        Keep::Days(days) => format!("kept for {days} days"),
        Keep::Forever => "kept".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(choices: Vec<(UserId, Keep)>) -> ConversationRecord {
        ConversationRecord {
            kind: ConvKind::Dm,
            name: String::new(),
            topic: String::new(),
            created_by: UserId(1),
            created: 0,
            keep: Keep::Forever,
            keep_set_by: None,
            choices,
            announcements: false,
        }
    }

    #[test]
    fn the_policy_bounds_every_choice() {
        assert_eq!(Policy::Off.kept(Keep::Forever), Kept::Nothing);
        assert_eq!(Policy::Archive.kept(Keep::Nothing), Kept::Archive, "archive cannot be turned off");
        assert_eq!(Policy::Retain(30).kept(Keep::Forever), Kept::Days(30));
        assert_eq!(Policy::Retain(30).kept(Keep::Days(90)), Kept::Days(30));
        assert_eq!(Policy::Retain(30).kept(Keep::Days(7)), Kept::Days(7));
        assert_eq!(Policy::Retain(30).kept(Keep::UntilRead), Kept::UntilRead(Some(30)));
        assert_eq!(Policy::Keep.kept(Keep::Nothing), Kept::Nothing);
        assert!(Policy::Archive.allows(Keep::Nothing).is_err());
        assert!(Policy::Off.allows(Keep::Forever).is_err());
        assert!(Policy::Retain(30).allows(Keep::Days(31)).is_err());
        assert!(Policy::Retain(30).allows(Keep::Forever).is_ok(), "forever means as long as the policy allows");
        assert!(Policy::Keep.allows(Keep::Days(0)).is_err());
    }

    #[test]
    fn a_dm_keeps_the_least_anyone_in_it_chose() {
        let (a, b) = (UserId(1), UserId(2));
        assert_eq!(chosen(&dm(vec![]), [a, b]), Keep::Forever);
        assert_eq!(chosen(&dm(vec![(a, Keep::Forever), (b, Keep::Nothing)]), [a, b]), Keep::Nothing);
        assert_eq!(chosen(&dm(vec![(a, Keep::Days(7)), (b, Keep::Days(30))]), [a, b]), Keep::Days(7));
        assert_eq!(chosen(&dm(vec![(a, Keep::Days(7)), (b, Keep::UntilRead)]), [a, b]), Keep::UntilRead);
        assert_eq!(chosen(&dm(vec![(a, Keep::Nothing)]), [b]), Keep::Forever, "only members' choices count");
    }

    #[test]
    fn policies_parse_and_print_the_same() {
        for text in ["off", "keep", "retain:30", "archive"] {
            assert_eq!(text.parse::<Policy>().unwrap().to_string(), text);
        }
        for bad in ["retain", "retain:0", "retain:x", "forever", ""] {
            assert!(bad.parse::<Policy>().is_err(), "{bad}");
        }
    }
}
