//! Reading a client's text frame: its `ref` first, so that even a frame with bad fields is
//! answered under the caller's ref, then the frame, with a refusal that says what is wrong.

use serde::Deserialize;

use super::{ClientFrame, ErrorCode, Ref, Refusal};

/// Why a client frame could not be understood, with the frame's `ref` when it had one.
#[derive(Debug)]
pub struct FrameError {
    pub reference: Option<Ref>,
    pub refusal: Refusal,
}

/// Parses one text frame. `ref` is read first so even a frame with bad fields is answered
/// under the caller's ref.
pub fn parse_client_frame(text: &str) -> Result<(Option<Ref>, ClientFrame), FrameError> {
    let mut value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| FrameError { reference: None, refusal: Refusal::new(ErrorCode::BadJson, format!("not valid JSON: {e}")) })?;
    let Some(object) = value.as_object_mut() else {
        return Err(FrameError {
            reference: None,
            refusal: Refusal::new(ErrorCode::BadRequest, "a frame must be a JSON object"),
        });
    };
    let reference = match object.remove("ref") {
        None | Some(serde_json::Value::Null) => None,
        Some(r) => Some(serde_json::from_value::<Ref>(r).map_err(|_| FrameError {
            reference: None,
            refusal: Refusal::new(ErrorCode::BadRequest, "`ref` must be a string or a number"),
        })?),
    };
    let fail = |code, message: String| FrameError { reference: reference.clone(), refusal: Refusal::new(code, message) };
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

/// The `ref` of a frame too large to be handled, if it is JSON with a usable `ref`, so that
/// its `too_large` error can say which request failed.
pub fn frame_ref(text: &str) -> Option<Ref> {
    #[derive(Deserialize)]
    struct RefOnly {
        #[serde(rename = "ref", default)]
        reference: Option<serde_json::Value>,
    }
    let reference = serde_json::from_str::<RefOnly>(text).ok()?.reference?;
    serde_json::from_value(reference).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConvId;

    #[test]
    fn frames_are_told_apart_by_what_is_wrong_with_them() {
        assert_eq!(parse_client_frame("{nope").unwrap_err().refusal.code, ErrorCode::BadJson);
        let unknown = parse_client_frame(r#"{"type":"fly","ref":"r1"}"#).unwrap_err();
        assert_eq!(unknown.refusal.code, ErrorCode::UnknownType);
        assert_eq!(unknown.reference, Some(Ref::Str("r1".into())));
        assert_eq!(parse_client_frame(r#"{"type":"send","ref":2}"#).unwrap_err().refusal.code, ErrorCode::BadRequest);
        let (reference, frame) = parse_client_frame(r#"{"type":"send","ref":2,"conv":1,"text":"hi"}"#).unwrap();
        assert_eq!(reference, Some(Ref::Num(2.into())));
        assert!(matches!(frame, ClientFrame::Send { conv: ConvId(1), .. }));
    }
}
