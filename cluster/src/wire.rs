//! What crosses nodes: the [`Wire`] marker, the compact encoding (postcard) and the frames.
//!
//! A request frame is `[kind: u8][timeout_ms: u32 LE][postcard body]` (kind 0 = one-way, 1 =
//! ask); an answer frame is `[status: u8][postcard body]` (0 = the answer, 1 = a
//! [`ClusterError`]). Only messages that cross nodes are encoded: a local send of the same
//! type moves the value as any engine message does.

use crate::error::ClusterError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A message type that may cross nodes. Opt in with `impl Wire for MyMsg {}` (the type must
/// be serde-serialisable); it is then encoded with postcard when, and only when, it leaves
/// the node.
pub trait Wire: Serialize + DeserializeOwned + Send + 'static {}

impl Wire for String {}
impl Wire for Vec<u8> {}
impl Wire for u64 {}
impl Wire for i64 {}
impl Wire for () {}

/// Frame kind of a one-way message.
pub(crate) const TELL: u8 = 0;
/// Frame kind of an ask.
pub(crate) const ASK: u8 = 1;

/// Encodes `value` into a request frame.
pub(crate) fn request_frame<T: Serialize>(kind: u8, timeout_ms: u32, value: &T) -> Result<Vec<u8>, ClusterError> {
    let mut out = Vec::with_capacity(32);
    out.push(kind);
    out.extend_from_slice(&timeout_ms.to_le_bytes());
    postcard::to_io(value, &mut out).map_err(|e| ClusterError::Encode(e.to_string()))?;
    Ok(out)
}

/// Splits a request frame into its kind, timeout and body.
pub(crate) fn parse_request(frame: &[u8]) -> Result<(u8, u32, &[u8]), ClusterError> {
    if frame.len() < 5 || frame[0] > ASK {
        return Err(ClusterError::Decode(format!("bad request frame of {} bytes", frame.len())));
    }
    let timeout_ms = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]);
    Ok((frame[0], timeout_ms, &frame[5..]))
}

/// Decodes a body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClusterError> {
    postcard::from_bytes(body).map_err(|e| ClusterError::Decode(e.to_string()))
}

/// Encodes a body.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ClusterError> {
    postcard::to_stdvec(value).map_err(|e| ClusterError::Encode(e.to_string()))
}

/// Builds an answer frame from an encoded answer or the error that ended the ask.
pub(crate) fn answer_frame(answer: Result<Vec<u8>, ClusterError>) -> Vec<u8> {
    match answer {
        Ok(mut body) => {
            body.insert(0, 0);
            body
        }
        Err(e) => {
            let mut out = vec![1];
            // A ClusterError always encodes (strings and enums only).
            out.extend(postcard::to_stdvec(&e).unwrap_or_default());
            out
        }
    }
}

/// Reads an answer frame: the answer's body, or the remote error.
pub(crate) fn parse_answer(frame: &[u8]) -> Result<&[u8], ClusterError> {
    match frame.split_first() {
        Some((0, body)) => Ok(body),
        Some((1, body)) => Err(decode::<ClusterError>(body)?),
        _ => Err(ClusterError::Decode("bad answer frame".into())),
    }
}
