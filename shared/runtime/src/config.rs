//! Configuration: every variable the platform reads, parsed once per request from the host.
//!
//! Names are upper-case (`OPENAI_API_KEY`); the Spin adapter maps them to Spin's lower-case
//! variables. A provider is in the chain only when it can be called: the vendors need a key,
//! an OpenAI-compatible server needs a base URL.

use opencode_core::flags::{Flag, Flags};
use std::rc::Rc;

use opencode_core::pricing::Prices;
use opencode_core::providers::{ProviderConfig, ProviderKind};
use opencode_core::routing::experiments::{Experiment, Variant};
use opencode_core::routing::Tier;
use opencode_core::webhooks::Webhooks;

use crate::executor::RetryPolicy;
use crate::host::Host;

/// What is wrong with the configuration, or with a request's choice of model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable is missing or malformed: the deployment's problem. The message names the
    /// variable, never its value (it may be a secret).
    #[error("{0}")]
    NotConfigured(String),
    /// The request named a model whose provider is not configured.
    #[error("{0}")]
    UnknownModel(String),
}

/// Every variable the platform reads, for scripts, manifests and docs to stay in step.
pub const VARIABLES: &[&str] = &[
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
    "GEMINI_MODEL",
    "COMPAT_API_KEY",
    "COMPAT_BASE_URL",
    "COMPAT_MODEL",
    "OPENAI_STRONG_MODEL",
    "ANTHROPIC_STRONG_MODEL",
    "GEMINI_STRONG_MODEL",
    "COMPAT_STRONG_MODEL",
    "PROVIDER_ORDER",
    "JWT_SECRET",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_MAX_TTL_SECS",
    "JWKS_URL",
    "JWKS_CACHE_SECS",
    "JWT_TENANT_CLAIM",
    "JWT_ROLE_CLAIM",
    "MAX_BODY_BYTES",
    "ATTEMPT_TIMEOUT_MS",
    "MAX_RETRIES",
    "RETRY_BACKOFF_MS",
    "RETRY_AFTER_CAP_MS",
    "STREAM_MAX_MS",
    "CACHE_TTL_SECS",
    "ROUTER_CONFIG",
    "ROUTER",
    "ROUTER_RULES",
    "ROUTER_STRONG_SHARE",
    "ROUTER_TENANTS",
    "EXPERIMENTS",
    "EMBEDDING_PROVIDER",
    "EMBEDDING_MODEL",
    "EMBEDDING_DIMENSIONS",
    "KNOWLEDGE_CHUNK_CHARS",
    "KNOWLEDGE_CHUNK_OVERLAP",
    "KNOWLEDGE_MIN_SCORE",
    "AGENT_MAX_STEPS",
    "AGENT_MAX_TIME_MS",
    "AGENT_MAX_TOKENS",
    "AGENT_MAX_COST_USD",
    "MODEL_PRICES",
    "SANDBOX_URL",
    "SANDBOX_TOKEN",
    "SEARCH_PROVIDER",
    "TAVILY_API_KEY",
    "TAVILY_BASE_URL",
    "BRAVE_API_KEY",
    "BRAVE_BASE_URL",
    "LOG_LEVEL",
    "LOG_CONTENT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_CAPTURE_CONTENT",
    "METRICS_TOKEN",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WEBHOOK_EVENTS",
    "WEBHOOK_CONTENT",
    "GUARD_URL",
    "GUARD_TIMEOUT_MS",
    "GUARD_FAIL",
];

pub const DEFAULT_ORDER: &str = "openai,anthropic,gemini,compat";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

struct ProviderDefaults {
    name: &'static str,
    kind: ProviderKind,
    prefix: &'static str,
    base_url: &'static str,
    model: &'static str,
    /// The System 2 model; empty means the same as `model`.
    strong_model: &'static str,
    /// The model `/v1/thinking` asks for when `{prefix}_MODEL` is unset, for a vendor whose
    /// default `model` refuses to reason; empty means `model` reasons itself.
    reasoning_model: &'static str,
}

const PROVIDERS: &[ProviderDefaults] = &[
    ProviderDefaults {
        name: "openai",
        kind: ProviderKind::OpenAi,
        prefix: "OPENAI",
        base_url: "https://api.openai.com/v1",
        model: "gpt-4.1-mini",
        strong_model: "gpt-4.1",
        // gpt-4.1 models answer `reasoning_effort` with a 400.
        reasoning_model: "gpt-5-mini",
    },
    ProviderDefaults {
        name: "anthropic",
        kind: ProviderKind::Anthropic,
        prefix: "ANTHROPIC",
        base_url: "https://api.anthropic.com",
        model: "claude-haiku-4-5",
        strong_model: "claude-sonnet-4-5",
        reasoning_model: "",
    },
    ProviderDefaults {
        name: "gemini",
        kind: ProviderKind::Gemini,
        prefix: "GEMINI",
        base_url: "https://generativelanguage.googleapis.com",
        model: "gemini-2.5-flash",
        strong_model: "gemini-2.5-pro",
        reasoning_model: "",
    },
    ProviderDefaults {
        name: "compat",
        kind: ProviderKind::Compat,
        prefix: "COMPAT",
        base_url: "",
        model: "llama3.2",
        strong_model: "",
        reasoning_model: "",
    },
];

/// The configuration one request runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Callable providers in fallback order, with their fast (System 1) models.
    pub chain: Vec<ProviderConfig>,
    /// The System 2 model of each provider in `chain`, in the same order.
    pub strong_models: Vec<String>,
    /// The model each provider in `chain` is asked to reason with (`/v1/thinking`).
    pub reasoning_models: Vec<String>,
    pub retry: RetryPolicy,
    pub max_body_bytes: usize,
    /// The feature flags: the file's, the variables', then (once the caller is known,
    /// `crate::flags::load`) the platform's and the tenant's.
    pub flags: Flags,
    /// List prices per model (`MODEL_PRICES` over the built-in table).
    pub prices: Prices,
    /// The A/B experiment (`EXPERIMENTS`), if one runs.
    pub experiment: Option<Experiment>,
    /// The caller's variant of it ([`Config::enter_variant`]).
    pub variant: Option<Variant>,
    /// Where event webhooks go (`WEBHOOK_*`), if anywhere.
    pub webhooks: Option<Rc<Webhooks>>,
}

impl Config {
    /// Reads and validates every variable. A malformed value is a configuration error that
    /// names the variable (never its value: it may be a secret).
    pub fn from_host<H: Host>(host: &H) -> Result<Config, ConfigError> {
        let order = host.var("PROVIDER_ORDER").unwrap_or_else(|| DEFAULT_ORDER.to_string());
        let mut chain = Vec::new();
        let mut strong_models = Vec::new();
        let mut reasoning_models = Vec::new();
        for name in order.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let defaults = PROVIDERS.iter().find(|p| p.name == name).ok_or_else(|| {
                ConfigError::NotConfigured(format!(
                    "PROVIDER_ORDER names unknown provider `{name}` (known: openai, anthropic, gemini, compat)"
                ))
            })?;
            if chain.iter().any(|p: &ProviderConfig| p.name == name) {
                continue;
            }
            if let Some((provider, model_set)) = configured(host, defaults) {
                let strong = host.var(&format!("{}_STRONG_MODEL", defaults.prefix));
                let strong =
                    strong.or_else(|| (!defaults.strong_model.is_empty()).then(|| defaults.strong_model.to_string()));
                strong_models.push(strong.unwrap_or_else(|| provider.model.clone()));
                // A model the operator chose is theirs to reason with, or to have refused.
                let reasoning =
                    (!model_set && !defaults.reasoning_model.is_empty()).then(|| defaults.reasoning_model.to_string());
                reasoning_models.push(reasoning.unwrap_or_else(|| provider.model.clone()));
                chain.push(provider);
            }
        }
        let defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            attempt_timeout_ms: number(host, "ATTEMPT_TIMEOUT_MS", defaults.attempt_timeout_ms)?,
            max_retries: number(host, "MAX_RETRIES", u64::from(defaults.max_retries))?.min(10) as u32,
            backoff_base_ms: number(host, "RETRY_BACKOFF_MS", defaults.backoff_base_ms)?,
            retry_after_cap_ms: number(host, "RETRY_AFTER_CAP_MS", defaults.retry_after_cap_ms)?,
            stream_max_ms: number(host, "STREAM_MAX_MS", defaults.stream_max_ms)?.max(1),
        };
        Ok(Config {
            chain,
            strong_models,
            reasoning_models,
            retry,
            max_body_bytes: number(host, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)? as usize,
            flags: crate::flags::from_variables(host)?,
            prices: Prices::from_vars(|name| host.var(name)).map_err(ConfigError::NotConfigured)?,
            experiment: experiment(host)?,
            variant: None,
            webhooks: webhooks(host)?,
        })
        .and_then(|config| crate::guard::settings(host).map(|_| config))
    }

    /// Puts the caller (`subject`) in its variant of the experiment, if the experiment takes
    /// it: the variant's models then answer requests that name none, and the request's trace
    /// names it (its log line, span, metrics and `x-variant`). Returns the variant.
    pub fn enter_variant<H: Host>(&mut self, host: &H, subject: &str) -> Option<&Variant> {
        self.variant = self.experiment.as_ref().and_then(|experiment| experiment.assign(subject)).cloned();
        if let Some(variant) = &self.variant {
            let name = variant.name.clone();
            crate::trace::note(host, |facts| facts.variant = Some(name));
        }
        self.variant.as_ref()
    }

    /// How long a System 1 answer is cached; 0 when the cache is off (`system1.enable_cache`,
    /// `cache_ttl`).
    pub fn cache_ttl_secs(&self) -> u64 {
        if self.flags.on(Flag::Cache) {
            self.flags.whole(Flag::CacheTtl)
        } else {
            0
        }
    }

    /// The chain for a request that asked for `model`: `provider/model` pins that provider
    /// first; a bare name goes to the provider whose family it belongs to (`gpt-`, `claude-`,
    /// `gemini-`), else to the first provider. The others stay behind it with their defaults.
    pub fn chain_for(&self, model: Option<&str>) -> Result<Vec<ProviderConfig>, ConfigError> {
        self.tier_chain_for(Tier::System1, model)
    }

    /// Like [`Config::chain_for`], on `tier`'s models: System 2 runs each provider's strong
    /// model (`*_STRONG_MODEL`).
    pub fn tier_chain_for(&self, tier: Tier, model: Option<&str>) -> Result<Vec<ProviderConfig>, ConfigError> {
        let models = (tier == Tier::System2).then_some(self.strong_models.as_slice());
        // A request's own model wins over its A/B variant's.
        let variant = self.variant.as_ref().and_then(|v| match tier {
            Tier::System1 => v.model.as_deref(),
            Tier::System2 => v.strong_model.as_deref(),
        });
        self.chain_on(models, model.or(variant))
    }

    /// Like [`Config::chain_for`], for `/v1/thinking`: each provider on a model that accepts
    /// its reasoning control (OpenAI's default chat model does not).
    pub fn reasoning_chain_for(&self, model: Option<&str>) -> Result<Vec<ProviderConfig>, ConfigError> {
        self.chain_on(Some(&self.reasoning_models), model)
    }

    /// The chain on `models` (one per provider; `None` keeps each provider's own), with the
    /// asked-for `model` pinned first.
    fn chain_on(&self, models: Option<&[String]>, model: Option<&str>) -> Result<Vec<ProviderConfig>, ConfigError> {
        let mut chain = self.chain.clone();
        for (provider, model) in chain.iter_mut().zip(models.unwrap_or_default()) {
            provider.model.clone_from(model);
        }
        let Some(model) = model else {
            return Ok(self.priced(chain));
        };
        let (target, model) = match model.split_once('/') {
            Some((provider, rest)) if PROVIDERS.iter().any(|p| p.name == provider) => (Some(provider), rest),
            _ => (family(model), model),
        };
        let index = match target {
            Some(name) => chain.iter().position(|p| p.name == name).ok_or_else(|| {
                ConfigError::UnknownModel(format!("model `{model}` needs provider `{name}`, which is not configured"))
            })?,
            None => 0,
        };
        if let Some(mut pinned) = (index < chain.len()).then(|| chain.remove(index)) {
            pinned.model = model.to_string();
            chain.insert(0, pinned);
        }
        Ok(self.priced(chain))
    }

    /// Each provider with its model's price.
    fn priced(&self, mut chain: Vec<ProviderConfig>) -> Vec<ProviderConfig> {
        for provider in &mut chain {
            provider.price = self.prices.lookup(&provider.model);
        }
        chain
    }
}

/// `WEBHOOK_URL`, `WEBHOOK_SECRET`, `WEBHOOK_EVENTS`, `WEBHOOK_CONTENT`, checked.
fn webhooks<H: Host>(host: &H) -> Result<Option<Rc<Webhooks>>, ConfigError> {
    let var = |name: &str| host.var(name);
    let (url, secret, events, content) =
        (var("WEBHOOK_URL"), var("WEBHOOK_SECRET"), var("WEBHOOK_EVENTS"), var("WEBHOOK_CONTENT"));
    Webhooks::from_vars(url.as_deref(), secret.as_deref(), events.as_deref(), content.as_deref())
        .map(|hooks| hooks.map(Rc::new))
        .map_err(ConfigError::NotConfigured)
}

/// `EXPERIMENTS`, parsed and checked.
fn experiment<H: Host>(host: &H) -> Result<Option<Experiment>, ConfigError> {
    match host.var("EXPERIMENTS").filter(|json| !json.trim().is_empty()) {
        None => Ok(None),
        Some(json) => Experiment::from_json(&json)
            .map(Some)
            .map_err(|err| ConfigError::NotConfigured(format!("EXPERIMENTS: {err}"))),
    }
}

fn family(model: &str) -> Option<&'static str> {
    let model = model.to_ascii_lowercase();
    let o_series = model.strip_prefix('o').is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    if model.starts_with("gpt-") || model.starts_with("chatgpt") || o_series {
        Some("openai")
    } else if model.starts_with("claude") {
        Some("anthropic")
    } else if model.starts_with("gemini") {
        Some("gemini")
    } else {
        None
    }
}

/// The named provider (`openai`, `gemini`, ...) as configured, whether or not it is in
/// `PROVIDER_ORDER`; `None` when it is unknown or cannot be called (no key, no base URL).
pub fn provider_named<H: Host>(host: &H, name: &str) -> Option<ProviderConfig> {
    PROVIDERS
        .iter()
        .find(|p| p.name == name)
        .and_then(|defaults| configured(host, defaults))
        .map(|(provider, _)| provider)
}

/// The provider as configured, and whether its model was set (`{prefix}_MODEL`) rather than
/// defaulted; `None` when it cannot be called.
fn configured<H: Host>(host: &H, defaults: &ProviderDefaults) -> Option<(ProviderConfig, bool)> {
    let var = |suffix: &str| host.var(&format!("{}_{suffix}", defaults.prefix));
    let api_key = var("API_KEY");
    let base_url = var("BASE_URL").unwrap_or_else(|| defaults.base_url.to_string());
    let callable = match defaults.kind {
        ProviderKind::Compat => !base_url.is_empty(),
        _ => api_key.is_some(),
    };
    let model = var("MODEL");
    let model_set = model.is_some();
    callable.then(|| {
        let provider = ProviderConfig {
            kind: defaults.kind,
            name: defaults.name.to_string(),
            base_url,
            api_key,
            model: model.unwrap_or_else(|| defaults.model.to_string()),
            price: None,
        };
        (provider, model_set)
    })
}

pub(crate) fn number<H: Host>(host: &H, name: &str, default: u64) -> Result<u64, ConfigError> {
    match host.var(name) {
        None => Ok(default),
        Some(value) => {
            value.trim().parse().map_err(|_| ConfigError::NotConfigured(format!("{name} must be a whole number")))
        }
    }
}
