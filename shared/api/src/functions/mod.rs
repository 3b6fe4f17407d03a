//! The functions: one handler per deployable Wasm function, and the shared request wrapper
//! (request id, configuration, authentication, error mapping) every one of them runs in.
//!
//! Each function is a type implementing [`Function`]. The runtime adapters are generic over it
//! (`entry!(Chat)`), so each Wasm links only its own handler: the knowledge index never ships
//! inside the chat function. [`serve_named`] picks one by name at run time, for tests.

pub mod access;
mod admin;
mod admin_flags;
mod admin_keys;
mod admin_usage;
mod admission;
mod agent;
mod auth_token;
mod chat;
mod code;
pub mod dialect;
mod documents;
mod embeddings;
pub mod features;
mod gateway;
mod knowledge;
mod meter;
mod prometheus;
mod research;
pub mod route;
mod search;
mod thinking;
mod tokens;

use std::cell::RefCell;
use std::rc::Rc;

use opencode_core::access::Action;
use opencode_core::flags::Flag;
use opencode_core::routing::{Mode, Tier};
use opencode_runtime::answer::Reply;
use opencode_runtime::cache::CachePolicy;
use opencode_runtime::config::Config;
use opencode_runtime::control::keys::KeyRecord;
use opencode_runtime::host::{Body, Host, RequestHost};
use opencode_runtime::trace::{self, Trace};

pub use dialect::{parse_mode, Dialect};

use crate::anthropic;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::openai::{self, chat_render, responses_render};
use crate::platform::request::requested_tier;
use crate::platform::{render, PlatformDetails};
use crate::seed;
use crate::telemetry;
use crate::web;

/// How long a vendor dialect's stream may stay silent before an SSE comment line is sent.
pub const KEEPALIVE_MS: u64 = 15_000;

/// Every function the platform deploys, by name.
pub const FUNCTIONS: &[&str] =
    &["gateway", "chat", "agent", "knowledge", "search", "code", "thinking", "research", "admin"];

/// What a handler gets besides the request.
pub struct Ctx<H: Host> {
    pub host: H,
    pub config: Config,
    pub request_id: String,
    pub principal: Option<Principal>,
    /// The API key the caller presented (or exchanged for its token).
    pub key: Option<Rc<KeyRecord>>,
    /// When the request arrived (the host's clock).
    pub started_ms: u64,
    /// A mode request's metering, done when its answer is known.
    meter: Option<meter::Pending>,
    /// A sibling call of a request another function admitted: not counted again.
    admitted_upstream: bool,
    /// The `x-ratelimit-*` headers of the limits that admitted the request.
    limit_headers: RefCell<Vec<(&'static str, String)>>,
}

impl<H: Host> Ctx<H> {
    /// A mode's reply in the platform's dialect, metered.
    pub fn respond<D: PlatformDetails>(&self, reply: Reply<D>) -> http::Response<Body> {
        self.respond_in(Dialect::Platform { stream: false }, reply)
    }

    /// A mode's reply in the client's dialect, metered.
    pub fn respond_in<D: PlatformDetails>(&self, dialect: Dialect, reply: Reply<D>) -> http::Response<Body> {
        let reply = match &self.meter {
            Some(pending) => meter::metered(&self.host, pending, reply),
            None => reply,
        };
        let response = match dialect {
            Dialect::Platform { .. } => return render::reply(&self.request_id, reply),
            Dialect::OpenAiChat(options) => {
                let format =
                    chat_render::Format { created: self.host.now_ms() / 1000, include_usage: options.include_usage };
                chat_render::reply(&self.request_id, format, reply)
            }
            Dialect::OpenAiResponses(_) => responses_render::reply(&self.request_id, self.host.now_ms() / 1000, reply),
            Dialect::AnthropicMessages(_) => anthropic::render::reply(&self.request_id, reply),
            Dialect::Seed(_) => {
                let elapsed_ms = self.host.now_ms().saturating_sub(self.started_ms);
                seed::render::reply(&self.request_id, elapsed_ms, reply)
            }
        };
        // The vendors' clients and the proxies before them drop a connection that stays
        // silent for long; System 2 and research can work for minutes before their next event.
        web::with_keepalive(&self.host, response, KEEPALIVE_MS)
    }

    /// How a System 1 answer of this request uses the cache: never on System 2 or with the
    /// cache off (`system1.enable_cache`, `cache_ttl`), else as `cache-control` asks.
    pub fn cache_policy(&self, headers: &http::HeaderMap, tier: Tier) -> CachePolicy {
        if self.config.cache_ttl_secs() == 0 || tier == Tier::System2 {
            CachePolicy::Bypass
        } else {
            CachePolicy::from_headers(headers)
        }
    }

    /// The caller's tenant (every authenticated request has one).
    pub fn tenant(&self) -> Result<&str, ApiError> {
        self.principal.as_ref().map(|p| p.tenant.as_str()).ok_or(ApiError::MissingToken)
    }

    /// Refuses what the caller's role may not do (no caller may do nothing).
    pub fn require(&self, action: Action, what: &str) -> Result<&Principal, ApiError> {
        let principal = self.principal.as_ref().ok_or(ApiError::MissingToken)?;
        principal.require(action, what)?;
        Ok(principal)
    }

    /// The sibling-call headers of this request: the caller's, with the admission marker, so
    /// the calls are counted as part of it.
    pub fn sibling_headers(&self, caller: &http::HeaderMap) -> http::HeaderMap {
        let mut headers = caller.clone();
        if let Some(secret) = self.host.var("JWT_SECRET") {
            if let Ok(value) = http::HeaderValue::from_str(&admission::marker(&secret, &self.request_id)) {
                headers.insert(admission::ADMITTED_HEADER, value);
            }
        }
        headers
    }
}

/// The result every handler returns; errors become JSON error responses.
pub type Handled = Result<http::Response<Body>, ApiError>;

/// One deployable function.
#[allow(async_fn_in_trait)]
pub trait Function {
    /// The function's name: its Worker service binding (upper-cased) and Spin component.
    const NAME: &'static str;

    /// The mode it serves; mode requests are metered per tier (metrics.rs).
    const MODE: Option<Mode> = None;

    /// The tier its mode runs on unless the gateway decided otherwise.
    fn default_tier(mode: Mode) -> Tier {
        meter::default_tier(mode)
    }

    /// Requests answered without a token.
    fn is_public(_parts: &http::request::Parts) -> bool {
        false
    }

    /// Whether clients reach this function directly (Spin routes a path to it), and so may
    /// send it an SSO token, which it passes to the gateway; the gateway calls the others with
    /// its own token.
    const REACHED_DIRECTLY: bool = true;

    /// Handles an authenticated (or public) request.
    async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled;

    /// Runs before configuration is read and the caller authenticated; by default it does
    /// both, then [`Function::handle`]. The gateway overrides it to forward without either.
    async fn run<H: Host>(host: H, request: http::Request<Body>, request_id: &str) -> Handled {
        authenticate_and_handle::<Self, H>(host, request, request_id).await
    }
}

/// Authenticates the caller unless the request is public, reads the configuration, and hands
/// the request to `F`. The credential is checked first: a request without a valid one costs a
/// 401, not a configuration read, and its body is never read. An SSO token reaching a function
/// directly (Spin routes some paths straight to their function) goes to the gateway, the one
/// function that verifies those.
async fn authenticate_and_handle<F: Function + ?Sized, H: Host>(
    host: H,
    request: http::Request<Body>,
    request_id: &str,
) -> Handled {
    if F::REACHED_DIRECTLY && F::NAME != Gateway::NAME && access::carries_sso_token(request.headers()) {
        return gateway::forward(&host, Gateway::NAME, request, request_id).await;
    }
    let (parts, body) = request.into_parts();
    let caller = if F::is_public(&parts) {
        None
    } else {
        Some(access::identify::<H, F>(&host, &parts.headers, request_id).await?)
    };
    if let Some(caller) = &caller {
        let principal = &caller.principal;
        trace::note(&host, |facts| {
            facts.tenant = Some(principal.tenant.clone());
            facts.subject = Some(principal.subject.clone());
            facts.key_id.clone_from(&principal.key_id);
        });
    }
    let mut config = Config::from_host(&host)?;
    if let Some(caller) = &caller {
        config.enter_variant(&host, &caller.principal.subject);
        opencode_runtime::flags::load(&host, &mut config.flags, Some(&caller.principal.tenant)).await;
        let flags = &config.flags;
        let (counted, traced) = (flags.on(Flag::CognitiveMetrics), flags.on(Flag::DetailedTracking));
        trace::note(&host, |facts| {
            facts.uncounted = !counted;
            facts.untraced = !traced;
        });
        features::check(flags, F::MODE, parts.uri.path(), &parts.headers)?;
    }
    let started_ms = host.now_ms();
    let admitted_upstream = admission::is_admitted(&host, &parts.headers, request_id);
    if let (Some(mode), Some(caller)) = (F::MODE, &caller) {
        caller.principal.require(Action::UseModels, "call models")?;
        let modes = caller.key.as_ref().and_then(|key| key.modes.as_ref());
        if !admitted_upstream && modes.is_some_and(|modes| !modes.iter().any(|m| m == mode.as_str())) {
            return Err(ApiError::Forbidden(format!("this API key may not use the {} mode", mode.as_str())));
        }
    }
    let meter = F::MODE.map(|mode| {
        let tier = requested_tier(&parts.headers).unwrap_or_else(|| F::default_tier(mode));
        let account = caller.as_ref().filter(|_| !admitted_upstream).map(|caller| {
            Rc::new(meter::Account {
                request_id: request_id.to_owned(),
                tenant: caller.principal.tenant.clone(),
                subject: caller.principal.subject.clone(),
                key_id: caller.principal.key_id.clone(),
                admission: RefCell::default(),
                webhooks: config.webhooks.clone(),
            })
        });
        trace::note(&host, |facts| {
            facts.mode = Some(mode);
            facts.tier = Some(tier);
        });
        meter::Pending { mode, tier, started_ms, account }
    });
    let (principal, key) = caller.map_or((None, None), |caller| (Some(caller.principal), caller.key));
    let ctx = Ctx {
        host,
        config,
        request_id: request_id.to_string(),
        principal,
        key,
        started_ms,
        meter,
        admitted_upstream,
        limit_headers: RefCell::default(),
    };
    let handled = F::handle(&ctx, parts, body).await;
    match handled {
        Ok(mut response) => {
            for (name, value) in ctx.limit_headers.take() {
                web::set_header(&mut response, name, &value);
            }
            Ok(response)
        }
        Err(err) => {
            if let Some(pending) = &ctx.meter {
                meter::record_error(&ctx.host, pending, err.code());
            }
            Err(err)
        }
    }
}

/// The A/B variant (`EXPERIMENTS`) the caller is in, on every answer of a caller in one.
pub const VARIANT_HEADER: &str = "x-variant";

/// Runs function `F` on one request. Always answers; never panics on input.
pub async fn serve<F: Function, H: Host>(host: H, request: http::Request<Body>) -> http::Response<Body> {
    let request_id = web::request_id(&host, request.headers());
    let route = telemetry::route_template(request.uri().path());
    let method = request.method().clone();
    // The caller's trace (or a new one); every record the request logs names the request.
    let trace = Rc::new(Trace::start(&host, request.headers(), format!("{method} {route}")));
    let request_host = RequestHost::new(host.clone(), &request_id, Rc::clone(&trace));
    let errors = dialect::ErrorShape::of(request.uri().path(), request.headers());
    let mut request = request;
    // Anthropic's clients send the token as `x-api-key`: every path takes it as the bearer.
    web::bearer_from_api_key(request.headers_mut());
    let mut response = match F::run(request_host.clone(), request, &request_id).await {
        Ok(response) => response,
        Err(err) => errors.response(&err, &request_id),
    };
    web::set_header(&mut response, web::REQUEST_ID, &request_id);
    if let Some(variant) = &trace.facts.borrow().variant {
        web::set_header(&mut response, VARIANT_HEADER, variant);
    }
    telemetry::server_timing(&host, &trace, &mut response);
    let served = telemetry::Served { function: F::NAME, method, route, status: response.status().as_u16() };
    telemetry::finish(request_host, host, trace, served, response)
}

/// Runs the function called `name` (one of [`FUNCTIONS`]); an unknown name is a 404.
pub async fn serve_named<H: Host>(name: &str, host: H, request: http::Request<Body>) -> http::Response<Body> {
    match name {
        Gateway::NAME => serve::<Gateway, H>(host, request).await,
        Chat::NAME => serve::<Chat, H>(host, request).await,
        Knowledge::NAME => serve::<Knowledge, H>(host, request).await,
        Search::NAME => serve::<Search, H>(host, request).await,
        Code::NAME => serve::<Code, H>(host, request).await,
        Thinking::NAME => serve::<Thinking, H>(host, request).await,
        Research::NAME => serve::<Research, H>(host, request).await,
        Admin::NAME => serve::<Admin, H>(host, request).await,
        Agent::NAME => serve::<Agent, H>(host, request).await,
        other => {
            let request_id = web::request_id(&host, request.headers());
            let mut response = web::error(&ApiError::NotFound(format!("function `{other}`")), &request_id);
            web::set_header(&mut response, web::REQUEST_ID, &request_id);
            response
        }
    }
}

/// Declares the function of mode `$ty` (same name), whose handler is `$handler(ctx, parts, body)`.
macro_rules! function {
    ($(#[$doc:meta])* $ty:ident => $handler:path) => {
        $(#[$doc])*
        pub struct $ty;

        impl Function for $ty {
            const NAME: &'static str = Mode::$ty.as_str();
            const MODE: Option<Mode> = Some(Mode::$ty);

            async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
                $handler(ctx, parts, body).await
            }
        }
    };
}

function!(/// `POST /v1/chat`.
    Chat => chat::handle);
/// `POST /v1/knowledge` and `/v1/knowledge/documents`, reached through the gateway.
pub struct Knowledge;

impl Function for Knowledge {
    const NAME: &'static str = Mode::Knowledge.as_str();
    const MODE: Option<Mode> = Some(Mode::Knowledge);
    const REACHED_DIRECTLY: bool = false;

    async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
        knowledge::handle(ctx, parts, body).await
    }
}
function!(/// `POST /v1/search`.
    Search => search::handle);
function!(/// `POST /v1/code`.
    Code => code::handle);
function!(/// `POST /v1/thinking`.
    Thinking => thinking::handle);
function!(/// `POST /v1/research`.
    Research => research::handle);

/// The public entry point: forwards by path to the function that serves it, and answers
/// `/v1/route`, `/v1/process` and `/v1/models` itself.
pub struct Gateway;

impl Function for Gateway {
    const NAME: &'static str = "gateway";

    async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
        let destination = gateway::route(parts.uri.path());
        // Routing, estimates and the model list are for callers that may call models; the
        // seed's upload is a knowledge write, which the knowledge function checks.
        if destination != Some(gateway::Destination::SeedDocuments) {
            ctx.require(Action::UseModels, "call models")?;
        }
        match destination {
            Some(gateway::Destination::Process) => route::process(ctx, parts, body).await,
            Some(gateway::Destination::SeedDocuments) => documents::handle(ctx, parts, body).await,
            Some(gateway::Destination::Estimate) => tokens::estimate(ctx, parts, body).await,
            Some(gateway::Destination::Embeddings) => embeddings::handle(ctx, parts, body).await,
            Some(gateway::Destination::CountTokens) => tokens::count(ctx, parts, body).await,
            Some(gateway::Destination::Models) => {
                if parts.method != http::Method::GET {
                    let path = parts.uri.path().to_owned();
                    return Err(ApiError::MethodNotAllowed { method: parts.method.to_string(), path });
                }
                Ok(web::json(http::StatusCode::OK, &openai::models::answer(&ctx.config, parts.uri.path())?))
            }
            _ => route::handle(ctx, parts, body).await,
        }
    }

    async fn run<H: Host>(host: H, mut request: http::Request<Body>, request_id: &str) -> Handled {
        let path = request.uri().path().to_owned();
        let destination = gateway::route(&path);
        if destination.is_some() && !gateway::is_public(&path) {
            // The functions behind check the platform's own token for an SSO caller.
            access::exchange_sso(&host, request.headers_mut()).await?;
        }
        match destination {
            // Each function authenticates for itself, so a request that reaches one directly
            // (Spin routes, service bindings) is checked the same way; the gateway checks too,
            // before it reads a body or calls anyone, so that a request without a valid
            // credential costs one 401 here.
            Some(gateway::Destination::Function(name)) => {
                if !gateway::is_public(&path) {
                    access::identify::<H, Self>(&host, request.headers(), request_id).await?;
                }
                gateway::forward(&host, name, request, request_id).await
            }
            Some(gateway::Destination::Vendor) => {
                let caller = access::identify::<H, Self>(&host, request.headers(), request_id).await?;
                route::vendor(&host, &caller.principal, request, request_id).await
            }
            Some(gateway::Destination::AuthToken) => auth_token::exchange(&host, request, request_id).await,
            Some(_) => authenticate_and_handle::<Self, H>(host, request, request_id).await,
            None => Err(ApiError::NotFound(path)),
        }
    }
}

/// Chat on System 2: the agent with the platform's tools. Reached only from `chat`, which
/// forwards those requests here so that its own Wasm, on the System 1 hot path, carries none
/// of the agent's code. Metered as chat on System 2 (chat passes its answer on unmetered).
pub struct Agent;

impl Function for Agent {
    const NAME: &'static str = "agent";
    const MODE: Option<Mode> = Some(Mode::Chat);

    fn default_tier(_: Mode) -> Tier {
        Tier::System2
    }

    const REACHED_DIRECTLY: bool = false;

    async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
        agent::handle(ctx, parts, body).await
    }
}

/// Health (public), and the admin API.
pub struct Admin;

impl Function for Admin {
    const NAME: &'static str = "admin";

    fn is_public(parts: &http::request::Parts) -> bool {
        gateway::is_public(parts.uri.path())
    }

    async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
        admin::handle(ctx, parts, body).await
    }
}
