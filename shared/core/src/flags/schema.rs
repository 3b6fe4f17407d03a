//! The feature flags' schema: every key, its type and the variable that may set it at deploy
//! time; and the one reader of a flags document (the YAML file at build time, a partial JSON
//! document from the admin API at run time). Also compiled into the build script (`build.rs`
//! includes this file), so it depends on nothing but `serde_json`.

use serde_json::{Map, Value as Json};

/// What a flag holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Bool,
    /// A whole number within the bounds.
    Whole {
        min: u64,
        max: u64,
    },
    /// A number within the bounds.
    Number {
        min: f64,
        max: f64,
    },
    /// One of these words.
    Choice(&'static [&'static str]),
}

/// A flag's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Bool(bool),
    Number(f64),
    Choice(&'static str),
}

/// The deploy-time variable that sets a flag over the file: its name, and how many of its
/// units make one of the flag's (`AGENT_MAX_TIME_MS` is milliseconds, the flag seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variable {
    pub name: &'static str,
    pub per_unit: f64,
}

/// One key of the document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Key {
    /// Dotted, from the document's root: `cognitive_features.system1.cache_ttl`.
    pub path: &'static str,
    pub kind: Kind,
    pub variable: Option<Variable>,
}

const fn var(name: &'static str) -> Option<Variable> {
    Some(Variable { name, per_unit: 1.0 })
}

/// The routers `platform.router` chooses from (`opencode_core::routing::choice`).
pub const ROUTERS: &[&str] = &["learned", "lexicon", "length", "rules"];

macro_rules! flags {
    ($($(#[$doc:meta])* $flag:ident = $path:literal, $kind:expr, $variable:expr;)*) => {
        /// Every flag, in the document's order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Flag { $($(#[$doc])* $flag),* }

        impl Flag {
            pub const ALL: &'static [Flag] = &[$(Flag::$flag),*];
        }

        /// The schema, one key per [`Flag`], in the same order.
        pub const KEYS: &[Key] = &[$(Key { path: $path, kind: $kind, variable: $variable }),*];
    };
}

const BOOL: Kind = Kind::Bool;

flags! {
    /// The master switch: off, every other `cognitive_features` switch is off.
    Enabled = "cognitive_features.enabled", BOOL, None;
    /// The System 1 answer cache (chat and knowledge).
    Cache = "cognitive_features.system1.enable_cache", BOOL, None;
    /// Seconds a cached answer is served.
    CacheTtl = "cognitive_features.system1.cache_ttl", Kind::Whole { min: 0, max: 31_536_000 }, var("CACHE_TTL_SECS");
    /// The most answers a tenant's cache holds.
    CacheMaxSize = "cognitive_features.system1.cache_max_size", Kind::Whole { min: 1, max: 10_000_000 }, None;
    /// System 2 chat runs the agent's chain of steps (off: the strong model in one call).
    ThinkingChain = "cognitive_features.system2.enable_thinking_chain", BOOL, None;
    /// Seconds a System 2 run (agent, code, research) may take.
    MaxThinkingTime = "cognitive_features.system2.max_thinking_time", Kind::Number { min: 0.001, max: 900.0 },
        Some(Variable { name: "AGENT_MAX_TIME_MS", per_unit: 1000.0 });
    /// The most times code mode goes back to the model to fix a failed run.
    ReflectionDepth = "cognitive_features.system2.reflection_depth", Kind::Whole { min: 0, max: 9 }, None;
    /// `opencode/auto`, `/v1/process` and `/v1/route` route at all.
    SmartRouting = "cognitive_features.routing.smart_routing", BOOL, None;
    /// The router decides the tier (off: System 1 unless the caller names one).
    ComplexityAnalysis = "cognitive_features.routing.complexity_analysis", BOOL, None;
    /// The router may choose a mode other than chat.
    AutoModeSwitch = "cognitive_features.routing.auto_mode_switch", BOOL, None;
    /// The request is counted in `/admin/metrics` and `/metrics`.
    CognitiveMetrics = "cognitive_features.metrics.cognitive_metrics", BOOL, None;
    /// The request's spans are exported to the OTLP collector.
    DetailedTracking = "cognitive_features.metrics.detailed_tracking", BOOL, None;
    /// The router that decides `auto`.
    Router = "platform.router", Kind::Choice(ROUTERS), var("ROUTER");
    ModeChat = "platform.modes.chat", BOOL, None;
    ModeKnowledge = "platform.modes.knowledge", BOOL, None;
    ModeSearch = "platform.modes.search", BOOL, None;
    ModeCode = "platform.modes.code", BOOL, None;
    ModeThinking = "platform.modes.thinking", BOOL, None;
    ModeResearch = "platform.modes.research", BOOL, None;
    DialectOpenAiChat = "platform.dialects.openai_chat", BOOL, None;
    DialectOpenAiResponses = "platform.dialects.openai_responses", BOOL, None;
    DialectOpenAiEmbeddings = "platform.dialects.openai_embeddings", BOOL, None;
    DialectOpenAiModels = "platform.dialects.openai_models", BOOL, None;
    DialectAnthropicMessages = "platform.dialects.anthropic_messages", BOOL, None;
    DialectSeed = "platform.dialects.seed", BOOL, None;
    /// Steps (model calls and tool runs) a bounded run may take.
    AgentMaxSteps = "platform.agent.max_steps", Kind::Whole { min: 1, max: 100 }, var("AGENT_MAX_STEPS");
    /// Tokens a bounded run may spend.
    AgentMaxTokens = "platform.agent.max_tokens", Kind::Whole { min: 1, max: 10_000_000 }, var("AGENT_MAX_TOKENS");
    /// Dollars a bounded run may spend at list prices; 0 is no limit.
    AgentMaxCostUsd = "platform.agent.max_cost_usd", Kind::Number { min: 0.0, max: 1_000_000.0 },
        var("AGENT_MAX_COST_USD");
}

/// The number of flags.
pub const COUNT: usize = KEYS.len();

impl Flag {
    pub fn key(self) -> &'static Key {
        // `KEYS` has one entry per variant, in order.
        KEYS.get(self as usize).unwrap_or(&KEYS_FIRST)
    }

    pub fn path(self) -> &'static str {
        self.key().path
    }

    pub fn named(path: &str) -> Option<Flag> {
        Flag::ALL.iter().copied().find(|flag| flag.path() == path)
    }
}

const KEYS_FIRST: Key = Key { path: "cognitive_features.enabled", kind: BOOL, variable: None };

/// What is wrong with a document, and where: `cognitive_features.system1.cache_ttl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem { path: path.to_owned(), message: message.into() }
}

/// Reads a flags document: each flag it sets, with its value (`None`: a `null`, which takes a
/// stored override away). An unknown key, a value of the wrong type or out of bounds, and
/// (when `complete`) a missing key are a problem naming the key's path.
pub fn read_document(doc: &Json, complete: bool) -> Result<Vec<(Flag, Option<Value>)>, Problem> {
    let Json::Object(fields) = doc else {
        return Err(problem("", "must be a mapping of keys"));
    };
    read_fields(fields, complete)
}

/// [`read_document`] of a document's top-level mapping.
pub fn read_fields(fields: &Map<String, Json>, complete: bool) -> Result<Vec<(Flag, Option<Value>)>, Problem> {
    let mut found = Vec::new();
    walk_fields("", fields, complete, &mut found)?;
    if complete {
        if let Some(flag) = Flag::ALL.iter().find(|flag| !found.iter().any(|(f, _)| f == *flag)) {
            return Err(problem(flag.path(), "missing: every flag has its default in the file"));
        }
    }
    Ok(found)
}

fn walk_fields(
    prefix: &str,
    fields: &Map<String, Json>,
    complete: bool,
    found: &mut Vec<(Flag, Option<Value>)>,
) -> Result<(), Problem> {
    for (name, value) in fields {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        if let Some(flag) = Flag::named(&path) {
            let value = match value {
                Json::Null if !complete => None,
                value => Some(read_value(&path, flag.key().kind, value)?),
            };
            found.push((flag, value));
        } else if KEYS.iter().any(|key| key.path.strip_prefix(path.as_str()).is_some_and(|rest| rest.starts_with('.')))
        {
            let Json::Object(inner) = value else {
                return Err(problem(&path, "must be a mapping of keys"));
            };
            walk_fields(&path, inner, complete, found)?;
        } else {
            return Err(problem(&path, "unknown key: no flag of that name"));
        }
    }
    Ok(())
}

/// A value as `kind` has it; the error says what was expected.
pub fn read_value(path: &str, kind: Kind, value: &Json) -> Result<Value, Problem> {
    match kind {
        Kind::Bool => value.as_bool().map(Value::Bool).ok_or_else(|| problem(path, "must be true or false")),
        Kind::Whole { min, max } => value
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .map(|n| Value::Number(n as f64))
            .ok_or_else(|| problem(path, format!("must be a whole number from {min} to {max}"))),
        Kind::Number { min, max } => value
            .as_f64()
            .filter(|n| n.is_finite() && *n >= min && *n <= max)
            .map(Value::Number)
            .ok_or_else(|| problem(path, format!("must be a number from {min} to {max}"))),
        Kind::Choice(words) => value
            .as_str()
            .and_then(|text| words.iter().find(|word| **word == text))
            .map(|word| Value::Choice(word))
            .ok_or_else(|| problem(path, format!("must be one of {}", words.join(", ")))),
    }
}

/// A value as JSON.
pub fn to_json(value: Value) -> Json {
    match value {
        Value::Bool(on) => Json::Bool(on),
        // Whole numbers are written whole.
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => Json::from(n as i64),
        Value::Number(n) => Json::from(n),
        Value::Choice(word) => Json::from(word),
    }
}

/// Sets `path` (dotted) in a nested document, making the mappings on the way.
pub fn insert(doc: &mut Map<String, Json>, path: &str, value: Json) {
    match path.split_once('.') {
        None => {
            doc.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = doc.entry(head.to_owned()).or_insert_with(|| Json::Object(Map::new()));
            if !entry.is_object() {
                *entry = Json::Object(Map::new());
            }
            if let Json::Object(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}
