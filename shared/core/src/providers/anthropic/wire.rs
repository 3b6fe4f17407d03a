//! Anthropic Messages wire types: only the fields the platform sends or reads. Tagged enums
//! end in an `Other` variant because Anthropic documents that new block, delta and event types
//! may be added.

use serde::{Deserialize, Serialize};

/// The `POST /v1/messages` body.
#[derive(Debug, Serialize)]
pub(super) struct Request<'a> {
    pub model: &'a str,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub(super) struct Message<'a> {
    pub role: &'static str,
    pub content: Content<'a>,
}

/// A plain string while a message is only text (the common case, and the shorter body);
/// content blocks once it holds tool calls or results.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum Content<'a> {
    Text(String),
    Blocks(Vec<OutBlock<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OutBlock<'a> {
    /// Reasoning sent back as it came.
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
    Text {
        text: &'a str,
    },
    Image {
        source: ImageSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        /// An object (Anthropic refuses anything else).
        input: serde_json::Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        content: &'a str,
    },
}

/// An image block's `source`: `{"type":"base64","media_type","data"}` or `{"type":"url","url"}`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

/// `{"name","description","input_schema"}`.
#[derive(Debug, Serialize)]
pub(super) struct Tool<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
    pub input_schema: &'a serde_json::Value,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct Thinking {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub budget_tokens: u32,
}

/// A complete `message` object (also the `message` of `message_start`, with empty content).
#[derive(Debug, Deserialize)]
pub(super) struct MessageResponse {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub content: Option<Vec<Block>>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// Present when the body is an error envelope instead.
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

/// A content block of a complete message. Read through [`RawBlock`]: serde's tagged enums
/// buffer every field through a generic `Content` tree, which cost each function ~15 KiB of
/// Wasm; a flat struct reads in one pass, then the type picks the fields it needs.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawBlock")]
pub(super) enum Block {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
        signature: Option<String>,
    },
    ToolUse {
        id: String,
        name: String,
        input: serde_json::Value,
    },
    /// `redacted_thinking` and any later block type.
    Other,
}

/// Every field any block type has, all optional here.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawBlock {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    thinking: Option<String>,
    signature: Option<String>,
    id: Option<String>,
    name: Option<String>,
    input: serde_json::Value,
}

/// A field the type requires.
fn needs<T>(field: Option<T>, what: &str) -> Result<T, String> {
    field.ok_or_else(|| format!("missing {what}"))
}

impl TryFrom<RawBlock> for Block {
    type Error = String;
    fn try_from(raw: RawBlock) -> Result<Block, String> {
        Ok(match needs(raw.kind, "block type")?.as_str() {
            "text" => Block::Text { text: needs(raw.text, "text")? },
            "thinking" => Block::Thinking { thinking: needs(raw.thinking, "thinking")?, signature: raw.signature },
            "tool_use" => Block::ToolUse {
                id: needs(raw.id, "tool_use id")?,
                name: needs(raw.name, "tool_use name")?,
                input: raw.input,
            },
            _ => Block::Other,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

/// One streamed event's `data`, by its `type`; read through [`RawEvent`] (see [`Block`]).
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawEvent")]
pub(super) enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: ErrorDetail,
    },
    /// `ping` and any later event type.
    Other,
}

/// Every field any event type has, all optional here.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    index: usize,
    message: Option<StartMessage>,
    content_block: Option<RawBlock>,
    delta: Option<RawDelta>,
    usage: Option<WireUsage>,
    error: Option<ErrorDetail>,
}

impl TryFrom<RawEvent> for Event {
    type Error = String;
    fn try_from(raw: RawEvent) -> Result<Event, String> {
        let index = raw.index;
        Ok(match needs(raw.kind, "event type")?.as_str() {
            "message_start" => Event::MessageStart { message: needs(raw.message, "message")? },
            "content_block_start" => {
                let block = needs(raw.content_block, "content_block")?;
                let content_block = match needs(block.kind, "block type")?.as_str() {
                    "tool_use" => StartBlock::ToolUse {
                        id: needs(block.id, "tool_use id")?,
                        name: needs(block.name, "tool_use name")?,
                    },
                    _ => StartBlock::Other,
                };
                Event::ContentBlockStart { index, content_block }
            }
            "content_block_delta" => {
                let delta = needs(raw.delta, "delta")?;
                let delta = match needs(delta.kind, "delta type")?.as_str() {
                    "text_delta" => Delta::Text { text: needs(delta.text, "text")? },
                    "thinking_delta" => Delta::Thinking { thinking: needs(delta.thinking, "thinking")? },
                    "input_json_delta" => Delta::InputJson { partial_json: delta.partial_json.unwrap_or_default() },
                    "signature_delta" => Delta::Signature { signature: needs(delta.signature, "signature")? },
                    _ => Delta::Other,
                };
                Event::ContentBlockDelta { index, delta }
            }
            "content_block_stop" => Event::ContentBlockStop { index },
            "message_delta" => {
                let delta = needs(raw.delta, "delta")?;
                Event::MessageDelta { delta: MessageDeltaBody { stop_reason: delta.stop_reason }, usage: raw.usage }
            }
            "message_stop" => Event::MessageStop,
            "error" => Event::Error { error: needs(raw.error, "error")? },
            _ => Event::Other,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct StartMessage {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// The block a `content_block_start` opens: only tool calls matter (text and thinking arrive
/// in deltas).
#[derive(Debug)]
pub(super) enum StartBlock {
    ToolUse { id: String, name: String },
    Other,
}

#[derive(Debug)]
pub(super) enum Delta {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
    },
    /// The next piece of a `tool_use` block's input JSON.
    InputJson {
        partial_json: String,
    },
    /// The thinking block's signature.
    Signature {
        signature: String,
    },
    /// `citations_delta` and any later delta type.
    Other,
}

/// Every field a content delta or a `message_delta`'s delta has, all optional here.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawDelta {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    thinking: Option<String>,
    signature: Option<String>,
    partial_json: Option<String>,
    stop_reason: Option<String>,
}

#[derive(Debug)]
pub(super) struct MessageDeltaBody {
    pub stop_reason: Option<String>,
}

/// `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorEnvelope {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub(super) struct ErrorDetail {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: String,
}
