//! The platform's own model of a chat exchange: what every provider translates to and from.
//!
//! These types are the contract between the handlers, the executor and the providers. They
//! are deliberately smaller than any vendor's wire format: only what the platform exposes.

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    #[default]
    User,
    Assistant,
    /// A tool's result, answering the assistant's call `tool_call_id`.
    Tool,
}

impl Role {
    /// The role's name on the wire (OpenAI's, and the GenAI conventions').
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The tools an assistant message calls (its `content` may then be empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// On a `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// The images a user message shows the model, which every vendor gets before the text (as
    /// Anthropic advises; the others read them in any order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    /// An assistant message's signed reasoning, sent back as it came: Anthropic refuses a tool
    /// loop with thinking on unless the last assistant turn starts with its thinking blocks.
    /// The other vendors do not read it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thinking: Vec<ThinkingBlock>,
}

/// One of Anthropic's reasoning blocks, in its own shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingBlock {
    Thinking {
        thinking: String,
        signature: String,
    },
    /// Reasoning the vendor encrypted: only its opaque `data` travels.
    RedactedThinking {
        data: String,
    },
}

/// An image in a user message: fetched by the vendor from a URL, or sent inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub source: ImageSource,
    /// OpenAI's `detail` (`auto`, `low`, `high`), for the vendors that read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where an image's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// An `https` URL the vendor fetches.
    Url { url: String },
    /// Base64 bytes of `media_type` (`image/png`, ...).
    Base64 { media_type: String, data: String },
}

impl ImageSource {
    /// A `data:` URL's media type and base64 bytes, else an `https` URL; `None` for anything
    /// else (a vendor cannot fetch other schemes, and a `data:` URL must be base64).
    pub fn from_url(url: &str) -> Option<ImageSource> {
        if let Some(data_url) = url.strip_prefix("data:") {
            let (header, data) = data_url.split_once(',')?;
            let media_type = header.strip_suffix(";base64")?;
            if !media_type.contains('/') || data.is_empty() {
                return None;
            }
            return Some(ImageSource::Base64 { media_type: media_type.to_ascii_lowercase(), data: data.to_owned() });
        }
        let scheme = url.get(..8)?;
        (scheme.eq_ignore_ascii_case("https://") && url.len() > 8).then(|| ImageSource::Url { url: url.to_owned() })
    }

    /// The URL OpenAI's format takes: the `https` URL, or a `data:` URL.
    pub fn to_url(&self) -> String {
        match self {
            ImageSource::Url { url } => url.clone(),
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }

    /// The media type: given inline, else guessed from the URL's extension.
    pub fn media_type(&self) -> Option<&str> {
        match self {
            ImageSource::Base64 { media_type, .. } => Some(media_type),
            ImageSource::Url { url } => {
                let path = url.split(['?', '#']).next().unwrap_or(url);
                let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase())?;
                match extension.as_str() {
                    "png" => Some("image/png"),
                    "jpg" | "jpeg" => Some("image/jpeg"),
                    "gif" => Some("image/gif"),
                    "webp" => Some("image/webp"),
                    "heic" => Some("image/heic"),
                    "heif" => Some("image/heif"),
                    _ => None,
                }
            }
        }
    }
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message { role, content: content.into(), ..Message::default() }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Message::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new(Role::Assistant, content)
    }
    /// A tool's result for the call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message { role: Role::Tool, content: content.into(), tool_call_id: Some(call_id.into()), ..Message::default() }
    }
}

/// A function the model may call: its name, what it does, and a JSON Schema for its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A JSON Schema object.
    pub parameters: serde_json::Value,
    /// The caller asked for calls that match `parameters` exactly (OpenAI's and Anthropic's
    /// strict mode; Gemini has none and gets the schema alone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

/// One call the model made: `arguments` is the JSON text the model wrote (it may not parse;
/// the caller or the agent decides what to do then).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    /// Opaque vendor state that must go back with the call in the next request (Gemini 3's
    /// `thoughtSignature`, refused with a 400 when missing). Kept as received; `None` for
    /// vendors without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl ToolCall {
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        ToolCall { id: id.into(), name: name.into(), arguments: arguments.into(), signature: None }
    }
}

/// Most tool calls one answer may assemble from stream pieces: a piece for a higher index is
/// dropped rather than letting a provider make us allocate without bound.
pub const MAX_STREAMED_TOOL_CALLS: usize = 256;

/// A piece of the tool call at `index` (0-based, in call order), as a stream brings it: `id`
/// and `name` arrive with a call's first piece, `arguments` is the next piece of its JSON text
/// (vendors that send a call whole send one piece), `signature` with the piece that carries one
/// (Gemini).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCallPiece {
    pub index: usize,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
    pub signature: Option<String>,
}

impl ToolCallPiece {
    /// A whole call as one piece (what a replay or a vendor without streamed calls sends).
    pub fn whole(index: usize, call: ToolCall) -> ToolCallPiece {
        ToolCallPiece {
            index,
            id: Some(call.id),
            name: Some(call.name),
            arguments: call.arguments,
            signature: call.signature,
        }
    }
}

/// Adds one streamed piece to the calls assembled so far.
pub fn add_tool_call_piece(calls: &mut Vec<ToolCall>, piece: &ToolCallPiece) {
    let index = piece.index;
    if index >= MAX_STREAMED_TOOL_CALLS {
        return;
    }
    if calls.len() <= index {
        calls.resize_with(index.saturating_add(1), ToolCall::default);
    }
    let Some(call) = calls.get_mut(index) else { return };
    if let Some(id) = &piece.id {
        id.clone_into(&mut call.id);
    }
    if let Some(name) = &piece.name {
        name.clone_into(&mut call.name);
    }
    if let Some(signature) = &piece.signature {
        call.signature = Some(signature.clone());
    }
    call.arguments.push_str(&piece.arguments);
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (every vendor's default when tools are given).
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool.
    Function(String),
}

/// The shape the answer must take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching `schema` (a JSON Schema); `strict` asks vendors that support it to enforce it.
    JsonSchema {
        name: String,
        schema: serde_json::Value,
        strict: bool,
    },
}

/// How much deliberate reasoning to ask a provider for (thinking mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasoning {
    /// Token budget for the reasoning; providers with levels instead of budgets map it
    /// through [`Effort::from_budget`].
    pub budget_tokens: u32,
}

/// A reasoning level, for the vendors that take one (OpenAI's `reasoning_effort`) and for
/// clients that would rather not pick a budget. This is the one place levels and budgets are
/// mapped to each other: `from_budget(e.budget_tokens()) == e` for every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effort {
    Low,
    Medium,
    High,
}

impl Effort {
    /// The token budget a level stands for. Low is Anthropic's minimum budget.
    pub const fn budget_tokens(self) -> u32 {
        match self {
            Effort::Low => 1_024,
            Effort::Medium => 4_096,
            Effort::High => 16_384,
        }
    }

    /// The level a budget falls in; the boundaries lie halfway (geometrically) between the
    /// levels' budgets.
    pub const fn from_budget(budget_tokens: u32) -> Effort {
        match budget_tokens {
            0..2_048 => Effort::Low,
            2_048..8_192 => Effort::Medium,
            _ => Effort::High,
        }
    }

    /// The name on the wire (`low`, `medium`, `high`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }
}

/// A provider-independent chat request. Validated before it gets here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// Overrides the configured model of the first provider in the chain.
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// Sampling from the `top_k` likeliest tokens: Anthropic, Gemini and compatible servers
    /// take it; OpenAI has none and answers without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    pub reasoning: Option<Reasoning>,
    /// Functions the model may call; the calls come back in the answer, for the caller to run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// OpenAI's and Gemini's repetition controls (-2 to 2); vendors without them ignore them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// OpenAI's bias per token id (-100 to 100): only OpenAI and compatible servers take it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub logit_bias: std::collections::BTreeMap<u32, f32>,
}

/// Tokens counted by the provider that answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    /// Everything the model generated, reasoning included (every vendor bills it as output).
    pub output_tokens: u64,
    /// The part of `output_tokens` spent on reasoning, when the provider reports it apart
    /// (OpenAI, Gemini); 0 when it does not (Anthropic counts thinking in output only).
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// The part of `input_tokens` read from the vendor's prompt cache, when it reports it.
    #[serde(default)]
    pub cached_tokens: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;

    /// Two calls' tokens together (an agent run's, a batch of embeddings'): saturating, since
    /// counts come from vendors.
    fn add(self, other: Usage) -> Usage {
        self.saturating_add(other)
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        *self = self.saturating_add(other);
    }
}

impl Usage {
    /// What `+` does, by a name the arithmetic lint accepts.
    pub fn saturating_add(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            reasoning_tokens: self.reasoning_tokens.saturating_add(other.reasoning_tokens),
            cached_tokens: self.cached_tokens.saturating_add(other.cached_tokens),
        }
    }

    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Streams report usage piecewise (Anthropic: input at start, output at the end); a later
    /// report of a count replaces an earlier one, a missing (zero) count keeps it.
    pub fn merge(&mut self, later: Usage) {
        if later.input_tokens > 0 {
            self.input_tokens = later.input_tokens;
        }
        if later.output_tokens > 0 {
            self.output_tokens = later.output_tokens;
        }
        if later.reasoning_tokens > 0 {
            self.reasoning_tokens = later.reasoning_tokens;
        }
        if later.cached_tokens > 0 {
            self.cached_tokens = later.cached_tokens;
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    #[default]
    Stop,
    Length,
    ContentFilter,
    ToolCalls,
    Other(String),
}

impl FinishReason {
    /// The reason's name (OpenAI's words; a vendor's other reason as it gave it).
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(other) => other,
        }
    }
}

/// A complete, non-streamed answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    /// Reasoning the provider returned separately from the answer, if any.
    pub thinking: Option<String>,
    /// The vendor's signature of that reasoning (Anthropic's), which a client sends back with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_signature: Option<String>,
    /// The model the provider says answered (may be more specific than the one asked for).
    pub model: String,
    pub finish_reason: FinishReason,
    pub usage: Usage,
    /// The tools the model called, in order (then `finish_reason` is `ToolCalls`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// One step of a streamed answer, as parsed from a provider event.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of answer text.
    Delta(String),
    /// The next piece of reasoning text.
    Thinking(String),
    /// The signature of the reasoning so far (Anthropic's `signature_delta`).
    ThinkingSignature(String),
    /// The model the provider says is answering.
    Model(String),
    /// Token counts so far (merge with [`Usage::merge`]).
    Usage(Usage),
    /// A piece of a tool call.
    ToolCall(ToolCallPiece),
    /// Why the model stopped.
    Finish(FinishReason),
    /// The provider says the answer is complete; nothing follows.
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_effort_maps_to_a_budget_that_maps_back_to_it() {
        for effort in [Effort::Low, Effort::Medium, Effort::High] {
            assert_eq!(Effort::from_budget(effort.budget_tokens()), effort);
        }
        assert_eq!(Effort::from_budget(2_047), Effort::Low);
        assert_eq!(Effort::from_budget(2_048), Effort::Medium);
        assert_eq!(Effort::from_budget(8_191), Effort::Medium);
        assert_eq!(Effort::from_budget(8_192), Effort::High);
        assert_eq!(Effort::from_budget(u32::MAX), Effort::High);
    }

    #[test]
    fn usage_merge_keeps_reasoning_tokens_until_a_later_count_replaces_them() {
        let mut usage = Usage { input_tokens: 3, output_tokens: 0, reasoning_tokens: 0, cached_tokens: 0 };
        usage.merge(Usage { input_tokens: 0, output_tokens: 9, reasoning_tokens: 4, cached_tokens: 0 });
        usage.merge(Usage { input_tokens: 0, output_tokens: 12, reasoning_tokens: 0, cached_tokens: 0 });
        assert_eq!(usage, Usage { input_tokens: 3, output_tokens: 12, reasoning_tokens: 4, cached_tokens: 0 });
    }

    #[test]
    fn tool_call_pieces_assemble_by_index_and_a_wild_index_is_dropped() {
        let mut calls = Vec::new();
        let piece = |index, id: Option<&str>, name: Option<&str>, arguments: &str| ToolCallPiece {
            index,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: arguments.to_owned(),
            signature: None,
        };
        add_tool_call_piece(&mut calls, &piece(0, Some("call_a"), Some("search"), "{\"q\":"));
        add_tool_call_piece(&mut calls, &piece(1, Some("call_b"), Some("fetch"), "{}"));
        add_tool_call_piece(&mut calls, &piece(0, None, None, "\"x\"}"));
        add_tool_call_piece(&mut calls, &piece(usize::MAX, Some("evil"), None, "{}"));
        assert_eq!(
            calls,
            vec![ToolCall::new("call_a", "search", "{\"q\":\"x\"}"), ToolCall::new("call_b", "fetch", "{}")]
        );
    }

    #[test]
    fn usages_add_field_by_field_without_overflowing() {
        let a = Usage { input_tokens: 3, output_tokens: 4, reasoning_tokens: 1, cached_tokens: 0 };
        let mut sum = a + Usage { input_tokens: 10, output_tokens: 20, reasoning_tokens: 2, cached_tokens: 0 };
        assert_eq!(sum, Usage { input_tokens: 13, output_tokens: 24, reasoning_tokens: 3, cached_tokens: 0 });
        sum += Usage { input_tokens: u64::MAX, ..Usage::default() };
        assert_eq!(sum.input_tokens, u64::MAX);
    }

    #[test]
    fn cached_usage_without_reasoning_tokens_still_reads() {
        let usage: Usage = serde_json::from_str(r#"{"input_tokens":1,"output_tokens":2}"#).unwrap_or_default();
        assert_eq!(usage, Usage { input_tokens: 1, output_tokens: 2, reasoning_tokens: 0, cached_tokens: 0 });
    }

    #[test]
    fn image_urls_are_https_or_base64_data() {
        let inline = ImageSource::from_url("data:Image/PNG;base64,iVBOR");
        assert_eq!(inline, Some(ImageSource::Base64 { media_type: "image/png".into(), data: "iVBOR".into() }));
        assert_eq!(inline.map(|i| i.to_url()).as_deref(), Some("data:image/png;base64,iVBOR"));
        let fetched = ImageSource::from_url("HTTPS://img.example/a.JPG?size=2");
        assert_eq!(fetched.as_ref().and_then(ImageSource::media_type), Some("image/jpeg"));
        let unknown = ImageSource::from_url("https://img.example/a");
        assert_eq!(unknown.as_ref().map(ImageSource::media_type), Some(None));
        for refused in
            ["http://img.example/a.png", "data:image/png,rawbytes", "data:;base64,AAAA", "https://", "ftp://x"]
        {
            assert_eq!(ImageSource::from_url(refused), None, "{refused}");
        }
    }
}
