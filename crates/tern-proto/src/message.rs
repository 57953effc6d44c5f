//! The stored message object (PROTOCOL.md §3), as it appears in pushes, sync
//! results and HTTP history.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::ids::ConvId;

/// `text` (default), `system` (from the server) or `e2e` (opaque ciphertext).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    #[default]
    Text,
    System,
    E2e,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::System => "system",
            Self::E2e => "e2e",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text),
            "system" => Some(Self::System),
            "e2e" => Some(Self::E2e),
            _ => None,
        }
    }
}

/// A message's optional `meta`: a JSON object the server stores and returns
/// untouched (key order kept; insignificant white space may be dropped).
#[derive(Debug, Clone)]
pub struct Meta(Box<RawValue>);

impl Meta {
    /// Takes stored or received JSON text as it is (so numbers, escapes and
    /// key order come back byte for byte); it must be a JSON object.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let raw =
            RawValue::from_string(text.trim().to_owned()).map_err(|e| format!("meta: {e}"))?;
        if !raw.get().starts_with('{') {
            return Err("meta must be a JSON object".into());
        }
        Ok(Self(raw))
    }

    /// [`Meta::from_json`] for a client's text that did not come through
    /// the JSON codec (protobuf's `meta` string): also refuses what the JSON
    /// codec refuses (numbers beyond f64, lone surrogates, nesting deeper
    /// than 128), so every stored meta can be pushed to JSON clients.
    pub fn from_client_json(text: &str) -> Result<Self, String> {
        let meta = Self::from_json(text)?;
        serde_json::from_str::<serde_json::Value>(meta.as_str())
            .map_err(|e| format!("meta: {e}"))?;
        Ok(meta)
    }

    fn from_value(value: serde_json::Value) -> Result<Self, String> {
        if !value.is_object() {
            return Err("meta must be a JSON object".into());
        }
        let text = serde_json::to_string(&value).map_err(|e| e.to_string())?;
        RawValue::from_string(text)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// The serialized object.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// Serialized length in bytes (the limit is [`crate::MAX_META_BYTES`]).
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through `Value` (not `RawValue`) so it also works inside the
        // internally tagged frame enums; `preserve_order` keeps key order.
        let value = serde_json::Value::deserialize(d)?;
        Self::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub conv: ConvId,
    pub seq: u64,
    pub mid: String,
    pub from: String,
    pub body: String,
    #[serde(default)]
    pub kind: MessageKind,
    pub ts: i64,
    pub cmid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

impl Serialize for ConvId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConvId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        ConvId::parse(&s).map_err(serde::de::Error::custom)
    }
}
