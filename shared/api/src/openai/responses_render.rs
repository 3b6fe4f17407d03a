//! OpenAI's Responses answer (a `response` object) and stream (`response.created`, each output
//! item's added / delta / done events, then `response.completed`, `response.incomplete` or
//! `response.failed`, every event with its `sequence_number`), written from a runtime
//! [`Reply`] and nothing else. The platform's details go in the `opencode` field.

use serde_json::{json, Value};

use opencode_core::model::{FinishReason, ToolCall, Usage};
use opencode_runtime::answer::{Answer, Event, Failure, Reply, ShowThinking};
use opencode_runtime::Body;

use super::chat_render::EXTENSION;
use super::error;
use crate::platform::render::{self, PlatformDetails};
use crate::sse;

/// The response for a reply; `created` in seconds since the Unix epoch.
pub fn reply<D: PlatformDetails>(request_id: &str, created: u64, reply: Reply<D>) -> http::Response<Body> {
    let ids = Ids { request_id: request_id.to_owned(), created };
    match reply {
        Reply::Whole(answer) => render::json_reply(&whole(&ids, &answer), &answer),
        Reply::Stream(streamed) => {
            let model = streamed.head.model_name();
            let mut items = Items { ids, model, sequence: 0, started: false, items: Vec::new(), open: false };
            render::sse_reply(streamed, move |event, out| items.write(event, out))
        }
    }
}

/// The ids of one response and its items, all from the request id.
struct Ids {
    request_id: String,
    created: u64,
}

impl Ids {
    fn response(&self) -> String {
        format!("resp_{}", self.request_id)
    }

    fn item(&self, prefix: &str, n: usize) -> String {
        format!("{prefix}_{}_{n}", self.request_id)
    }

    /// A `response` object: the fields this platform never varies come from a template (data,
    /// not code: a `json!` of every field cost each function 5 KiB of Wasm).
    fn object(&self, model: &str, status: &str, output: Vec<Value>, usage: Option<&Usage>) -> Value {
        const FIXED: &str = r#"{"object":"response","error":null,"incomplete_details":null,
            "instructions":null,"max_output_tokens":null,"metadata":{},"parallel_tool_calls":true,
            "previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":false,
            "temperature":null,"top_p":null,"tool_choice":"auto","tools":[],
            "text":{"format":{"type":"text"}},"truncation":"disabled","user":null}"#;
        let mut object: Value = serde_json::from_str(FIXED).unwrap_or_default();
        if let Some(map) = object.as_object_mut() {
            map.insert("id".into(), Value::from(self.response()));
            map.insert("created_at".into(), Value::from(self.created));
            map.insert("status".into(), Value::from(status));
            map.insert("model".into(), Value::from(model));
            map.insert("output".into(), Value::from(output));
            map.insert("usage".into(), usage.map_or(Value::Null, usage_json));
            if status == "incomplete" {
                map.insert("incomplete_details".into(), json!({ "reason": "max_output_tokens" }));
            }
        }
        object
    }
}

/// An item event's data: `item_id`, `output_index`, `content_index` (0) for a part of a message
/// or reasoning, and `field`.
fn item_event(id: &str, index: usize, of_content: bool, field: &str, value: Value) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("item_id".into(), Value::from(id));
    map.insert("output_index".into(), Value::from(index));
    if of_content {
        map.insert("content_index".into(), Value::from(0));
    }
    map.insert(field.into(), value);
    Value::Object(map)
}

fn text_part(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [] })
}

fn status_of(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "incomplete",
        _ => "completed",
    }
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "input_tokens_details": { "cached_tokens": usage.cached_tokens },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": { "reasoning_tokens": usage.reasoning_tokens },
        "total_tokens": usage.total_tokens(),
    })
}

fn reasoning_item(id: &str, text: &str) -> Value {
    json!({ "type": "reasoning", "id": id, "summary": [], "content": [{ "type": "reasoning_text", "text": text }] })
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message", "id": id, "status": status, "role": "assistant",
        "content": [{ "type": "output_text", "text": text, "annotations": [] }],
    })
}

fn call_item(id: &str, call: &ToolCall, status: &str) -> Value {
    json!({
        "type": "function_call", "id": id, "call_id": call.id, "name": call.name,
        "arguments": call.arguments, "status": status,
    })
}

/// A whole answer: the reasoning (when shown), the message and the calls, as output items.
fn whole<D: PlatformDetails>(ids: &Ids, answer: &Answer<D>) -> Value {
    let response = &answer.response;
    let mut output = Vec::new();
    if let (ShowThinking::Always | ShowThinking::IfAny, Some(thinking)) = (answer.show_thinking, &response.thinking) {
        output.push(reasoning_item(&ids.item("rs", 0), thinking));
    }
    if !response.text.is_empty() || response.tool_calls.is_empty() {
        output.push(message_item(&ids.item("msg", 0), &response.text, "completed"));
    }
    for (n, call) in response.tool_calls.iter().enumerate() {
        output.push(call_item(&ids.item("fc", n), call, "completed"));
    }
    let status = status_of(&answer.finish_reason());
    let mut object = ids.object(answer.model(), status, output, Some(&response.usage));
    if let Some(map) = object.as_object_mut() {
        map.insert(EXTENSION.into(), json!(render::answer_json(&ids.request_id, answer, false)));
    }
    object
}

/// An output item of a stream, as it builds up.
enum Item {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    /// A call, by its index among the answer's calls.
    Call {
        id: String,
        index: usize,
        call: ToolCall,
    },
}

impl Item {
    fn json(&self, status: &str) -> Value {
        match self {
            Item::Reasoning { id, text } => reasoning_item(id, text),
            Item::Message { id, text } => message_item(id, text, status),
            Item::Call { id, call, .. } => call_item(id, call, status),
        }
    }
}

/// The state of one stream's events.
struct Items {
    ids: Ids,
    model: String,
    sequence: u64,
    started: bool,
    items: Vec<Item>,
    /// Whether the last item is still open.
    open: bool,
}

impl Items {
    fn write<D: PlatformDetails>(&mut self, event: &Event<D>, out: &mut Vec<u8>) {
        match event {
            Event::Start(start) => {
                if let Some(model) = start.model_name() {
                    model.clone_into(&mut self.model);
                }
                self.start(out);
            }
            // A mode's progress has no event here: an SSE comment keeps the connection alive.
            Event::Progress(_) => out.extend_from_slice(b": progress\n\n"),
            Event::Delta(text) => {
                self.start(out);
                if !matches!(self.items.last(), Some(Item::Message { .. }) if self.open) {
                    let id = self.ids.item("msg", self.items.len());
                    self.open_item(Item::Message { id, text: String::new() }, out);
                    let id = self.last_id();
                    let data = item_event(&id, self.index(), true, "part", text_part(""));
                    self.push(out, "response.content_part.added", data);
                }
                if let Some(Item::Message { text: all, .. }) = self.items.last_mut() {
                    all.push_str(text);
                }
                let data = item_event(&self.last_id(), self.index(), true, "delta", Value::from(text.as_str()));
                self.push(out, "response.output_text.delta", data);
            }
            Event::ThinkingSignature(_) => {}
            Event::Thinking(text) => {
                self.start(out);
                if !matches!(self.items.last(), Some(Item::Reasoning { .. }) if self.open) {
                    let id = self.ids.item("rs", self.items.len());
                    self.open_item(Item::Reasoning { id, text: String::new() }, out);
                }
                if let Some(Item::Reasoning { text: all, .. }) = self.items.last_mut() {
                    all.push_str(text);
                }
                let data = item_event(&self.last_id(), self.index(), true, "delta", Value::from(text.as_str()));
                self.push(out, "response.reasoning_text.delta", data);
            }
            Event::ToolCall(piece) => {
                self.start(out);
                let same =
                    matches!(self.items.last(), Some(Item::Call { index, .. }) if self.open && *index == piece.index);
                if piece.id.is_some() || !same {
                    let call = ToolCall {
                        id: piece.id.clone().unwrap_or_default(),
                        name: piece.name.clone().unwrap_or_default(),
                        ..ToolCall::default()
                    };
                    let id = self.ids.item("fc", self.items.len());
                    self.open_item(Item::Call { id, index: piece.index, call }, out);
                }
                if let Some(Item::Call { call, .. }) = self.items.last_mut() {
                    call.arguments.push_str(&piece.arguments);
                }
                if !piece.arguments.is_empty() {
                    let arguments = Value::from(piece.arguments.as_str());
                    let data = item_event(&self.last_id(), self.index(), false, "delta", arguments);
                    self.push(out, "response.function_call_arguments.delta", data);
                }
            }
            Event::Done(answer) => {
                answer.model().clone_into(&mut self.model);
                self.start(out);
                self.close(out);
                let status = status_of(&answer.finish_reason());
                let output = self.items.iter().map(|item| item.json("completed")).collect();
                let mut response = self.ids.object(&self.model, status, output, Some(&answer.response.usage));
                if let Some(map) = response.as_object_mut() {
                    map.insert(EXTENSION.into(), json!(render::answer_json(&self.ids.request_id, answer, false)));
                }
                let name = if status == "incomplete" { "response.incomplete" } else { "response.completed" };
                self.push(out, name, json!({ "response": response }));
            }
            Event::Failed(failure) => {
                self.start(out);
                self.close(out);
                self.failed(failure, out);
            }
        }
    }

    /// `response.failed`, its response carrying the error and the items made so far.
    fn failed(&mut self, failure: &Failure, out: &mut Vec<u8>) {
        let output = self.items.iter().map(|item| item.json("incomplete")).collect();
        let mut response = self.ids.object(&self.model, "failed", output, None);
        let failure = error::failure(failure);
        if let Some(map) = response.as_object_mut() {
            map.insert("error".into(), json!({ "code": failure.get("code"), "message": failure.get("message") }));
        }
        self.push(out, "response.failed", json!({ "response": response }));
    }

    /// `response.created` and `response.in_progress`, unless sent.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.ids.object(&self.model, "in_progress", Vec::new(), None);
        self.push(out, "response.created", json!({ "response": response.clone() }));
        self.push(out, "response.in_progress", json!({ "response": response }));
    }

    /// Closes the open item and opens `item` (`response.output_item.added`).
    fn open_item(&mut self, item: Item, out: &mut Vec<u8>) {
        self.close(out);
        let json = item.json("in_progress");
        self.items.push(item);
        self.open = true;
        self.push(out, "response.output_item.added", json!({ "output_index": self.index(), "item": json }));
    }

    /// The open item's done events.
    fn close(&mut self, out: &mut Vec<u8>) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let (index, id) = (self.index(), self.last_id());
        let done = match self.items.last() {
            Some(Item::Message { text, .. }) => vec![
                ("response.output_text.done", item_event(&id, index, true, "text", Value::from(text.as_str()))),
                ("response.content_part.done", item_event(&id, index, true, "part", text_part(text))),
            ],
            Some(Item::Reasoning { text, .. }) => {
                vec![("response.reasoning_text.done", item_event(&id, index, true, "text", Value::from(text.as_str())))]
            }
            Some(Item::Call { call, .. }) => vec![(
                "response.function_call_arguments.done",
                item_event(&id, index, false, "arguments", Value::from(call.arguments.as_str())),
            )],
            None => Vec::new(),
        };
        for (name, data) in done {
            self.push(out, name, data);
        }
        if let Some(item) = self.items.last().map(|item| item.json("completed")) {
            self.push(out, "response.output_item.done", json!({ "output_index": index, "item": item }));
        }
    }

    /// The last item's index in `output`.
    fn index(&self) -> usize {
        self.items.len().saturating_sub(1)
    }

    fn last_id(&self) -> String {
        match self.items.last() {
            Some(Item::Reasoning { id, .. } | Item::Message { id, .. } | Item::Call { id, .. }) => id.clone(),
            None => String::new(),
        }
    }

    /// One event: its `type` and `sequence_number` added to `data`.
    fn push(&mut self, out: &mut Vec<u8>, name: &str, mut data: Value) {
        if let Some(map) = data.as_object_mut() {
            map.insert("type".into(), json!(name));
            map.insert("sequence_number".into(), json!(self.sequence));
        }
        self.sequence = self.sequence.saturating_add(1);
        out.extend_from_slice(&sse::encode(name, &data));
    }
}
