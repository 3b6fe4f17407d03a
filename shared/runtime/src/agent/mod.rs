//! Chat on System 2: the strong models in a bounded loop with the platform's tools
//! (chat/toolbox.rs), on the agent runtime. It runs in its own function, `agent`: chat
//! forwards System 2 requests there ([`forward`]), keeping this code out of chat's Wasm.
//!
//! Each round the model either answers or calls tools; the calls run concurrently, their
//! results go back as tool messages, and the loop goes on until the model answers or a limit
//! (`AGENT_MAX_*`) stops it. The last step the limits allow is made with `tool_choice: none`,
//! so a run that reaches its step limit still ends with an answer.
//!
//! The JSON answer is chat's, plus `tier`, `citations` (every source a tool numbered) and
//! `agent` (the steps). A stream sends `start`, `step` (each model call that called tools,
//! each tool run), `delta`s (the model's text as it is written), `usage` and `done`.

use serde_json::{json, Map, Value};

use super::super::mode::{answer_json, done_json, event_stream, Emitter};
use super::super::{Ctx, Handled};
use super::toolbox::{Source, ToolOutput, Toolbox};
use crate::agent::{Agent, LimitHit, Limits, Stop};
use crate::error::ApiError;
use crate::web;
use opencode_core::model::{ChatRequest, ChatResponse, FinishReason, Message, Role, ToolChoice};
use opencode_core::providers::ProviderConfig;
use opencode_core::routing::{Mode, Tier};
use opencode_runtime::executor::{Answered, RetryPolicy};
use opencode_runtime::host::Host;

/// Tool runs in flight at once: Workers allow six open connections per request.
const TOOL_CONCURRENCY: usize = 4;

const INSTRUCTIONS: &str = "You can call tools to look things up or compute them before you answer. \
     Use them when they make the answer more accurate; answer directly when they would not help. \
     Tool results number their sources [n]: cite those numbers after the claims they support.";

/// Everything a run needs, owned (a stream runs after the handler returns).
struct Run<H: Host> {
    host: H,
    request_id: String,
    request: ChatRequest,
    chain: Vec<ProviderConfig>,
    retry: RetryPolicy,
    limits: Limits,
    toolbox: Toolbox,
}

/// Chat's side: the same request, whole, to the `agent` function; its answer (a stream
/// included) goes back as it is.
pub(in super::super) async fn forward<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
    bytes: bytes::Bytes,
) -> Handled {
    let request =
        super::super::gateway::on_behalf(&parts.headers, &ctx.request_id, parts.uri.path(), Tier::System2, bytes)?;
    super::super::gateway::call(&ctx.host, "agent", request).await
}

/// The agent function: a chat body, answered on System 2 with the platform's tools (none
/// when no tool's upstream is configured: then the loop is one call on the strong model).
pub(in super::super) async fn handle<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
    body: opencode_runtime::host::Body,
) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (mut request, stream) = web::parse_json::<super::ChatBody>(&parts, &bytes)?.validate()?;
    if !request.tools.is_empty() {
        return Err(ApiError::Validation(
            "the agent runs the platform's tools; a request with its own `tools` is answered by chat".into(),
        ));
    }
    let chain = ctx.config.tier_chain_for(Tier::System2, request.model.take().as_deref())?;
    let toolbox = Toolbox::from_host(&ctx.host, &parts.headers, &ctx.request_id).await;
    run(ctx, request, chain, toolbox, stream).await
}

/// Answers `request` on the agent runtime with `toolbox`'s tools.
async fn run<H: Host>(
    ctx: &Ctx<H>,
    request: ChatRequest,
    chain: Vec<ProviderConfig>,
    toolbox: Toolbox,
    stream: bool,
) -> Handled {
    let run = Run {
        host: ctx.host.clone(),
        request_id: ctx.request_id.clone(),
        request,
        chain,
        retry: ctx.config.retry.clone(),
        limits: Limits::from_host(&ctx.host)?,
        toolbox,
    };
    if !stream {
        let (answer, answered) = run.run(None).await?;
        let mut response = web::json(http::StatusCode::OK, &Value::Object(answer));
        web::set_header(&mut response, "x-provider", &answered.provider);
        web::set_header(&mut response, "x-model", &answered.model);
        return Ok(response);
    }
    Ok(event_stream(&ctx.request_id, move |emitter| async move {
        let tools: Vec<String> = run.toolbox.tools().into_iter().map(|t| t.name).collect();
        emitter.send("start", &json!({ "id": run.request_id, "mode": "chat", "tier": "system2", "tools": tools }));
        match run.run(Some(&emitter)).await {
            Ok((answer, _)) => {
                emitter.send("usage", answer.get("usage").unwrap_or(&Value::Null));
                emitter.send("done", &done_json(answer));
            }
            Err(Stop::Broken(failure)) => emitter.stream_failed(&failure),
            Err(stop) => emitter.error(&ApiError::from(stop)),
        }
    }))
}

impl<H: Host> Run<H> {
    /// The loop. Returns the JSON answer and who wrote its last part.
    async fn run(self, emitter: Option<&Emitter>) -> Result<(Map<String, Value>, Answered), Stop> {
        let mut agent = Agent::new(&self.host, self.chain.clone(), self.retry.clone(), self.limits, emitter);
        let mut request = self.request.clone();
        request.messages.insert(0, Message::system(INSTRUCTIONS));
        request.tools = self.toolbox.tools();
        let mut cited: Vec<Source> = Vec::new();
        // Everything the model wrote, in order: a stream has sent all of it as deltas.
        let mut text = String::new();
        let mut last: Option<ChatResponse> = None;
        let mut stopped: Option<LimitHit> = None;
        loop {
            let must_answer = agent.steps_left() <= 1;
            request.tool_choice = must_answer.then_some(ToolChoice::None);
            let answer = match agent.respond("think", &request).await {
                Ok(answer) => answer,
                Err(Stop::Limit(hit)) => {
                    stopped = Some(hit);
                    break;
                }
                Err(other) => return Err(other),
            };
            text.push_str(&answer.text);
            let calls = answer.tool_calls.clone();
            if calls.is_empty() || must_answer {
                last = Some(answer);
                break;
            }
            request.messages.push(Message {
                role: Role::Assistant,
                content: answer.text,
                tool_calls: calls.clone(),
                tool_call_id: None,
            });
            let runs = calls
                .iter()
                .map(|call| {
                    let input = json!({ "tool": call.name, "arguments": call.arguments });
                    (input, self.toolbox.run(&self.host, call))
                })
                .collect();
            let results = agent.act_many("tool", runs, TOOL_CONCURRENCY, |o: &ToolOutput| o.summary.clone()).await;
            // Every call gets a result (vendors refuse a conversation with an unanswered call).
            for (call, result) in calls.iter().zip(results) {
                let content = match result {
                    Ok(Ok(output)) => output.render(&mut cited),
                    Ok(Err(problem)) => format!("The tool failed: {problem}"),
                    Err(stop) => format!("Not run: {}.", ApiError::from(stop)),
                };
                request.messages.push(Message::tool_result(call.id.clone(), content));
            }
        }
        let answered = agent.answered().cloned().unwrap_or_else(|| Answered::nobody(&self.chain));
        let answer = match (last, stopped) {
            (Some(last), _) => ChatResponse { text, ..last },
            (None, hit) => {
                let why = hit.map_or("a limit was reached", LimitHit::describe);
                if text.is_empty() {
                    text = format!("The agent stopped before it could answer: {why}.");
                    if let Some(emitter) = emitter {
                        emitter.send("delta", &json!({ "text": text }));
                    }
                }
                ChatResponse {
                    text,
                    thinking: None,
                    model: answered.model.clone(),
                    finish_reason: FinishReason::Other("limit".into()),
                    usage: Default::default(),
                    tool_calls: vec![],
                }
            }
        };
        let mut fields = answer_json(&self.request_id, Mode::Chat, &answer, &answered);
        fields.insert("object".into(), json!("chat.completion"));
        fields.insert("usage".into(), agent.usage_json());
        fields.insert("tier".into(), json!("system2"));
        fields.insert(
            "citations".into(),
            Value::Array(cited.iter().enumerate().map(|(i, s)| s.citation(i + 1)).collect()),
        );
        fields.insert("agent".into(), agent.report());
        Ok((fields, answered))
    }
}
