//! A bounded run: the System 2 loop of model calls and tool runs that the agent, research and
//! code are built on, within step, time, token and cost limits.
//!
//! Every step is recorded ([`Step`]: what ran, how long, tokens or a short result) and, when the
//! caller streams, sent at once to the reply's sink. Limits are checked before each step; a step
//! that would start past a limit stops the run with [`Stop::Limit`] and the mode answers with
//! what it has, saying which limit was reached. Tool futures run under the time left.

use crate::trace::SpanGuard;
use opencode_core::telemetry::SpanKind;
use std::fmt::Display;
use std::future::Future;

use serde::Serialize;

use opencode_core::model::{ChatRequest, ChatResponse, Usage};
use opencode_core::providers::ProviderConfig;
use opencode_core::sandbox::Language;

use crate::answer::{relay, Details, Event, Failure, Sink};
use crate::executor::{self, with_timeout, Answered, RetryPolicy, StreamFailure};
use crate::host::Host;
use crate::modes::ModeError;
use opencode_core::flags::{Flag, Flags};

/// The bounds of one run, from `AGENT_MAX_STEPS`, `AGENT_MAX_TIME_MS`, `AGENT_MAX_TOKENS` and
/// `AGENT_MAX_COST_USD`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    pub max_steps: u32,
    pub max_time_ms: u64,
    pub max_tokens: u64,
    /// US dollars at list prices (pricing.rs); calls on a model without a price add nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_steps: 8, max_time_ms: 120_000, max_tokens: 60_000, max_cost_usd: None }
    }
}

impl Limits {
    /// From the flags (`system2.max_thinking_time`, `platform.agent.*`, which the
    /// `AGENT_MAX_*` variables set at deploy time).
    pub fn from_flags(flags: &Flags) -> Limits {
        let cost = flags.number(Flag::AgentMaxCostUsd);
        Limits {
            max_steps: u32::try_from(flags.whole(Flag::AgentMaxSteps)).unwrap_or(u32::MAX),
            // Milliseconds, at least one.
            max_time_ms: ((flags.number(Flag::MaxThinkingTime) * 1000.0).round() as u64).max(1),
            max_tokens: flags.whole(Flag::AgentMaxTokens),
            max_cost_usd: (cost > 0.0).then_some(cost),
        }
    }
}

/// Which limit stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitHit {
    Steps,
    Time,
    Tokens,
    Cost,
}

impl LimitHit {
    pub fn describe(self) -> &'static str {
        match self {
            LimitHit::Steps => "the step limit (AGENT_MAX_STEPS) was reached",
            LimitHit::Time => "the time limit (AGENT_MAX_TIME_MS) was reached",
            LimitHit::Tokens => "the token limit (AGENT_MAX_TOKENS) was reached",
            LimitHit::Cost => "the cost limit (AGENT_MAX_COST_USD) was reached",
        }
    }
}

/// Why a step did not produce its result.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// A limit was reached before the step could start (or while it ran, for time).
    Limit(LimitHit),
    /// A model call failed on every provider.
    Failed(ModeError),
    /// The streamed final answer broke after it had started (the client has part of it).
    Broken(StreamFailure),
}

impl From<Stop> for ModeError {
    fn from(stop: Stop) -> ModeError {
        match stop {
            Stop::Limit(hit) => ModeError::Invalid(format!("the request could not be completed: {}", hit.describe())),
            Stop::Failed(err) => err,
            Stop::Broken(failure) => ModeError::Internal(failure.message),
        }
    }
}

impl From<Stop> for Failure {
    fn from(stop: Stop) -> Failure {
        match stop {
            Stop::Broken(failure) => Failure::Interrupted(failure),
            other => Failure::Failed(other.into()),
        }
    }
}

/// What a tool step was asked, or what it found: a short account, never the whole result.
#[derive(Debug, Clone, PartialEq)]
pub enum StepData {
    /// A search or a lookup.
    Query { query: String },
    /// A program sent to the sandbox.
    Program { language: Language, bytes: usize, stdin_bytes: usize },
    /// One of the platform's tools, as the model called it.
    Call { tool: String, arguments: String },
    /// Web results.
    Found { provider: String, results: usize },
    /// Passages of the tenant's documents.
    Hits { hits: usize },
    /// A program's run.
    Ran { status: Option<String>, exit_code: Option<i32>, stdout_bytes: usize },
}

/// One model call of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelStep {
    /// 1-based, in the order steps finished.
    pub index: usize,
    pub name: String,
    pub provider: String,
    pub model: String,
    pub ms: u64,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    /// The tools the call asked for, by name.
    pub tool_calls: Vec<String>,
}

/// One tool run of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolStep {
    pub index: usize,
    pub name: String,
    pub input: StepData,
    pub ms: u64,
    /// What it found, or why it failed (a tool's failure is a result, not a stop).
    pub outcome: Result<StepData, String>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Model(ModelStep),
    Tool(ToolStep),
}

/// The run as an answer reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    pub steps: Vec<Step>,
    pub limits: Limits,
    pub elapsed_ms: u64,
    pub stopped: Option<LimitHit>,
}

/// One run of the loop, sending its steps to the reply's sink when the caller streams.
pub struct BoundedRun<'s, H: Host, D: Details> {
    host: H,
    chain: Vec<ProviderConfig>,
    retry: RetryPolicy,
    limits: Limits,
    started_ms: u64,
    steps: Vec<Step>,
    usage: Usage,
    /// Dollars spent on priced calls, and whether some call had no price.
    cost_usd: f64,
    unpriced: bool,
    answered: Option<Answered>,
    sink: Option<&'s Sink<D>>,
    stopped: Option<LimitHit>,
}

impl<'s, H: Host, D: Details> BoundedRun<'s, H, D>
where
    D::Progress: From<Step>,
{
    /// A run on `chain` (usually the strong tier's), streaming to `sink` if any.
    pub fn new(
        host: &H,
        chain: Vec<ProviderConfig>,
        retry: RetryPolicy,
        limits: Limits,
        sink: Option<&'s Sink<D>>,
    ) -> Self {
        BoundedRun {
            host: host.clone(),
            chain,
            retry,
            limits,
            started_ms: host.now_ms(),
            steps: Vec::new(),
            usage: Usage::default(),
            cost_usd: 0.0,
            unpriced: false,
            answered: None,
            sink,
            stopped: None,
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.host.now_ms().saturating_sub(self.started_ms)
    }

    fn time_left_ms(&self) -> u64 {
        self.limits.max_time_ms.saturating_sub(self.elapsed_ms())
    }

    /// Whether another step may start.
    pub fn check(&mut self) -> Result<(), Stop> {
        let hit = if self.steps.len() as u64 >= u64::from(self.limits.max_steps) {
            Some(LimitHit::Steps)
        } else if self.time_left_ms() == 0 {
            Some(LimitHit::Time)
        } else if self.usage.total_tokens() >= self.limits.max_tokens {
            Some(LimitHit::Tokens)
        } else if self.limits.max_cost_usd.is_some_and(|max| self.cost_usd >= max) {
            Some(LimitHit::Cost)
        } else {
            None
        };
        match hit {
            Some(hit) => {
                self.stopped = Some(hit);
                Err(Stop::Limit(hit))
            }
            None => Ok(()),
        }
    }

    fn tool_step<T, E: Display>(
        &self,
        name: &str,
        input: StepData,
        ms: u64,
        result: &Result<T, E>,
        summary: impl FnOnce(&T) -> StepData,
    ) -> Step {
        let outcome = match result {
            Ok(value) => Ok(summary(value)),
            Err(err) => Err(err.to_string()),
        };
        Step::Tool(ToolStep { index: self.steps.len().saturating_add(1), name: name.to_owned(), input, ms, outcome })
    }

    /// Records a step, and sends it when the caller streams.
    fn record(&mut self, step: Step) {
        if let Step::Tool(tool) = &step {
            // A tool step is a span of the request (its model steps are the executor's).
            let name = format!("execute_tool {}", tool.name);
            let span = SpanGuard::start(&self.host, SpanKind::Internal, name)
                .since(self.host.now_ms().saturating_sub(tool.ms));
            span.set("gen_ai.operation.name", "execute_tool");
            span.set("gen_ai.tool.name", tool.name.as_str());
            span.set("opencode.agent.step", tool.index as u64);
            if let Err(why) = &tool.outcome {
                span.fail("tool_error", why);
            }
        }
        if let Some(sink) = self.sink {
            sink.send(Event::Progress(step.clone().into()));
        }
        self.steps.push(step);
    }

    /// One model call (not streamed), counted as a step.
    pub async fn think(&mut self, name: &str, request: &ChatRequest) -> Result<ChatResponse, Stop> {
        self.check()?;
        let begun = self.host.now_ms();
        let call = executor::complete(&self.host, &self.chain, request, &self.retry);
        let (answer, answered) = match with_timeout(&self.host, self.time_left_ms(), call).await {
            None => return Err(self.time_out()),
            Some(result) => result.map_err(|failed| Stop::Failed(failed.into()))?,
        };
        let step = self.model_step(name, &answered, &answer, self.host.now_ms().saturating_sub(begun));
        self.count(&answered, &answer.usage);
        self.record(step);
        self.answered = Some(answered);
        Ok(answer)
    }

    /// One tool run, counted as a step: `run` under the time left, `summary` describing its
    /// result in the step record. A tool's own failure is its result, not a stop.
    pub async fn act<T, E: Display>(
        &mut self,
        name: &str,
        input: StepData,
        run: impl Future<Output = Result<T, E>>,
        summary: impl FnOnce(&T) -> StepData,
    ) -> Result<Result<T, E>, Stop> {
        self.check()?;
        let begun = self.host.now_ms();
        let Some(result) = with_timeout(&self.host, self.time_left_ms(), run).await else {
            return Err(self.time_out());
        };
        let step = self.tool_step(name, input, self.host.now_ms().saturating_sub(begun), &result, summary);
        self.record(step);
        Ok(result)
    }

    /// Several runs of one tool at once, at most `concurrency` in flight, each counted as a
    /// step when it finishes (in finishing order). Runs beyond the steps left are not started;
    /// their slots hold `Err(Stop::Limit(Steps))`. Results keep the order of `runs`.
    pub async fn act_many<T, E: Display, Fut: Future<Output = Result<T, E>>>(
        &mut self,
        name: &str,
        runs: Vec<(StepData, Fut)>,
        concurrency: usize,
        summary: impl Fn(&T) -> StepData,
    ) -> Vec<Result<Result<T, E>, Stop>> {
        let mut results: Vec<Option<Result<Result<T, E>, Stop>>> = runs.iter().map(|_| None).collect();
        if let Err(stop) = self.check() {
            return results.into_iter().map(|_| Err(stop.clone())).collect();
        }
        let left = self.steps_left();
        let time_left = self.time_left_ms();
        let host = self.host.clone();
        let mut queue = runs.into_iter().take(left).enumerate().map(|(i, (input, run))| {
            let host = host.clone();
            Box::pin(async move {
                let begun = host.now_ms();
                let outcome = with_timeout(&host, time_left, run).await;
                (i, input, outcome, host.now_ms().saturating_sub(begun))
            })
        });
        // At most `concurrency` in flight, each taken as it finishes. (A hand-rolled pool: n is
        // small, and futures' `buffer_unordered` costs ~10 KiB of Wasm per caller.)
        let mut in_flight = Vec::new();
        loop {
            while in_flight.len() < concurrency.max(1) {
                match queue.next() {
                    Some(run) => in_flight.push(run),
                    None => break,
                }
            }
            if in_flight.is_empty() {
                break;
            }
            let (k, (i, input, outcome, ms)) = std::future::poll_fn(|cx| {
                for (k, run) in in_flight.iter_mut().enumerate() {
                    if let std::task::Poll::Ready(done) = run.as_mut().poll(cx) {
                        return std::task::Poll::Ready((k, done));
                    }
                }
                std::task::Poll::Pending
            })
            .await;
            drop(in_flight.swap_remove(k));
            let Some(slot) = results.get_mut(i) else { continue };
            let Some(result) = outcome else {
                self.stopped = Some(LimitHit::Time);
                *slot = Some(Err(Stop::Limit(LimitHit::Time)));
                continue;
            };
            let step = self.tool_step(name, input, ms, &result, &summary);
            self.record(step);
            *slot = Some(Ok(result));
        }
        if results.iter().any(Option::is_none) {
            self.stopped.get_or_insert(LimitHit::Steps);
        }
        results.into_iter().map(|slot| slot.unwrap_or(Err(Stop::Limit(LimitHit::Steps)))).collect()
    }

    /// The final answer, counted as a step: streamed to the sink as deltas when there is one,
    /// else one call.
    pub async fn write(&mut self, request: &ChatRequest) -> Result<ChatResponse, Stop> {
        self.respond("write", request).await
    }

    /// One model call counted as a step, its text streamed to the sink as deltas when there is
    /// one (else one call, as [`BoundedRun::think`]). Tool calls are collected into the answer,
    /// not sent on: the run executes them.
    pub async fn respond(&mut self, name: &str, request: &ChatRequest) -> Result<ChatResponse, Stop> {
        let Some(sink) = self.sink else {
            return self.think(name, request).await;
        };
        self.check()?;
        let begun = self.host.now_ms();
        let open = executor::stream(&self.host, &self.chain, request, &self.retry);
        let started = match with_timeout(&self.host, self.time_left_ms(), open).await {
            None => return Err(self.time_out()),
            Some(result) => result.map_err(|failed| Stop::Failed(failed.into()))?,
        };
        let answer = relay(Some(sink), started.events, &started.answered).await.map_err(Stop::Broken)?;
        let step = self.model_step(name, &started.answered, &answer, self.host.now_ms().saturating_sub(begun));
        self.count(&started.answered, &answer.usage);
        if answer.tool_calls.is_empty() {
            // Its text has already streamed.
            self.steps.push(step);
        } else {
            // A step that calls tools is announced: the client waits through the calls.
            self.record(step);
        }
        self.answered = Some(started.answered);
        Ok(answer)
    }

    /// Adds one model call's tokens and cost to the run's.
    fn count(&mut self, answered: &Answered, usage: &Usage) {
        self.usage = self.usage.saturating_add(*usage);
        match answered.cost_usd(usage) {
            Some(cost) => self.cost_usd += cost,
            None => self.unpriced = true,
        }
    }

    fn model_step(&self, name: &str, answered: &Answered, answer: &ChatResponse, ms: u64) -> Step {
        Step::Model(ModelStep {
            index: self.steps.len().saturating_add(1),
            name: name.to_owned(),
            provider: answered.provider.clone(),
            model: answer.model.clone(),
            ms,
            usage: answer.usage,
            cost_usd: answered.cost_usd(&answer.usage),
            tool_calls: answer.tool_calls.iter().map(|c| c.name.clone()).collect(),
        })
    }

    /// How many more steps the limits allow.
    pub fn steps_left(&self) -> usize {
        (self.limits.max_steps as usize).saturating_sub(self.steps.len())
    }

    fn time_out(&mut self) -> Stop {
        self.stopped = Some(LimitHit::Time);
        Stop::Limit(LimitHit::Time)
    }

    /// Tokens used by every model call so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// What every model call so far cost; `None` when some call's model has no price.
    pub fn cost_usd(&self) -> Option<f64> {
        (!self.unpriced).then_some(self.cost_usd)
    }

    /// Who answered the last model call, else the chain's first provider (nobody was asked).
    pub fn answered(&self) -> Answered {
        self.answered.clone().unwrap_or_else(|| Answered::nobody(&self.chain))
    }

    /// Whether any model call answered.
    pub fn any_answer(&self) -> bool {
        self.answered.is_some()
    }

    /// The run as the answer reports it.
    pub fn report(&self) -> RunReport {
        RunReport {
            steps: self.steps.clone(),
            limits: self.limits,
            elapsed_ms: self.elapsed_ms(),
            stopped: self.stopped,
        }
    }
}
