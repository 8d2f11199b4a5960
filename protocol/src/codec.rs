//! JSON and postcard encodings of protocol v1.
//!
//! Binary (`orrery.bin.v1`) is postcard of [`ClientFrame`] / [`ServerFrame`]: `id` as an optional varint, then the
//! message enum as its variant index followed by its fields. JSON (`orrery.json.v1`) puts the message's `type` and
//! the optional `id` beside its fields in one flat object: `{"type":"thrust","id":7,"vx":10,"vy":0}`. Game commands
//! and events share the `type` namespace with the engine's own messages, and the `body` of `keyframe` and `delta` is
//! spread into the same object.

use orrery_engine::Game;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};

use crate::codes;
use crate::messages::{ClientFrame, ClientMessage, ServerFrame};

/// The two encodings of protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON text frames.
    Json,
    /// postcard binary frames.
    Binary,
}

impl Encoding {
    /// The WebSocket subprotocol naming this encoding.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Encoding::Json => crate::SUBPROTOCOL_JSON,
            Encoding::Binary => crate::SUBPROTOCOL_BIN,
        }
    }

    /// The encoding a subprotocol names, if it is one of ours.
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        match name.trim() {
            crate::SUBPROTOCOL_JSON => Some(Encoding::Json),
            crate::SUBPROTOCOL_BIN => Some(Encoding::Binary),
            _ => None,
        }
    }
}

/// A message that could not be decoded. `id` is the request id when it could still be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    pub id: Option<u64>,
    pub code: &'static str,
    pub message: String,
}

impl DecodeError {
    fn new(id: Option<u64>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
        }
    }
}

/// Engine message types in the JSON `type` namespace (everything else belongs to the game).
const CLIENT_TYPES: &[&str] = &["ping", "resync", "chat"];
const SERVER_TYPES: &[&str] = &[
    "welcome", "keyframe", "delta", "warped", "chat", "pong", "error",
];
/// Server messages whose `body` field is spread into the JSON object.
const SPREAD_BODY: &[&str] = &["keyframe", "delta"];
const BODY: &str = "body";

/// Turns an externally tagged serde value (`"ping"` or `{"chat": {...}}`) into `(type, fields)`.
fn untag(value: Value) -> (String, Map<String, Value>) {
    match value {
        Value::String(tag) => (tag, Map::new()),
        Value::Object(map) if map.len() == 1 => {
            let (tag, inner) = map.into_iter().next().expect("one entry");
            match inner {
                Value::Object(fields) => (tag, fields),
                other => {
                    let mut fields = Map::new();
                    fields.insert(BODY.to_owned(), other);
                    (tag, fields)
                }
            }
        }
        other => {
            let mut fields = Map::new();
            fields.insert(BODY.to_owned(), other);
            (String::new(), fields)
        }
    }
}

/// Turns `(type, fields)` back into the externally tagged form serde expects.
fn retag(tag: String, fields: Map<String, Value>) -> Value {
    if fields.is_empty() {
        Value::String(tag)
    } else {
        let mut map = Map::new();
        map.insert(tag, Value::Object(fields));
        Value::Object(map)
    }
}

/// Flattens an envelope: engine tag, or `game` whose inner tag takes its place.
fn flatten(value: Value, id: Option<u64>) -> Value {
    let (mut tag, mut fields) = untag(value);
    if tag == "game" {
        let inner = fields.remove(BODY).unwrap_or(Value::Object(fields));
        let (t, f) = untag(inner);
        tag = t;
        fields = f;
    }
    if SPREAD_BODY.contains(&tag.as_str()) {
        if let Some(Value::Object(body)) = fields.remove(BODY) {
            fields.extend(body);
        }
    }
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("type".to_owned(), Value::String(tag));
    if let Some(id) = id {
        out.insert("id".to_owned(), Value::from(id));
    }
    out.extend(fields);
    Value::Object(out)
}

/// A flat JSON message taken apart: request id, `type`, remaining fields.
type Parts = (Option<u64>, String, Map<String, Value>);

/// Splits a flat JSON object into `(id, type, remaining fields)`.
fn split(text: &str) -> Result<Parts, DecodeError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(None, codes::MALFORMED, format!("not valid JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(DecodeError::new(
            None,
            codes::MALFORMED,
            "a message must be a JSON object",
        ));
    };
    let id = match map.remove("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            DecodeError::new(
                None,
                codes::INVALID_MESSAGE,
                "`id` must be an unsigned integer",
            )
        })?),
    };
    let tag = match map.remove("type") {
        Some(Value::String(t)) => t,
        Some(_) => {
            return Err(DecodeError::new(
                id,
                codes::INVALID_MESSAGE,
                "`type` must be a string",
            ))
        }
        None => {
            return Err(DecodeError::new(
                id,
                codes::INVALID_MESSAGE,
                "missing `type`",
            ))
        }
    };
    Ok((id, tag, map))
}

fn classify(id: Option<u64>, tag: &str, err: serde_json::Error) -> DecodeError {
    let text = err.to_string();
    if text.starts_with(&format!("unknown variant `{tag}`")) {
        DecodeError::new(
            id,
            codes::UNKNOWN_TYPE,
            format!("unknown message type `{tag}`"),
        )
    } else {
        DecodeError::new(
            id,
            codes::INVALID_MESSAGE,
            format!("invalid `{tag}` message: {text}"),
        )
    }
}

/// Decodes a client's JSON text frame.
pub fn client_from_json<C: DeserializeOwned>(text: &str) -> Result<ClientFrame<C>, DecodeError> {
    let (id, tag, fields) = split(text)?;
    let value = if CLIENT_TYPES.contains(&tag.as_str()) {
        retag(tag.clone(), fields)
    } else {
        let mut map = Map::new();
        map.insert("game".to_owned(), retag(tag.clone(), fields));
        Value::Object(map)
    };
    let msg: ClientMessage<C> = serde_json::from_value(value).map_err(|e| classify(id, &tag, e))?;
    Ok(ClientFrame { id, msg })
}

/// Encodes a client frame as JSON text (for clients written in Rust: tests, the load tester).
pub fn client_to_json<C: Serialize>(frame: &ClientFrame<C>) -> String {
    let value = serde_json::to_value(&frame.msg).unwrap_or(Value::Null);
    flatten(value, frame.id).to_string()
}

/// Decodes a client's binary frame.
pub fn client_from_bin<C: DeserializeOwned>(bytes: &[u8]) -> Result<ClientFrame<C>, DecodeError> {
    postcard::from_bytes(bytes).map_err(|e| {
        let code = match e {
            postcard::Error::DeserializeBadEnum => codes::UNKNOWN_TYPE,
            _ => codes::MALFORMED,
        };
        DecodeError::new(None, code, format!("undecodable binary message: {e}"))
    })
}

/// Encodes a client frame as postcard bytes.
pub fn client_to_bin<C: Serialize>(frame: &ClientFrame<C>) -> Vec<u8> {
    postcard::to_allocvec(frame).unwrap_or_default()
}

/// Encodes a server frame as JSON text.
pub fn server_to_json<G: Game>(frame: &ServerFrame<G>) -> String {
    let value = serde_json::to_value(&frame.msg).unwrap_or(Value::Null);
    flatten(value, frame.id).to_string()
}

/// Encodes a server frame as postcard bytes.
pub fn server_to_bin<G: Game>(frame: &ServerFrame<G>) -> Vec<u8> {
    postcard::to_allocvec(frame).unwrap_or_default()
}

/// Encodes a server frame in the given encoding.
pub fn server_encode<G: Game>(frame: &ServerFrame<G>, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Json => server_to_json(frame).into_bytes(),
        Encoding::Binary => server_to_bin(frame),
    }
}

/// Decodes a server JSON frame (for Rust clients).
pub fn server_from_json<G: Game>(text: &str) -> Result<ServerFrame<G>, DecodeError> {
    let (id, tag, mut fields) = split(text)?;
    let value = if SERVER_TYPES.contains(&tag.as_str()) {
        if SPREAD_BODY.contains(&tag.as_str()) {
            let mut body = Map::new();
            let keys: Vec<String> = fields
                .keys()
                .filter(|k| !matches!(k.as_str(), "sector" | "seq" | "tick"))
                .cloned()
                .collect();
            for k in keys {
                if let Some(v) = fields.remove(&k) {
                    body.insert(k, v);
                }
            }
            fields.insert(BODY.to_owned(), Value::Object(body));
        }
        retag(tag.clone(), fields)
    } else {
        let mut map = Map::new();
        map.insert("game".to_owned(), retag(tag.clone(), fields));
        Value::Object(map)
    };
    let msg = serde_json::from_value(value).map_err(|e| classify(id, &tag, e))?;
    Ok(ServerFrame { id, msg })
}

/// Decodes a server binary frame (for Rust clients).
pub fn server_from_bin<G: Game>(bytes: &[u8]) -> Result<ServerFrame<G>, DecodeError> {
    postcard::from_bytes(bytes)
        .map_err(|e| DecodeError::new(None, codes::MALFORMED, format!("undecodable: {e}")))
}
