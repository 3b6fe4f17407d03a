//! The platform's own tools, which the System 2 chat agent offers the model through each
//! vendor's native tool calling: `web_search` (the search providers), `search_knowledge` (the
//! tenant's knowledge base) and `run_code` (the remote sandbox). A tool is offered only when
//! its upstream is configured.
//!
//! A tool's failure is its result: the model reads it and may try something else. Results
//! are text for the model, capped, with sources numbered across the whole run (one number per
//! page or chunk) so the answer can cite them as [n].

use serde_json::{json, Value};

use super::super::code::{run_in_sandbox, SandboxFailure};
use crate::error::ApiError;
use crate::host::Host;
use crate::knowledge;
use crate::model::{Tool, ToolCall};
use crate::sandbox::{ExecutionRequest, Language, SandboxConfig};
use crate::search::{self, SearchConfig};

pub const WEB_SEARCH: &str = "web_search";
pub const SEARCH_KNOWLEDGE: &str = "search_knowledge";
pub const RUN_CODE: &str = "run_code";

/// Results per search, and chunks per knowledge lookup.
const RESULTS_PER_CALL: usize = 5;
/// A tool result handed to the model is cut here (program output can be long).
const MAX_RESULT_CHARS: usize = 6_000;

/// The tools this request may use.
pub struct Toolbox {
    search: Option<SearchConfig>,
    /// The tenant whose knowledge base `search_knowledge` reads.
    knowledge_tenant: Option<String>,
    sandbox: Option<SandboxConfig>,
}

/// A source a tool found, as the answer's `citations` lists it.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Web { url: String, title: String },
    Knowledge { document_id: String, chunk: u32, score: f32 },
}

impl Source {
    pub fn citation(&self, index: usize) -> Value {
        match self {
            Source::Web { url, title } => json!({ "index": index, "url": url, "title": title }),
            Source::Knowledge { document_id, chunk, score } => {
                json!({ "index": index, "document_id": document_id, "chunk": chunk, "score": score })
            }
        }
    }

    /// The same page, or the same chunk: cited under one number.
    fn same_as(&self, other: &Source) -> bool {
        match (self, other) {
            (Source::Web { url: a, .. }, Source::Web { url: b, .. }) => a == b,
            (Source::Knowledge { document_id: a, chunk: i, .. }, Source::Knowledge { document_id: b, chunk: j, .. }) => a == b && i == j,
            _ => false,
        }
    }
}

/// What one call produced, before numbering: calls run concurrently, and their sources are
/// numbered afterwards in call order ([`ToolOutput::render`]).
pub struct ToolOutput {
    /// A short account for the step record.
    pub summary: Value,
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
            let index = match cited.iter().position(|c| c.same_as(&source)) {
                Some(i) => i + 1,
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
    /// The tools whose upstreams are configured. Knowledge needs a tenant (an authenticated
    /// caller) with documents, and an embedding provider.
    pub async fn from_host<H: Host>(host: &H, retry: crate::executor::RetryPolicy, tenant: Option<&str>) -> Toolbox {
        let search = SearchConfig::from_host(host, retry).ok().filter(|s| s.require().is_ok());
        let mut knowledge_tenant = None;
        if let Some(tenant) = tenant.filter(|_| knowledge::KnowledgeConfig::from_host(host).is_ok()) {
            if knowledge::tenant_has_documents(host, tenant).await.unwrap_or(false) {
                knowledge_tenant = Some(tenant.to_owned());
            }
        }
        Toolbox { search, knowledge_tenant, sandbox: SandboxConfig::from_host(host) }
    }

    pub fn is_empty(&self) -> bool {
        self.search.is_none() && self.knowledge_tenant.is_none() && self.sandbox.is_none()
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
        if self.search.is_some() {
            tools.push(Tool {
                name: WEB_SEARCH.into(),
                description: "Search the web for current information. Returns numbered sources with URLs and snippets; cite them as [n].".into(),
                parameters: query("What to search for"),
            });
        }
        if self.knowledge_tenant.is_some() {
            tools.push(Tool {
                name: SEARCH_KNOWLEDGE.into(),
                description: "Search the user's own uploaded documents. Returns numbered passages; cite them as [n].".into(),
                parameters: query("What to look up in the documents"),
            });
        }
        if self.sandbox.is_some() {
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
            });
        }
        tools
    }

    /// Runs one call. A failure (bad arguments, an upstream down) is returned as text for
    /// the model.
    pub async fn run<H: Host>(&self, host: &H, call: &ToolCall) -> Result<ToolOutput, String> {
        let arguments = if call.arguments.trim().is_empty() { "{}" } else { call.arguments.as_str() };
        let args: Value = serde_json::from_str(arguments).map_err(|e| format!("the arguments are not valid JSON ({e})"))?;
        let text = |name: &str| args.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        match call.name.as_str() {
            WEB_SEARCH => {
                let config = self.search.as_ref().ok_or_else(|| unavailable(&call.name))?;
                let query = text("query").ok_or("`query` (a non-empty string) is required")?;
                let found = search::search(host, config, query, RESULTS_PER_CALL).await.map_err(|e| ApiError::from(e).to_string())?;
                let summary = json!({ "provider": found.provider, "results": found.results.len() });
                let sources = found
                    .results
                    .into_iter()
                    .map(|r| (Source::Web { url: r.url, title: r.title }, r.snippet))
                    .collect();
                Ok(ToolOutput { summary, found: Found::Sources(sources) })
            }
            SEARCH_KNOWLEDGE => {
                let tenant = self.knowledge_tenant.as_deref().ok_or_else(|| unavailable(&call.name))?;
                let query = text("query").ok_or("`query` (a non-empty string) is required")?;
                let found = knowledge::retrieve(host, tenant, query, RESULTS_PER_CALL).await.map_err(|e| e.to_string())?;
                let summary = json!({ "hits": found.hits.len() });
                let sources = found
                    .hits
                    .into_iter()
                    .map(|h| (Source::Knowledge { document_id: h.document_id, chunk: h.chunk, score: h.score }, h.text))
                    .collect();
                Ok(ToolOutput { summary, found: Found::Sources(sources) })
            }
            RUN_CODE => {
                let config = self.sandbox.as_ref().ok_or_else(|| unavailable(&call.name))?;
                let language = text("language").and_then(Language::from_alias).ok_or("`language` must be python or javascript")?;
                let code = text("code").ok_or("`code` (the program) is required")?;
                let mut request = ExecutionRequest::new(language, code);
                if let Some(stdin) = args.get("stdin").and_then(Value::as_str) {
                    request.stdin = stdin.to_owned();
                }
                let run = run_in_sandbox(host, config, &request).await.map_err(|e: SandboxFailure| e.to_string())?;
                let summary = json!({ "status": run.status, "exit_code": run.exit_code, "stdout_bytes": run.stdout.len() });
                let text = json!({ "status": run.status, "exit_code": run.exit_code, "stdout": run.stdout, "stderr": run.stderr }).to_string();
                Ok(ToolOutput { summary, found: Found::Text(text) })
            }
            other => Err(format!("there is no tool named `{}`", other.chars().take(64).collect::<String>())),
        }
    }
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
