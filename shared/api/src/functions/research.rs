//! `POST /v1/research`: plan sub-questions, search them concurrently, synthesize a cited
//! report. It runs on the agent runtime (System 2 by default), so every model call and search
//! is a step within `AGENT_MAX_*`.
//!
//! Body: the chat body plus `max_sub_questions` (1–6, default 3) and `max_results` per search
//! (1–10, default 3). SSE: `start`, `plan` (the sub-questions), `step` (each model call and
//! search as it finishes), `search` (per sub-question: provider and results), `read` (the
//! sources kept), `write` (the report starts), `delta`s, `usage`, `done`.
//!
//! Searches run at most four at a time: Workers allow six open connections per request, and
//! the model's stream needs one. Each search may retry and fall back (search/run.rs), all
//! within the step, time and subrequest budget.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::mode::{answer_json, count, done_json, event_stream, parse_mode_body, requested_tier, Emitter};
use super::{Ctx, Handled};
use crate::agent::{Agent, Limits, Stop};
use crate::error::ApiError;
use crate::web;
use opencode_core::model::{ChatRequest, ChatResponse, FinishReason, Message, Role};
use opencode_core::routing::{Mode, Tier};
use opencode_core::search::SearchResult;
use opencode_runtime::executor::Answered;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::search::{self, SearchConfig, SearchOutcome};

/// The phrase the provider simulator recognises as a planning prompt (tests/provider-sim).
const PLAN_MARKER: &str = "Reply with a JSON array of sub-questions";
const SEARCH_CONCURRENCY: usize = 4;
/// Most sources given to the writer.
const MAX_SOURCES: usize = 12;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    max_sub_questions: Option<Value>,
    max_results: Option<Value>,
}

/// Everything a run needs, owned (a stream runs after the handler returns).
struct Job<H: Host> {
    host: H,
    request_id: String,
    request: ChatRequest,
    question: String,
    chain: Vec<opencode_core::providers::ProviderConfig>,
    retry: opencode_runtime::executor::RetryPolicy,
    limits: Limits,
    search: SearchConfig,
    tier: Tier,
    max_sub_questions: usize,
    max_results: usize,
}

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (chat, options) = parse_mode_body::<Options>(&parts, &bytes, &["max_sub_questions", "max_results"])?;
    let (mut request, stream) = chat.validate()?;
    super::mode::refuse_tools(&request, Mode::Research, false)?;
    let max_sub_questions = count("max_sub_questions", options.max_sub_questions.as_ref(), 3, 6)?;
    let max_results = count("max_results", options.max_results.as_ref(), 3, opencode_core::search::MAX_RESULTS)?;
    let search = SearchConfig::from_host(&ctx.host, ctx.config.retry.clone())?;
    search.require()?;
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System2);
    let question =
        request.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.clone()).unwrap_or_default();
    let job = Job {
        host: ctx.host.clone(),
        request_id: ctx.request_id.clone(),
        chain: ctx.config.tier_chain_for(tier, request.model.take().as_deref())?,
        retry: ctx.config.retry.clone(),
        limits: Limits::from_host(&ctx.host)?,
        request,
        question,
        search,
        tier,
        max_sub_questions,
        max_results,
    };
    if !stream {
        let answer = job.run(None).await?;
        return Ok(web::json(http::StatusCode::OK, &Value::Object(answer)));
    }
    Ok(event_stream(&ctx.request_id, move |emitter| async move {
        emitter.send("start", &json!({ "id": job.request_id, "mode": "research", "tier": job.tier }));
        match job.run(Some(&emitter)).await {
            Ok(answer) => {
                emitter.send("usage", answer.get("usage").unwrap_or(&Value::Null));
                emitter.send("done", &done_json(answer));
            }
            Err(Stop::Broken(failure)) => emitter.stream_failed(&failure),
            Err(stop) => emitter.error(&ApiError::from(stop)),
        }
    }))
}

impl<H: Host> Job<H> {
    /// Plan, search, read, write. Returns the JSON answer.
    async fn run(self, emitter: Option<&Emitter>) -> Result<Map<String, Value>, Stop> {
        let send = |event: &str, data: Value| {
            if let Some(emitter) = emitter {
                emitter.send(event, &data);
            }
        };
        let mut agent = Agent::new(&self.host, self.chain.clone(), self.retry.clone(), self.limits, emitter);

        let plan = agent.think("plan", &self.plan_request()).await?;
        let sub_questions = parse_plan(&plan.text, self.max_sub_questions, &self.question);
        send("plan", json!({ "sub_questions": sub_questions }));

        let runs = sub_questions
            .iter()
            .map(|q| {
                let search = async {
                    search::search(&self.host, &self.search, q, self.max_results).await.map_err(ApiError::from)
                };
                (json!({ "query": q }), search)
            })
            .collect();
        let found = agent
            .act_many(
                "search",
                runs,
                SEARCH_CONCURRENCY,
                |o: &SearchOutcome| json!({ "provider": o.provider, "results": o.results.len() }),
            )
            .await;
        let mut searches = Vec::new();
        let mut outcomes = Vec::new();
        let mut failures = Vec::new();
        for (query, result) in sub_questions.iter().zip(found) {
            match result {
                Ok(Ok(outcome)) => {
                    let entry =
                        json!({ "query": query, "provider": outcome.provider, "results": outcome.results.len() });
                    send("search", entry.clone());
                    searches.push(entry);
                    outcomes.push(outcome);
                }
                Ok(Err(err)) => {
                    let entry = json!({ "query": query, "error": err.to_json(&self.request_id) });
                    send("search", entry.clone());
                    searches.push(entry);
                    failures.push(err);
                }
                Err(_) => searches.push(json!({ "query": query, "skipped": "limit reached" })),
            }
        }
        if outcomes.is_empty() {
            // Nothing to write from: the first search error says why (every provider failed,
            // or none is configured).
            return Err(Stop::Failed(failures.into_iter().next().unwrap_or_else(|| {
                ApiError::Validation("the research stopped before any search could run: raise AGENT_MAX_STEPS".into())
            })));
        }
        let sources = dedupe(&outcomes);
        send("read", json!({ "sources": sources.len(), "urls": sources.iter().map(|s| &s.url).collect::<Vec<_>>() }));

        send("write", json!({ "sources": sources.len() }));
        let (answer, answered) = match agent.write(&self.write_request(&sources)).await {
            Ok(answer) => {
                let answered = agent.answered().cloned().unwrap_or_else(|| Answered::nobody(&self.chain));
                (answer, answered)
            }
            Err(Stop::Limit(hit)) => (
                partial(hit.describe(), &sources),
                agent.answered().cloned().unwrap_or_else(|| Answered::nobody(&self.chain)),
            ),
            Err(other) => return Err(other),
        };
        let mut fields = answer_json(&self.request_id, Mode::Research, &answer, &answered);
        fields.insert("usage".into(), agent.usage_json());
        fields.insert("tier".into(), json!(self.tier));
        fields.insert("sub_questions".into(), json!(sub_questions));
        fields.insert("searches".into(), Value::Array(searches));
        fields.insert("citations".into(), citations(&sources));
        fields.insert("agent".into(), agent.report());
        Ok(fields)
    }

    fn plan_request(&self) -> ChatRequest {
        let system = format!(
            "You plan web research. Break the user's question into at most {} self-contained \
             sub-questions that together cover it. {PLAN_MARKER}, nothing else.",
            self.max_sub_questions
        );
        ChatRequest {
            messages: vec![Message::system(system), Message::user(self.question.clone())],
            model: self.request.model.clone(),
            temperature: Some(0.0),
            max_tokens: Some(400),
            ..ChatRequest::default()
        }
    }

    fn write_request(&self, sources: &[SearchResult]) -> ChatRequest {
        let mut system = String::from(
            "Write a concise research report answering the user's question from the numbered sources \
             below. Cite sources as [n] after the claims they support. Use only these sources; where \
             they do not answer part of the question, say so.\n\nSources:\n",
        );
        for (i, source) in sources.iter().enumerate() {
            system.push_str(&format!("\n[{}] {} — {}\n{}\n", i + 1, source.title, source.url, source.snippet));
        }
        let mut request = self.request.clone();
        request.messages.insert(0, Message::system(system));
        request
    }
}

/// The planner's sub-questions: a JSON array of strings anywhere in its answer, else one per
/// non-empty line; the question itself when neither gives any. At most `max`, no duplicates.
fn parse_plan(text: &str, max: usize, question: &str) -> Vec<String> {
    let from_json = text
        .find('[')
        .zip(text.rfind(']'))
        .and_then(|(start, end)| text.get(start..=end))
        .and_then(|array| serde_json::from_str::<Vec<String>>(array).ok());
    let candidates = from_json.unwrap_or_else(|| {
        text.lines()
            .map(|line| line.trim().trim_start_matches(|c: char| c.is_ascii_digit() || "-*.) ".contains(c)).to_string())
            .collect()
    });
    let mut out: Vec<String> = Vec::new();
    for candidate in candidates {
        let candidate: String = candidate.trim().chars().take(300).collect();
        if !candidate.is_empty() && !out.contains(&candidate) && out.len() < max {
            out.push(candidate);
        }
    }
    if out.is_empty() {
        out.push(question.chars().take(300).collect());
    }
    out
}

/// Every result once (by URL), in search order, at most `MAX_SOURCES`.
fn dedupe(outcomes: &[SearchOutcome]) -> Vec<SearchResult> {
    let mut sources: Vec<SearchResult> = Vec::new();
    for result in outcomes.iter().flat_map(|o| &o.results) {
        if sources.len() < MAX_SOURCES && !sources.iter().any(|s| s.url == result.url) {
            sources.push(result.clone());
        }
    }
    sources
}

fn citations(sources: &[SearchResult]) -> Value {
    Value::Array(
        sources.iter().enumerate().map(|(i, s)| json!({ "index": i + 1, "url": s.url, "title": s.title })).collect(),
    )
}

/// The answer when a limit stopped the run before the report was written.
fn partial(why: &str, sources: &[SearchResult]) -> ChatResponse {
    let mut text = format!("The research stopped before the report was written: {why}. Sources found:");
    for (i, source) in sources.iter().enumerate() {
        text.push_str(&format!("\n[{}] {} — {}", i + 1, source.title, source.url));
    }
    ChatResponse { text, finish_reason: FinishReason::Other("limit".into()), ..ChatResponse::default() }
}

#[cfg(test)]
mod tests {
    use super::parse_plan;

    #[test]
    fn plans_are_read_from_json_or_lines_and_bounded() {
        assert_eq!(parse_plan(r#"Sure: ["a?", "b?", "a?", "c?"]"#, 2, "q"), ["a?", "b?"]);
        assert_eq!(parse_plan("1. first\n2) second\n\n- third", 5, "q"), ["first", "second", "third"]);
        assert_eq!(parse_plan("   ", 3, "the question"), ["the question"]);
    }
}
