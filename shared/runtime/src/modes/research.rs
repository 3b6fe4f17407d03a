//! Research: plan sub-questions, search them concurrently, write a cited report. It runs on a
//! [`BoundedRun`] (System 2 by default), so every model call and search is a step within the
//! limits.
//!
//! Searches run at most four at a time: Workers allow six open connections per request, and the
//! model's stream needs one. Each search may retry and fall back ([`crate::search::search`]),
//! all within the step, time and subrequest budget. A limit reached before the report is
//! written still answers, listing the sources found; when no search succeeds the answer is the
//! search's error.

use opencode_core::model::{ChatRequest, ChatResponse, FinishReason, Message};
use opencode_core::providers::ProviderConfig;
use opencode_core::routing::{Mode, Tier};
use opencode_core::search::SearchResult;

use super::{last_user_text, Delivery, ModeError};
use crate::answer::{event_stream, Answer, Citation, Details, Event, Failure, Head, Reply, Sink, Start, Streamed};
use crate::bounded::{BoundedRun, Limits, RunReport, Step, StepData, Stop};
use crate::executor::RetryPolicy;
use crate::host::Host;
use crate::search::{self, SearchConfig, SearchFailure, SearchOutcome};

/// The phrase the provider simulator recognises as a planning prompt (tests/provider-sim).
const PLAN_MARKER: &str = "Reply with a JSON array of sub-questions";
const SEARCH_CONCURRENCY: usize = 4;
/// Most sources given to the writer.
const MAX_SOURCES: usize = 12;

/// A research question, checked.
#[derive(Debug, Clone)]
pub struct ResearchJob {
    pub request: ChatRequest,
    pub search: SearchConfig,
    pub chain: Vec<ProviderConfig>,
    pub retry: RetryPolicy,
    pub limits: Limits,
    pub tier: Tier,
    pub max_sub_questions: usize,
    pub max_results: usize,
}

/// How one sub-question's search went.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchEntry {
    Found {
        query: String,
        provider: String,
        results: usize,
    },
    Failed {
        query: String,
        error: SearchFailure,
    },
    /// A limit was reached before it could run.
    Skipped {
        query: String,
    },
}

/// What a research answer adds.
#[derive(Debug, Clone, PartialEq)]
pub struct ResearchDetails {
    pub sub_questions: Vec<String>,
    pub searches: Vec<SearchEntry>,
    pub run: RunReport,
}

impl Details for ResearchDetails {
    type Progress = ResearchProgress;
}

/// A research stream's progress.
#[derive(Debug, Clone, PartialEq)]
pub enum ResearchProgress {
    Step(Step),
    Plan {
        sub_questions: Vec<String>,
    },
    Searched(SearchEntry),
    /// The sources kept for the report.
    Read {
        urls: Vec<String>,
    },
    /// The report starts.
    Write {
        sources: usize,
    },
}

impl From<Step> for ResearchProgress {
    fn from(step: Step) -> Self {
        ResearchProgress::Step(step)
    }
}

/// Researches one question.
pub async fn run<H: Host>(host: &H, job: ResearchJob, delivery: Delivery) -> Result<Reply<ResearchDetails>, ModeError> {
    job.search.require()?;
    if delivery == Delivery::Whole {
        return Ok(Reply::whole(research(host, &job, None).await?));
    }
    let host = host.clone();
    let events = event_stream(move |sink: Sink<ResearchDetails>| async move {
        sink.send(Event::Start(Box::new(Start::new(Mode::Research, Some(job.tier)))));
        let result = research(&host, &job, Some(&sink)).await;
        sink.end(result.map_err(Failure::from));
    });
    Ok(Reply::Stream(Streamed { head: Head::default(), events }))
}

/// Plan, search, read, write.
async fn research<H: Host>(
    host: &H,
    job: &ResearchJob,
    sink: Option<&Sink<ResearchDetails>>,
) -> Result<Answer<ResearchDetails>, Stop> {
    let send = |progress: ResearchProgress| {
        if let Some(sink) = sink {
            sink.progress(progress);
        }
    };
    let question = last_user_text(&job.request).to_owned();
    let mut run = BoundedRun::new(host, job.chain.clone(), job.retry.clone(), job.limits, sink);

    let plan = run.think("plan", &plan_request(job, &question)).await?;
    let sub_questions = parse_plan(&plan.text, job.max_sub_questions, &question);
    send(ResearchProgress::Plan { sub_questions: sub_questions.clone() });

    let runs = sub_questions
        .iter()
        .map(|q| (StepData::Query { query: q.clone() }, search::search(host, &job.search, q, job.max_results)))
        .collect();
    let summary = |o: &SearchOutcome| StepData::Found { provider: o.provider.clone(), results: o.results.len() };
    let found = run.act_many("search", runs, SEARCH_CONCURRENCY, summary).await;
    let mut searches = Vec::new();
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for (query, result) in sub_questions.iter().zip(found) {
        let query = query.clone();
        let entry = match result {
            Ok(Ok(outcome)) => {
                let entry =
                    SearchEntry::Found { query, provider: outcome.provider.clone(), results: outcome.results.len() };
                outcomes.push(outcome);
                entry
            }
            Ok(Err(error)) => {
                failures.push(error.clone());
                SearchEntry::Failed { query, error }
            }
            Err(_) => SearchEntry::Skipped { query },
        };
        if !matches!(entry, SearchEntry::Skipped { .. }) {
            send(ResearchProgress::Searched(entry.clone()));
        }
        searches.push(entry);
    }
    if outcomes.is_empty() {
        // Nothing to write from: the first search error says why (every provider failed, or
        // none is configured).
        return Err(Stop::Failed(match failures.into_iter().next() {
            Some(failure) => failure.into(),
            None => {
                ModeError::Invalid("the research stopped before any search could run: raise AGENT_MAX_STEPS".into())
            }
        }));
    }
    let sources = dedupe(&outcomes);
    send(ResearchProgress::Read { urls: sources.iter().map(|s| s.url.clone()).collect() });

    send(ResearchProgress::Write { sources: sources.len() });
    let response = match run.write(&write_request(job, &sources)).await {
        Ok(response) => response,
        Err(Stop::Limit(hit)) => partial(hit.describe(), &sources),
        Err(other) => return Err(other),
    };
    let details = ResearchDetails { sub_questions, searches, run: run.report() };
    let mut answer = Answer::new(Mode::Research, run.answered(), response, details);
    answer.response.usage = run.usage();
    answer.cost_usd = run.cost_usd();
    answer.tier = Some(job.tier);
    answer.citations = (1..)
        .zip(&sources)
        .map(|(index, s)| Citation::Web { index, url: s.url.clone(), title: s.title.clone() })
        .collect();
    Ok(answer)
}

fn plan_request(job: &ResearchJob, question: &str) -> ChatRequest {
    let system = format!(
        "You plan web research. Break the user's question into at most {} self-contained \
         sub-questions that together cover it. {PLAN_MARKER}, nothing else.",
        job.max_sub_questions
    );
    ChatRequest {
        messages: vec![Message::system(system), Message::user(question.to_owned())],
        model: job.request.model.clone(),
        temperature: Some(0.0),
        max_tokens: Some(400),
        ..ChatRequest::default()
    }
}

fn write_request(job: &ResearchJob, sources: &[SearchResult]) -> ChatRequest {
    let mut system = String::from(
        "Write a concise research report answering the user's question from the numbered sources \
         below. Cite sources as [n] after the claims they support. Use only these sources; where \
         they do not answer part of the question, say so.\n\nSources:\n",
    );
    for (n, source) in (1usize..).zip(sources) {
        system.push_str(&format!("\n[{n}] {} — {}\n{}\n", source.title, source.url, source.snippet));
    }
    let mut request = job.request.clone();
    request.messages.insert(0, Message::system(system));
    request
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
        let marker = |c: char| c.is_ascii_digit() || "-*.) ".contains(c);
        text.lines().map(|line| line.trim().trim_start_matches(marker).to_string()).collect()
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

/// The answer when a limit stopped the run before the report was written.
fn partial(why: &str, sources: &[SearchResult]) -> ChatResponse {
    let mut text = format!("The research stopped before the report was written: {why}. Sources found:");
    for (n, source) in (1usize..).zip(sources) {
        text.push_str(&format!("\n[{n}] {} — {}", source.title, source.url));
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
