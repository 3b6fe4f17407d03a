//! Running components: one compiled [`Component`] and pre-instance per component, made once at
//! startup, instances allocated from a pool as `spin up` allocates them ([`pooling`]), and a
//! wasmtime-wasi-http [`ProxyHandler`] per component that reuses a WASIp3
//! instance for many requests (up to [`MAX_REUSE`], [`MAX_CONCURRENT`] at a time) and keeps it
//! running after a response while the guest still has post-return work (streamed bodies,
//! background tasks).
//!
//! Outbound HTTP goes through [`Hooks::send_request`]: `http://<id>.spin.internal` is routed to
//! that component in process (Spin's service chaining), anything else must match the calling
//! component's `allowed_outbound_hosts` and is then sent by wasmtime-wasi-http's client, whose
//! response body streams to the guest frame by frame.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use wasmtime::component::{Component, GuestTaskId, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreContextMut};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ProxyHandler, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::client::{IoFuture, OutboundClient};
use crate::kv::KvStores;
use crate::manifest::{App, ComponentSpec};
use crate::outbound::OutboundRules;
use crate::routes::{Route, Router};
use crate::sqlite::SqliteDb;

/// Set when the host is shutting down: instances dropped then are not failures worth logging.
pub static SHUTTING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Requests one instance serves before it is retired (as `wasmtime serve` and Spin do).
pub const MAX_REUSE: usize = 128;
/// Requests one instance serves at the same time.
pub const MAX_CONCURRENT: usize = 16;
/// How long an idle instance is kept for the next request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a guest may take to produce a response head.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a guest may keep working after its last response (streaming a body, background
/// tasks) before the instance is dropped.
const POST_RETURN_TIMEOUT: Duration = Duration::from_secs(900);

/// What a component's instances know about it.
pub struct ComponentEnv {
    pub id: String,
    pub key_value_stores: Vec<String>,
    pub kv: Arc<KvStores>,
    /// The SQLite databases the component may open (`sqlite_databases`).
    pub sqlite_databases: Vec<String>,
    /// The `default` database, shared by every component.
    pub sqlite: Arc<SqliteDb>,
    pub variables: std::collections::BTreeMap<String, String>,
    pub outbound: OutboundRules,
    /// The component's public routes, for the `spin-*` headers of chained requests.
    pub routes: Vec<Route>,
}

/// The data of one component instance's store.
pub struct StoreData {
    pub table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Hooks,
    pub env: Arc<ComponentEnv>,
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for StoreData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        http_view(self)
    }
}

fn http_view(data: &mut StoreData) -> WasiHttpCtxView<'_> {
    WasiHttpCtxView { ctx: &mut data.http, table: &mut data.table, hooks: &mut data.hooks }
}

/// Every component's handler on one serving thread, so an instance can chain to a sibling
/// there, and that thread's outbound connection pool.
#[derive(Default)]
pub struct Components {
    handlers: OnceLock<HashMap<String, Arc<ComponentRuntime>>>,
    client: OutboundClient,
}

impl Components {
    pub fn get(&self, id: &str) -> Option<Arc<ComponentRuntime>> {
        self.handlers.get().and_then(|h| h.get(id)).cloned()
    }
}

/// One component's instances on one serving thread.
pub struct ComponentRuntime {
    pub env: Arc<ComponentEnv>,
    handler: ProxyHandler<ComponentState>,
}

/// The application compiled and linked once, shared by every serving thread: the engine, each
/// component ready to instantiate, the routes, the KV stores and the SQLite database.
pub struct Compiled {
    engine: Engine,
    router: Arc<Router>,
    components: Vec<(Arc<ComponentEnv>, ServicePre<StoreData>)>,
}

/// The running application on one serving thread: its own instances and outbound connections
/// over the shared [`Compiled`] components (see `server.rs` for why each thread has its own).
pub struct Runtime {
    pub router: Arc<Router>,
    pub components: Arc<Components>,
}

struct ComponentState {
    engine: Engine,
    pre: ServicePre<StoreData>,
    env: Arc<ComponentEnv>,
    components: Arc<Components>,
}

impl Compiled {
    /// Compiles every component of `app` and links it; fails if a component cannot run here.
    /// `cache_dir`, when given, keeps compiled components between runs (see [`compile`]);
    /// `sqlite` is the `default` database every component declaring it shares.
    pub fn new(app: &App, kv_dir: Option<&Path>, sqlite: SqliteDb, cache_dir: Option<&Path>) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.wasm_component_model_async(true);
        // As spin-core: compiled code checks an epoch counter at function entries and loop
        // heads, which a ticker thread advances (see `tick_epochs`). Spin sets no deadline by
        // default, so nothing is interrupted; the checks are part of what a guest costs there.
        config.epoch_interruption(true);
        // `perf record` can name guest functions when the host writes /tmp/perf-<pid>.map.
        if std::env::var_os("SPIN_HOST_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let mut pooled = config.clone();
        pooled.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling()));
        let engine = match Engine::new(&pooled) {
            Ok(engine) => engine,
            // As `spin up` does where the address space cannot hold the pool.
            Err(error) => {
                eprintln!("spin-host: no pooling allocator ({error:#}); instances are allocated on demand");
                Engine::new(&config)?
            }
        };

        tick_epochs(&engine)?;

        let mut linker = Linker::<StoreData>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        crate::spin_api::add_to_linker(&mut linker)?;

        let labels = app.components.values().flat_map(|c| c.key_value_stores.iter().map(String::as_str));
        let kv = Arc::new(KvStores::open(labels, kv_dir)?);
        let sqlite = Arc::new(sqlite);

        let mut router = Router::default();
        for trigger in &app.triggers {
            if let Some(route) = &trigger.route {
                router.add(route.clone(), trigger.component.clone());
            }
        }

        let mut components = Vec::new();
        // Components sharing a Wasm file are compiled once.
        let mut compiled: HashMap<std::path::PathBuf, Component> = HashMap::new();
        for spec in app.components.values() {
            let routes =
                app.triggers.iter().filter(|t| t.component == spec.id).filter_map(|t| t.route.clone()).collect();
            let component = match compiled.get(&spec.source) {
                Some(component) => component.clone(),
                None => {
                    let component = compile(&engine, &spec.source, cache_dir)
                        .with_context(|| format!("component {:?}", spec.id))?;
                    compiled.insert(spec.source.clone(), component.clone());
                    component
                }
            };
            let prepared = prepare(&linker, &component, spec, routes, &kv, &sqlite)
                .with_context(|| format!("component {:?}", spec.id))?;
            components.push(prepared);
        }
        Ok(Self { engine, router: Arc::new(router), components })
    }
}

impl Runtime {
    /// A serving thread's application: fresh instance pools and a fresh outbound connection
    /// pool over `compiled`.
    pub fn new(compiled: &Compiled) -> Result<Self> {
        let components = Arc::new(Components::default());
        let handlers = compiled
            .components
            .iter()
            .map(|(env, pre)| {
                let state = ComponentState {
                    engine: compiled.engine.clone(),
                    pre: pre.clone(),
                    env: Arc::clone(env),
                    components: Arc::clone(&components),
                };
                let runtime = ComponentRuntime { env: Arc::clone(env), handler: ProxyHandler::new(state) };
                (env.id.clone(), Arc::new(runtime))
            })
            .collect();
        if components.handlers.set(handlers).is_err() {
            bail!("components were registered twice");
        }
        Ok(Self { router: Arc::clone(&compiled.router), components })
    }
}

/// How often the engine's epoch advances: spin-core's `DEFAULT_EPOCH_TICK_INTERVAL`.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Advances `engine`'s epoch every [`EPOCH_TICK`] from a thread of its own, until the engine
/// is dropped, as spin-core's ticker does.
fn tick_epochs(engine: &Engine) -> std::io::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new().name("spin-host-epoch".into()).spawn(move || loop {
        std::thread::sleep(EPOCH_TICK);
        let Some(engine) = engine.upgrade() else { break };
        engine.increment_epoch();
    })?;
    Ok(())
}

/// The pooling instance allocator with `spin up`'s defaults (spin-core's `Config::default`):
/// slots for 1000 instances reserved up front, so an instance is made without mmap calls and a
/// retired one's first 2 MiB of linear memory (and 512 KiB of tables) are reset in place rather
/// than returned to the kernel, which the next instance would page-fault back in.
fn pooling() -> wasmtime::PoolingAllocationConfig {
    const MIB: usize = 1 << 20;
    const MAX_INSTANCES: u32 = 1000;
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pooling
        .total_component_instances(MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_tables(2 * MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        .total_core_instances(4 * MAX_INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MIB)
        .max_core_instance_size(10 * MIB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(2 * MIB)
        .table_keep_resident(MIB / 2);
    pooling
}

/// Compiles one Wasm file. With a cache directory, the compiled artifact is kept under a name
/// derived from the Wasm bytes and the engine's settings, and loaded instead of compiling next
/// time (cranelift takes seconds for the platform's components; loading takes milliseconds).
fn compile(engine: &Engine, source: &Path, cache_dir: Option<&Path>) -> Result<Component> {
    use std::hash::{Hash as _, Hasher as _};

    let bytes =
        std::fs::read(source).with_context(|| format!("reading {} (build the components first)", source.display()))?;
    let Some(cache_dir) = cache_dir else {
        return Ok(Component::new(engine, &bytes)?);
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    let cached = cache_dir.join(format!("{:016x}.cwasm", hasher.finish()));
    if cached.exists() {
        // SAFETY: the file is one this program wrote below from a compilation with the same
        // engine settings (they are part of its name) into the project's own cache directory;
        // wasmtime checks its header and compatibility before using it.
        #[allow(unsafe_code)]
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(error) => eprintln!("spin-host: ignoring cached {}: {error}", cached.display()),
        }
    }
    let component = Component::new(engine, &bytes)?;
    let write = || -> Result<()> {
        std::fs::create_dir_all(cache_dir)?;
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, component.serialize()?)?;
        std::fs::rename(&tmp, &cached)?;
        Ok(())
    };
    if let Err(error) = write() {
        eprintln!("spin-host: could not cache {}: {error:#}", source.display());
    }
    Ok(component)
}

fn prepare(
    linker: &Linker<StoreData>,
    component: &Component,
    spec: &ComponentSpec,
    routes: Vec<Route>,
    kv: &Arc<KvStores>,
    sqlite: &Arc<SqliteDb>,
) -> Result<(Arc<ComponentEnv>, ServicePre<StoreData>)> {
    let pre = linker.instantiate_pre(component)?;
    let pre = ServicePre::new(pre)
        .map_err(anyhow::Error::from)
        .context("the component does not export wasi:http/handler@0.3.0")?;
    for label in &spec.key_value_stores {
        if kv.get(label).is_none() {
            bail!("unknown key-value store {label:?}");
        }
    }
    // As Spin without runtime configuration: `default` is the only database.
    if let Some(name) = spec.sqlite_databases.iter().find(|name| *name != crate::sqlite::DEFAULT) {
        bail!("unknown SQLite database {name:?} (only \"default\" is defined)");
    }
    let env = Arc::new(ComponentEnv {
        id: spec.id.clone(),
        key_value_stores: spec.key_value_stores.clone(),
        kv: Arc::clone(kv),
        sqlite_databases: spec.sqlite_databases.clone(),
        sqlite: Arc::clone(sqlite),
        variables: spec.variables.clone(),
        outbound: spec.outbound.clone(),
        routes,
    });
    Ok((env, pre))
}

impl ComponentRuntime {
    /// Handles one request; `route` is the route it matched (`None` for a chained request,
    /// which is matched against the component's own routes).
    pub async fn handle(
        &self,
        mut request: http::Request<WasiBody>,
        route: Option<(&Route, &str)>,
        client: Option<SocketAddr>,
    ) -> http::Response<WasiBody> {
        let path = request.uri().path().to_owned();
        let own_match = self
            .env
            .routes
            .iter()
            .filter_map(|r| r.matches(&path).map(|info| (r, info.to_owned())))
            .max_by_key(|(r, _)| (r.prefix.len(), !r.wildcard));
        let (matched, path_info) = match (route, &own_match) {
            (Some((route, info)), _) => (Some(route), info.to_owned()),
            (None, Some((route, info))) => (Some(*route), info.clone()),
            (None, None) => (None, path.clone()),
        };
        let full_url = request.uri().to_string();
        let headers = request.headers_mut();
        insert(headers, SPIN_FULL_URL, &full_url);
        insert(headers, SPIN_PATH_INFO, &path_info);
        insert(headers, SPIN_BASE_PATH, "/");
        if let Some(route) = matched {
            insert(headers, SPIN_MATCHED_ROUTE, &route.raw);
            insert(headers, SPIN_RAW_COMPONENT_ROUTE, &route.raw);
            insert(headers, SPIN_COMPONENT_ROUTE, &route.prefix);
        }
        if let Some(client) = client {
            insert(headers, SPIN_CLIENT_ADDR, &client.to_string());
        }
        match self.handler.handle((), request).await {
            Ok(response) => response,
            Err(error) => {
                eprintln!("spin-host: component {:?} failed: {error:#}", self.env.id);
                text_response(http::StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
        }
    }
}

fn insert(headers: &mut http::HeaderMap, name: http::HeaderName, value: &str) {
    if let Ok(value) = http::HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The headers Spin adds to every request, as constants: a `&str` name is parsed on every insert.
const SPIN_FULL_URL: http::HeaderName = http::HeaderName::from_static("spin-full-url");
const SPIN_PATH_INFO: http::HeaderName = http::HeaderName::from_static("spin-path-info");
const SPIN_BASE_PATH: http::HeaderName = http::HeaderName::from_static("spin-base-path");
const SPIN_MATCHED_ROUTE: http::HeaderName = http::HeaderName::from_static("spin-matched-route");
const SPIN_RAW_COMPONENT_ROUTE: http::HeaderName = http::HeaderName::from_static("spin-raw-component-route");
const SPIN_COMPONENT_ROUTE: http::HeaderName = http::HeaderName::from_static("spin-component-route");
const SPIN_CLIENT_ADDR: http::HeaderName = http::HeaderName::from_static("spin-client-addr");

/// A plain-text response with a fixed body.
pub fn text_response(status: http::StatusCode, text: &'static str) -> http::Response<WasiBody> {
    let body =
        http_body_util::Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {}).boxed_unsync();
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

impl HandlerState for ComponentState {
    type StoreData = StoreData;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<StoreData, Expiration, Worker>> {
        let data = StoreData {
            table: ResourceTable::new(),
            wasi: WasiCtxBuilder::new().inherit_stdout().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            hooks: Hooks { env: Arc::clone(&self.env), components: Arc::clone(&self.components) },
            env: Arc::clone(&self.env),
        };
        let mut store = Store::new(&self.engine, data);
        // Spin's deadline when none is asked for: "practically forever" (an epoch deadline must
        // be set, or the first check traps).
        store.set_epoch_deadline(u64::MAX / 2);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy: Proxy::P3(proxy),
            view: http_view,
            expiration: Expiration::new(),
            state: Worker { id: self.env.id.clone() },
        })
    }
}

/// Decides when an instance is dropped: idle too long, or a guest over its time.
pub struct Expiration {
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Expiration {
    fn new() -> Self {
        Self { sleep: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)) }
    }
}

impl WorkerExpiration for Expiration {
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>, state: WorkerStatus, start: Instant) -> Poll<()> {
        let limit = match state {
            WorkerStatus::Idle => IDLE_TIMEOUT,
            WorkerStatus::Requests => RESPONSE_TIMEOUT,
            WorkerStatus::PostReturn => POST_RETURN_TIMEOUT,
        };
        let deadline = start + limit;
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

/// Per-instance accounting for [`ProxyHandler`].
pub struct Worker {
    id: String,
}

impl WorkerState for Worker {
    type StoreData = StoreData;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= MAX_REUSE {
            ShouldAccept::Never
        } else if concurrent >= MAX_CONCURRENT {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, StoreData>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>> {
        Box::pin(tokio::time::sleep(RESPONSE_TIMEOUT))
    }

    fn drop(&self, _store: Store<StoreData>, result: wasmtime::Result<()>) {
        let shutting_down = SHUTTING_DOWN.load(std::sync::atomic::Ordering::Relaxed);
        if let (Err(error), false) = (result, shutting_down) {
            eprintln!("spin-host: component {:?} instance ended: {error:#}", self.id);
        }
    }
}

/// Outbound HTTP for one component: chaining, the allow-list, then the network.
struct Hooks {
    env: Arc<ComponentEnv>,
    components: Arc<Components>,
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: IoFuture,
    ) -> Box<
        dyn std::future::Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
            + Send,
    > {
        let env = Arc::clone(&self.env);
        let components = Arc::clone(&self.components);
        let client = self.components.client.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            if !env.outbound.allows(&uri) {
                eprintln!(
                    "spin-host: component {:?} denied outbound request to {} (not in allowed_outbound_hosts)",
                    env.id,
                    display_origin(&uri),
                );
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            let done: IoFuture = Box::new(async { Ok(()) });
            if let Some(target) = uri.host().and_then(|h| h.strip_suffix(".spin.internal")) {
                let Some(runtime) = components.get(target) else {
                    eprintln!("spin-host: component {:?} chained to unknown component {target:?}", env.id);
                    return Err(wasmtime_wasi_http::Error::DestinationNotFound);
                };
                let response = Box::pin(runtime.handle(request, None, None)).await;
                return Ok((response, done));
            }
            client.send(request, options).await
        })
    }
}

/// `scheme://authority` of a URL, for logs: paths and queries may carry secrets.
fn display_origin(uri: &http::Uri) -> String {
    format!("{}://{}", uri.scheme_str().unwrap_or("?"), uri.authority().map_or("?", http::uri::Authority::as_str))
}
