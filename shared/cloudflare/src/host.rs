//! [`WorkersHost`]: the core's `Host` on one Workers request (its `Env` and `Context`).

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use opencode_runtime::log::{Level, Record};
use opencode_runtime::sql::{Database, Row, Statement};
use opencode_runtime::{Body, Host, HostError};
use worker::js_sys::{self, Function, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;

use crate::convert::{js_message, request_to_web, response_from_web};
use crate::{kv, sql};

/// The runtime as the core sees it on Cloudflare Workers. Cheap to clone: one `Rc` around the
/// request's `Env` (bindings, vars, secrets) and `Context` (`wait_until`).
#[derive(Clone)]
pub struct WorkersHost {
    inner: Rc<Inner>,
}

struct Inner {
    env: worker::Env,
    ctx: worker::Context,
}

impl WorkersHost {
    /// Wraps the `Env` and `Context` the runtime passed to the `fetch` handler.
    pub fn new(env: worker::Env, ctx: worker::Context) -> Self {
        Self { inner: Rc::new(Inner { env, ctx }) }
    }

    /// The bindings, for code that needs one the `Host` trait does not cover.
    pub fn env(&self) -> &worker::Env {
        &self.inner.env
    }
}

/// The binding name for a function or store name: `chat` → `CHAT`, `my-store` → `MY_STORE`.
pub(crate) fn binding_name(name: &str) -> String {
    name.chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }).collect()
}

impl Host for WorkersHost {
    async fn fetch(&self, request: http::Request<Bytes>) -> Result<http::Response<Body>, HostError> {
        let request = request_to_web(request, None)?;
        let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let response = JsFuture::from(global.fetch_with_request(&request))
            .await
            .map_err(|error| HostError::Connect(js_message(&error)))?;
        let response: web_sys::Response =
            response.dyn_into().map_err(|_| HostError::Connect(String::from("fetch did not return a response")))?;
        response_from_web(&response).await
    }

    async fn call_function(
        &self,
        name: &str,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Body>, HostError> {
        let binding = binding_name(name);
        let service = self.inner.env.service(&binding).map_err(|_| HostError::NoService(name.to_owned()))?;
        let request = request_to_web(request, Some(name))?;
        // `Fetcher::fetch_request` would convert the answer with `worker`'s own `http` glue;
        // calling the binding's `fetch` directly keeps the raw response and our checked
        // conversion.
        let service: &JsValue = service.as_ref();
        let fetch = Reflect::get(service, &JsValue::from_str("fetch"))
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or_else(|| HostError::NoService(name.to_owned()))?;
        let promise = fetch.call1(service, &request).map_err(|error| HostError::Connect(js_message(&error)))?;
        let promise: js_sys::Promise =
            promise.dyn_into().map_err(|_| HostError::Connect(String::from("the binding did not return a promise")))?;
        let response = JsFuture::from(promise).await.map_err(|error| HostError::Connect(js_message(&error)))?;
        let response: web_sys::Response = response
            .dyn_into()
            .map_err(|_| HostError::Connect(String::from("the binding did not return a response")))?;
        response_from_web(&response).await
    }

    async fn kv_get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        kv::get(&self.inner.env, store, key).await
    }

    async fn kv_put(
        &self,
        store: &str,
        key: &str,
        value: Vec<u8>,
        ttl_hint_secs: Option<u64>,
    ) -> Result<(), HostError> {
        kv::put(&self.inner.env, store, key, &value, ttl_hint_secs).await
    }

    async fn kv_delete(&self, store: &str, key: &str) -> Result<(), HostError> {
        kv::delete(&self.inner.env, store, key).await
    }

    async fn sql(&self, db: Database<'_>, statement: &Statement) -> Result<Vec<Row>, HostError> {
        sql::run(&self.inner.env, db, statement).await
    }

    fn now_ms(&self) -> u64 {
        // Date.now() is a non-negative integer number of milliseconds; the cast saturates.
        js_sys::Date::now() as u64
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        // setTimeout takes an i32; `Delay` casts without checking, so clamp here.
        let ms = ms.min(i32::MAX as u64);
        worker::Delay::from(Duration::from_millis(ms)).boxed_local()
    }

    fn var(&self, name: &str) -> Option<String> {
        // Vars and secrets are both plain strings on `env` (wrangler refuses a secret with a
        // var's name), so one property read finds either. `Env::var` and `Env::secret` would
        // each also look up the value's constructor name, a cost on every request.
        let env: &JsValue = self.inner.env.as_ref();
        let value = Reflect::get(env, &JsValue::from_str(name)).ok()?.as_string()?;
        (!value.is_empty()).then_some(value)
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        // crypto.getRandomValues fills at most 65536 bytes per call.
        for chunk in buf.chunks_mut(65_536) {
            if fill_from_crypto(chunk).is_err() {
                // Workers always has Web Crypto; this fallback only keeps the promise of never
                // panicking. It is not cryptographic and the core must not rely on it for keys.
                for byte in chunk.iter_mut() {
                    *byte = (js_sys::Math::random() * 256.0) as u8;
                }
            }
        }
    }

    fn spawn_background(&self, task: LocalBoxFuture<'static, ()>) {
        self.inner.ctx.wait_until(task);
    }

    fn log(&self, record: &Record<'_>) {
        // The console's level picks the Workers Logs level; the line is the record.
        let line = JsValue::from_str(&record.to_line());
        match record.level {
            Level::Debug => web_sys::console::debug_1(&line),
            Level::Info => web_sys::console::log_1(&line),
            Level::Warn => web_sys::console::warn_1(&line),
            Level::Error => web_sys::console::error_1(&line),
        }
    }
}

fn fill_from_crypto(chunk: &mut [u8]) -> Result<(), JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
    let get_random_values: Function = Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))?.dyn_into()?;
    let length = u32::try_from(chunk.len()).map_err(|_| JsValue::NULL)?;
    let array = Uint8Array::new_with_length(length);
    get_random_values.call1(&crypto, &array)?;
    array.copy_to(chunk);
    Ok(())
}
