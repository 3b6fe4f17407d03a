//! The platform's own tools, which the agent offers the model through each vendor's native tool
//! calling (the caller's own tools are another thing: chat hands their calls back): `web_search`, `search_knowledge` and `run_code`. Each is a
//! call to the sibling function that owns it (a service binding on Cloudflare,
//! `*.spin.internal` on Spin) with the caller's credentials: `POST /v1/search/results`,
//! `POST /v1/knowledge/search`, `POST /v1/code/run`. Chat links none of their code, and each
//! runs under its own function's limits. A tool is offered only when its upstream is
//! configured (and `search_knowledge` only when the caller's tenant has documents).
//!
//! A tool's failure is its result: the model reads it and may try something else. Results
//! are text for the model, capped, with sources numbered across the whole run (one number per
//! page or chunk) so the answer can cite them as [n].

use bytes::Bytes;
use serde_json::{json, Value};

use opencode_core::model::{Tool, ToolCall};

use crate::bounded::StepData;
use crate::host::Host;

/// The header that carries the request id to sibling functions.
const REQUEST_ID: &str = "x-request-id";

pub const WEB_SEARCH: &str = "web_search";
pub const SEARCH_KNOWLEDGE: &str = "search_knowledge";
pub const RUN_CODE: &str = "run_code";

/// Results per search, and chunks per knowledge lookup.
const RESULTS_PER_CALL: usize = 5;
/// A tool result handed to the model is cut here (program output can be long).
const MAX_RESULT_CHARS: usize = 6_000;
/// Largest answer read from a sibling function.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The tools this request may use, and how to call their functions as the caller.
#[derive(Debug, Clone)]
pub struct Toolbox {
    search: bool,
    knowledge: bool,
    sandbox: bool,
    authorization: Option<http::HeaderValue>,
    /// The request's admission marker: the tools' calls are part of it, not new requests.
    admitted: Option<http::HeaderValue>,
    request_id: String,
}

/// A source a tool found, as the answer's `citations` lists it.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Web { url: String, title: String },
    Knowledge { document_id: String, chunk: u32, score: f32 },
}

impl Source {
    /// The same page, or the same chunk: cited under one number.
    fn same_as(&self, other: &Source) -> bool {
        match (self, other) {
            (Source::Web { url: a, .. }, Source::Web { url: b, .. }) => a == b,
            (
                Source::Knowledge { document_id: a, chunk: i, .. },
                Source::Knowledge { document_id: b, chunk: j, .. },
            ) => a == b && i == j,
            _ => false,
        }
    }
}

/// What one call produced, before numbering: calls run concurrently, and their sources are
/// numbered afterwards in call order ([`ToolOutput::render`]).
pub struct ToolOutput {
    /// A short account for the step record.
    pub summary: StepData,
    found: Found,
}

enum Found {
    /// Each source with the passage the model reads.
    Sources(Vec<(Source, String)>),
    Text(String),
}

impl ToolOutput {
    /// The text the model reads. New sources are appended to `cited`; a source already there
    /// keeps its number.
    pub fn render(self, cited: &mut Vec<Source>) -> String {
        let sources = match self.found {
            Found::Text(text) => return capped(text),
            Found::Sources(sources) if sources.is_empty() => return "Nothing relevant found.".into(),
            Found::Sources(sources) => sources,
        };
        let mut text = String::new();
        for (source, passage) in sources {
            let index = match (1..).zip(cited.iter()).find_map(|(n, c)| c.same_as(&source).then_some(n)) {
                Some(n) => n,
                None => {
                    cited.push(source.clone());
                    cited.len()
                }
            };
            let heading = match &source {
                Source::Web { url, title } => format!("{title} — {url}"),
                Source::Knowledge { document_id, chunk, .. } => format!("document {document_id}, part {chunk}"),
            };
            text.push_str(&format!("[{index}] {heading}\n{passage}\n\n"));
        }
        capped(text)
    }
}

impl Toolbox {
    /// The tools whose upstreams are configured. Knowledge needs documents: the knowledge
    /// function is asked, as the caller, whether it has one.
    pub async fn from_host<H: Host>(host: &H, headers: &http::HeaderMap, request_id: &str) -> Toolbox {
        let mut toolbox = Toolbox {
            search: ["TAVILY_API_KEY", "BRAVE_API_KEY"].iter().any(|name| host.var(name).is_some()),
            knowledge: false,
            sandbox: host.var("SANDBOX_URL").is_some(),
            authorization: headers.get(http::header::AUTHORIZATION).cloned(),
            admitted: headers.get(crate::control::ADMITTED_HEADER).cloned(),
            request_id: request_id.to_owned(),
        };
        if let Ok(list) =
            toolbox.call(host, "knowledge", http::Method::GET, "/v1/knowledge/documents?limit=1", None).await
        {
            toolbox.knowledge = at(&list, "data").as_array().is_some_and(|docs| !docs.is_empty());
        }
        toolbox
    }

    /// The tool definitions sent to the model.
    pub fn tools(&self) -> Vec<Tool> {
        let query = |what: &str| {
            json!({
                "type": "object",
                "properties": { "query": { "type": "string", "description": what } },
                "required": ["query"],
            })
        };
        let mut tools = Vec::new();
        if self.search {
            tools.push(Tool {
                name: WEB_SEARCH.into(),
                description: "Search the web for current information. Returns numbered sources with URLs and snippets; cite them as [n].".into(),
                parameters: query("What to search for"),
                strict: false,
            });
        }
        if self.knowledge {
            tools.push(Tool {
                name: SEARCH_KNOWLEDGE.into(),
                description: "Search the user's own uploaded documents. Returns numbered passages; cite them as [n]."
                    .into(),
                parameters: query("What to look up in the documents"),
                strict: false,
            });
        }
        if self.sandbox {
            tools.push(Tool {
                name: RUN_CODE.into(),
                description: "Run a Python or JavaScript program in an isolated sandbox without network access and return its stdout, stderr and exit code. Use it to compute or check things exactly.".into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "language": { "type": "string", "enum": ["python", "javascript"] },
                        "code": { "type": "string", "description": "The whole program" },
                        "stdin": { "type": "string" },
                    },
                    "required": ["language", "code"],
                }),
                // Strict mode would need `stdin` required; the toolbox checks arguments itself.
                strict: false,
            });
        }
        tools
    }

    /// Runs one call. A failure (bad arguments, a function or upstream down) is returned as
    /// text for the model.
    pub async fn run<H: Host>(&self, host: &H, call: &ToolCall) -> Result<ToolOutput, String> {
        let arguments = if call.arguments.trim().is_empty() { "{}" } else { call.arguments.as_str() };
        let args: Value =
            serde_json::from_str(arguments).map_err(|e| format!("the arguments are not valid JSON ({e})"))?;
        let text = |name: &str| args.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let string = |value: &Value, key: &str| at(value, key).as_str().unwrap_or_default().to_owned();
        match call.name.as_str() {
            WEB_SEARCH if self.search => {
                let query = text("query").ok_or("`query` (a non-empty string) is required")?;
                let body = json!({ "query": query, "max_results": RESULTS_PER_CALL });
                let found = self.call(host, "search", http::Method::POST, "/v1/search/results", Some(body)).await?;
                let results = at(&found, "results").as_array().cloned().unwrap_or_default();
                let provider = string(&found, "provider");
                let summary = StepData::Found { provider, results: results.len() };
                let sources = results
                    .iter()
                    .map(|r| (Source::Web { url: string(r, "url"), title: string(r, "title") }, string(r, "snippet")))
                    .collect();
                Ok(ToolOutput { summary, found: Found::Sources(sources) })
            }
            SEARCH_KNOWLEDGE if self.knowledge => {
                let query = text("query").ok_or("`query` (a non-empty string) is required")?;
                let body = json!({ "query": query, "top_k": RESULTS_PER_CALL });
                let found =
                    self.call(host, "knowledge", http::Method::POST, "/v1/knowledge/search", Some(body)).await?;
                let hits = at(&found, "hits").as_array().cloned().unwrap_or_default();
                let summary = StepData::Hits { hits: hits.len() };
                let sources = hits
                    .iter()
                    .map(|h| {
                        let chunk = at(h, "chunk").as_u64().and_then(|c| u32::try_from(c).ok()).unwrap_or_default();
                        let score = at(h, "score").as_f64().unwrap_or_default() as f32;
                        (Source::Knowledge { document_id: string(h, "document_id"), chunk, score }, string(h, "text"))
                    })
                    .collect();
                Ok(ToolOutput { summary, found: Found::Sources(sources) })
            }
            RUN_CODE if self.sandbox => {
                let code = text("code").ok_or("`code` (the program) is required")?;
                let mut body = json!({ "language": text("language").unwrap_or("python"), "code": code });
                if let (Some(stdin), Some(map)) = (args.get("stdin").and_then(Value::as_str), body.as_object_mut()) {
                    map.insert("stdin".into(), json!(stdin));
                }
                let ran = self.call(host, "code", http::Method::POST, "/v1/code/run", Some(body)).await?;
                if let Some(failure) = ran.get("sandbox_error").filter(|f| !f.is_null()) {
                    return Err(format!("the sandbox failed: {}", string(failure, "message")));
                }
                let run = at(&ran, "execution");
                let status = at(run, "status").as_str().map(str::to_owned);
                let exit_code = at(run, "exit_code").as_i64().and_then(|code| i32::try_from(code).ok());
                let summary = StepData::Ran { status, exit_code, stdout_bytes: string(run, "stdout").len() };
                let text = json!({ "status": at(run, "status"), "exit_code": at(run, "exit_code"), "stdout": at(run, "stdout"), "stderr": at(run, "stderr") }).to_string();
                Ok(ToolOutput { summary, found: Found::Text(text) })
            }
            WEB_SEARCH | SEARCH_KNOWLEDGE | RUN_CODE => Err(unavailable(&call.name)),
            other => Err(format!("there is no tool named `{}`", other.chars().take(64).collect::<String>())),
        }
    }

    /// One call to a sibling function as the caller; an error status is returned as the
    /// message of its JSON error.
    async fn call<H: Host>(
        &self,
        host: &H,
        function: &str,
        method: http::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request =
            http::Request::builder().method(method).uri(path).header(REQUEST_ID, self.request_id.as_str());
        if let Some(authorization) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, authorization.clone());
        }
        if let Some(admitted) = &self.admitted {
            request = request.header(crate::control::ADMITTED_HEADER, admitted.clone());
        }
        let body = match body {
            Some(json) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(json.to_string())
            }
            None => Bytes::new(),
        };
        let request = request.body(body).map_err(|e| format!("the {function} call could not be built ({e})"))?;
        let response = host
            .call_function(function, request)
            .await
            .map_err(|e| format!("the {function} function did not answer ({e})"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect(MAX_ANSWER_BYTES)
            .await
            .map_err(|e| format!("the {function} answer could not be read ({e})"))?;
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|_| format!("the {function} function answered {status} without JSON"))?;
        if !status.is_success() {
            let message = at(at(&answer, "error"), "message").as_str().unwrap_or("no message");
            return Err(format!("{function} answered {}: {message}", status.as_u16()));
        }
        Ok(answer)
    }
}

/// `value`'s field `key`, or null.
fn at<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(&Value::Null)
}

fn unavailable(name: &str) -> String {
    format!("the tool `{name}` is not available here")
}

fn capped(mut text: String) -> String {
    if text.chars().count() > MAX_RESULT_CHARS {
        text = text.chars().take(MAX_RESULT_CHARS).collect();
        text.push_str("\n[cut: the result was longer]");
    }
    text
}
