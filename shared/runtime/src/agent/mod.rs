//! The agent: chat on System 2, the strong models in a [`BoundedRun`] with the platform's own
//! tools ([`platform_tools`]). It is deployed as its own function, `agent`, which chat forwards
//! System 2 requests to, so that chat's Wasm, on the System 1 hot path, carries none of it.
//!
//! Each round the model either answers or calls tools; the calls run concurrently, their results
//! go back as tool messages, and the loop goes on until the model answers or a limit
//! (`AGENT_MAX_*`) stops it. The last step the limits allow is made with `tool_choice: none`, so
//! a run that reaches its step limit still ends with an answer. The answer cites every source a
//! tool numbered; a stream carries each step as it finishes and the model's text as it is
//! written.

pub mod platform_tools;

use opencode_core::model::{ChatRequest, ChatResponse, FinishReason, Message, Role, ThinkingBlock, ToolChoice};
use opencode_core::providers::ProviderConfig;
use opencode_core::routing::{Mode, Tier};

use crate::answer::{
    event_stream, Answer, CacheStatus, Citation, Details, Event, Failure, Head, Reply, Sink, Start, Streamed,
};
use crate::bounded::{BoundedRun, LimitHit, Limits, RunReport, Step, StepData, Stop};
use crate::executor::RetryPolicy;
use crate::host::Host;
use crate::modes::{Delivery, ModeError};
use platform_tools::{Source, ToolOutput, Toolbox};

/// Tool runs in flight at once: Workers allow six open connections per request.
const TOOL_CONCURRENCY: usize = 4;

const INSTRUCTIONS: &str = "You can call tools to look things up or compute them before you answer. \
     Use them when they make the answer more accurate; answer directly when they would not help. \
     Tool results number their sources [n]: cite those numbers after the claims they support.";

/// A System 2 chat turn, checked: the caller brought no tools of its own.
#[derive(Debug, Clone)]
pub struct AgentJob {
    pub request: ChatRequest,
    pub chain: Vec<ProviderConfig>,
    pub retry: RetryPolicy,
    pub limits: Limits,
    pub toolbox: Toolbox,
}

/// What an agent answer adds: the run's steps.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentDetails {
    pub run: RunReport,
}

impl Details for AgentDetails {
    type Progress = Step;
}

/// Answers one turn on the agent runtime with the job's tools (none when no tool's upstream is
/// configured: then the loop is one call on the strong model).
pub async fn run<H: Host>(host: &H, job: AgentJob, delivery: Delivery) -> Result<Reply<AgentDetails>, ModeError> {
    if delivery == Delivery::Whole {
        return Ok(Reply::whole(agent(host, &job, None).await?));
    }
    let host = host.clone();
    let events = event_stream(move |sink: Sink<AgentDetails>| async move {
        let mut start = Start::new(Mode::Chat, Some(Tier::System2));
        start.tools = Some(job.toolbox.tools().into_iter().map(|t| t.name).collect());
        sink.send(Event::Start(Box::new(start)));
        let result = agent(&host, &job, Some(&sink)).await;
        sink.end(result.map_err(Failure::from));
    });
    Ok(Reply::Stream(Streamed { head: Head { answered: None, cache: Some(CacheStatus::Miss) }, events }))
}

/// The loop.
async fn agent<H: Host>(
    host: &H,
    job: &AgentJob,
    sink: Option<&Sink<AgentDetails>>,
) -> Result<Answer<AgentDetails>, Stop> {
    let mut run = BoundedRun::new(host, job.chain.clone(), job.retry.clone(), job.limits, sink);
    let mut request = job.request.clone();
    request.messages.insert(0, Message::system(INSTRUCTIONS));
    request.tools = job.toolbox.tools();
    let mut cited: Vec<Source> = Vec::new();
    // Everything the model wrote, in order: a stream has sent all of it as deltas.
    let mut text = String::new();
    let mut last: Option<ChatResponse> = None;
    let mut stopped: Option<LimitHit> = None;
    loop {
        let must_answer = run.steps_left() <= 1;
        request.tool_choice = must_answer.then_some(ToolChoice::None);
        let answer = match run.respond("think", &request).await {
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
        // Signed reasoning goes back with its calls (Anthropic requires it with thinking on).
        let thinking = match (answer.thinking, answer.thinking_signature) {
            (Some(thinking), Some(signature)) => vec![ThinkingBlock::Thinking { thinking, signature }],
            _ => Vec::new(),
        };
        request.messages.push(Message {
            role: Role::Assistant,
            content: answer.text,
            tool_calls: calls.clone(),
            thinking,
            ..Message::default()
        });
        let runs = calls
            .iter()
            .map(|call| {
                let input = StepData::Call { tool: call.name.clone(), arguments: call.arguments.clone() };
                (input, job.toolbox.run(host, call))
            })
            .collect();
        let results = run.act_many("tool", runs, TOOL_CONCURRENCY, |o: &ToolOutput| o.summary.clone()).await;
        // Every call gets a result (vendors refuse a conversation with an unanswered call).
        for (call, result) in calls.iter().zip(results) {
            let content = match result {
                Ok(Ok(output)) => output.render(&mut cited),
                Ok(Err(problem)) => format!("The tool failed: {problem}"),
                Err(stop) => format!("Not run: {}.", ModeError::from(stop)),
            };
            request.messages.push(Message::tool_result(call.id.clone(), content));
        }
    }
    let answered = run.answered();
    let response = match last {
        Some(last) => ChatResponse { text, ..last },
        None => {
            let why = stopped.map_or("a limit was reached", LimitHit::describe);
            if text.is_empty() {
                text = format!("The agent stopped before it could answer: {why}.");
                if let Some(sink) = sink {
                    sink.delta(text.clone());
                }
            }
            ChatResponse {
                text,
                thinking: None,
                thinking_signature: None,
                model: answered.model.clone(),
                finish_reason: FinishReason::Other("limit".into()),
                usage: Default::default(),
                tool_calls: vec![],
            }
        }
    };
    let mut answer = Answer::new(Mode::Chat, answered, response, AgentDetails { run: run.report() });
    answer.response.usage = run.usage();
    answer.cost_usd = run.cost_usd();
    answer.tier = Some(Tier::System2);
    answer.cache = Some(CacheStatus::Miss);
    answer.citations = (1..).zip(&cited).map(|(n, s)| s.citation(n)).collect();
    Ok(answer)
}

impl Source {
    fn citation(&self, index: usize) -> Citation {
        match self {
            Source::Web { url, title } => Citation::Web { index, url: url.clone(), title: title.clone() },
            Source::Knowledge { document_id, chunk, score } => Citation::Passage {
                index,
                document_id: document_id.clone(),
                chunk: *chunk,
                score: crate::modes::knowledge::round(*score),
            },
        }
    }
}
