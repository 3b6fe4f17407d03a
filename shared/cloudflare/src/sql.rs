//! `Host::sql` on Workers: the main database is the D1 binding `DB`; each scope's exact
//! counters live in the Durable Object of class `Counters` named by the scope (namespace
//! binding `COUNTERS`), and [`CountersStore`] is what that class does: run one statement on the
//! object's own SQLite storage. No platform logic here: statements come from the runtime.
//!
//! Both databases are called through the JavaScript bindings directly (`Reflect`, as
//! `call_function` does): `worker`'s D1 wrappers unwrap a failed `prepare` (a panic) and its
//! Durable Object SQL cursor has no fallible iteration, and one value conversion serves both.
//!
//! Values: integers are bound as JS numbers, exact within ±2^53 (the control plane's are
//! millisecond timestamps, counts and micro-dollars, far below). D1 refuses a `BigInt` (its
//! `bind` accepts numbers, strings, booleans, null and bytes) and so does a Durable Object's SQL
//! (`exec` takes numbers, strings, null and bytes), so a number is the only integer either can
//! take. Results come back as numbers too: a whole number within ±2^53 becomes
//! `Value::Integer`, any other `Value::Real` (D1 hands a REAL that is whole, `2.0`, back as
//! `2`; `Value::as_f64` reads either). Bytes go in as an `ArrayBuffer` and come back as one
//! (Durable Object) or as an array of byte values (D1).

use opencode_runtime::sql::{Database, Row, Statement, Value, COUNTERS_TABLE};
use opencode_runtime::HostError;
use worker::js_sys::{self, Array, ArrayBuffer, Function, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;

use crate::convert::js_message;

/// The D1 database binding: the main database.
const MAIN_BINDING: &str = "DB";
/// The Durable Object namespace binding of class `Counters`: one object per scope.
const COUNTERS_BINDING: &str = "COUNTERS";
/// The URL of a request to a counters object: the object sees it, the network never does.
const COUNTERS_URL: &str = "https://counters.internal/sql";
/// 2^53 - 1: the largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Runs one statement in `db` and returns its rows, values in column order.
pub(crate) async fn run(env: &worker::Env, db: Database<'_>, statement: &Statement) -> Result<Vec<Row>, HostError> {
    let rows = match db {
        Database::Main => d1(env, statement).await,
        Database::Counters(scope) => counters(env, scope, statement).await,
    };
    rows.map_err(HostError::Sql)
}

/// D1: `DB.prepare(sql).bind(...params).raw()`, whose rows are arrays in column order.
async fn d1(env: &worker::Env, statement: &Statement) -> Result<Vec<Row>, String> {
    let db = binding(env, MAIN_BINDING)?;
    let mut prepared = call(&db, "prepare", &Array::of1(&JsValue::from_str(&statement.sql)))?;
    if !statement.params.is_empty() {
        prepared = call(&prepared, "bind", &params(&statement.params))?;
    }
    let rows = awaited(call(&prepared, "raw", &Array::new())?).await?;
    let rows = rows.dyn_into::<Array>().map_err(|_| String::from("D1 answered rows that are not an array"))?;
    rows.iter().map(|row| row_from_js(&row)).collect()
}

/// A counters object: a POST of the statement as JSON to the object named by the scope,
/// answered with the rows as JSON, or with a non-2xx status and the database's message.
async fn counters(env: &worker::Env, scope: &str, statement: &Statement) -> Result<Vec<Row>, String> {
    let namespace = binding(env, COUNTERS_BINDING)?;
    let id = call(&namespace, "idFromName", &Array::of1(&JsValue::from_str(scope)))?;
    let stub = call(&namespace, "get", &Array::of1(&id))?;

    let body = serde_json::to_string(statement).map_err(|error| format!("the statement could not be sent: {error}"))?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    let request = web_sys::Request::new_with_str_and_init(COUNTERS_URL, &init).map_err(|error| js_message(&error))?;

    let response = awaited(call(&stub, "fetch", &Array::of1(&request))?).await?;
    let response = response
        .dyn_into::<web_sys::Response>()
        .map_err(|_| String::from("the counters object did not answer with a response"))?;
    let text = awaited(response.text().map_err(|error| js_message(&error))?.into()).await?;
    let text = text.as_string().unwrap_or_default();
    if !response.ok() {
        return Err(text);
    }
    serde_json::from_str(&text).map_err(|error| format!("the counters object's answer could not be read: {error}"))
}

/// What the Durable Object class `Counters` does ([`counters_object!`](crate::counters_object)): an SQL
/// executor for one scope over the object's own SQLite storage, which holds only the
/// [`COUNTERS_TABLE`]. Not part of the API.
#[doc(hidden)]
pub struct CountersStore {
    /// The object's `ctx.storage.sql`, or why it could not be had or set up.
    sql: Result<JsValue, String>,
}

impl CountersStore {
    /// Creates the counters table (the statement is idempotent) when the object starts.
    pub fn new(state: &worker::worker_sys::DurableObjectState) -> Self {
        let sql = storage_sql(state).and_then(|sql| exec(&sql, COUNTERS_TABLE, &[]).map(|_| sql));
        if let Err(error) = &sql {
            worker::console_error!("opencode: the counters object could not set up its table: {error}");
        }
        Self { sql }
    }

    /// Runs the statement the request carries and answers with its rows as JSON; a statement
    /// that fails is a 400 with the database's message, one that cannot be read a 422.
    pub async fn fetch(&self, request: &web_sys::Request) -> Result<web_sys::Response, JsValue> {
        let (status, body) = match self.answer(request).await {
            Ok(rows) => (200, rows),
            Err((status, message)) => (status, message),
        };
        let content_type = if status == 200 { "application/json" } else { "text/plain; charset=utf-8" };
        let headers = web_sys::Headers::new()?;
        headers.set("content-type", content_type)?;
        let init = web_sys::ResponseInit::new();
        init.set_status(status);
        init.set_headers(headers.as_ref());
        web_sys::Response::new_with_opt_str_and_init(Some(&body), &init)
    }

    async fn answer(&self, request: &web_sys::Request) -> Result<String, (u16, String)> {
        let sql = self.sql.as_ref().map_err(|error| (500, error.clone()))?;
        let text = request.text().map_err(|error| (422, js_message(&error)))?;
        let text = awaited(text.into()).await.map_err(|error| (422, error))?;
        let statement: Statement = serde_json::from_str(&text.as_string().unwrap_or_default())
            .map_err(|error| (422, format!("not a statement: {error}")))?;
        let rows = exec(sql, &statement.sql, &statement.params).map_err(|error| (400, error))?;
        serde_json::to_string(&rows).map_err(|error| (500, format!("the rows could not be written: {error}")))
    }
}

/// `ctx.storage.sql`, read through `Reflect`: on an object without SQLite storage (a class
/// not declared in `new_sqlite_classes`) the getter throws, which must not reach Wasm.
fn storage_sql(state: &worker::worker_sys::DurableObjectState) -> Result<JsValue, String> {
    let state: &JsValue = state.as_ref();
    let storage = Reflect::get(state, &JsValue::from_str("storage")).map_err(|error| js_message(&error))?;
    Reflect::get(&storage, &JsValue::from_str("sql")).map_err(|error| js_message(&error))
}

/// `sql.exec(statement, ...params)`, all of its rows read at once (`raw()`: arrays in column
/// order). Synchronous, so no other request of the object runs in between.
fn exec(sql: &JsValue, statement: &str, params: &[Value]) -> Result<Vec<Row>, String> {
    let args = Array::of1(&JsValue::from_str(statement));
    for param in params {
        args.push(&param_to_js(param));
    }
    let cursor = call(sql, "exec", &args)?;
    let rows = call(&cursor, "raw", &Array::new())?;
    let rows = js_sys::try_iter(&rows)
        .map_err(|error| js_message(&error))?
        .ok_or_else(|| String::from("the cursor's rows are not iterable"))?;
    rows.map(|row| row.map_err(|error| js_message(&error)).and_then(|row| row_from_js(&row))).collect()
}

/// A binding of the runtime's `env`.
fn binding(env: &worker::Env, name: &str) -> Result<JsValue, String> {
    let env: &JsValue = env.as_ref();
    match Reflect::get(env, &JsValue::from_str(name)) {
        Ok(value) if !value.is_undefined() && !value.is_null() => Ok(value),
        _ => Err(format!("no binding {name}")),
    }
}

/// `target[name](...args)`, every JS exception caught as its message.
fn call(target: &JsValue, name: &str, args: &Array) -> Result<JsValue, String> {
    let function = Reflect::get(target, &JsValue::from_str(name))
        .ok()
        .and_then(|function| function.dyn_into::<Function>().ok())
        .ok_or_else(|| format!("no method {name}"))?;
    function.apply(target, args).map_err(|error| js_message(&error))
}

/// Awaits a promise; a rejection is its message.
async fn awaited(promise: JsValue) -> Result<JsValue, String> {
    let promise = promise.dyn_into::<Promise>().map_err(|_| String::from("expected a promise"))?;
    JsFuture::from(promise).await.map_err(|error| js_message(&error))
}

fn params(values: &[Value]) -> Array {
    values.iter().map(param_to_js).collect()
}

fn param_to_js(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        // Exact within ±2^53 (see the module's documentation); beyond, the nearest number.
        Value::Integer(n) => JsValue::from_f64(*n as f64),
        Value::Real(r) => JsValue::from_f64(*r),
        Value::Text(text) => JsValue::from_str(text),
        Value::Blob(bytes) => Uint8Array::from(bytes.as_slice()).buffer().into(),
    }
}

fn row_from_js(row: &JsValue) -> Result<Row, String> {
    let row = row.dyn_ref::<Array>().ok_or_else(|| String::from("a row that is not an array"))?;
    row.iter().map(|value| value_from_js(&value)).collect()
}

fn value_from_js(value: &JsValue) -> Result<Value, String> {
    if value.is_null() || value.is_undefined() {
        Ok(Value::Null)
    } else if let Some(text) = value.as_string() {
        Ok(Value::Text(text))
    } else if let Some(number) = value.as_f64() {
        Ok(number_value(number))
    } else if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        Ok(Value::Blob(bytes.to_vec()))
    } else if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        Ok(Value::Blob(Uint8Array::new(buffer).to_vec()))
    } else if let Some(bytes) = value.dyn_ref::<Array>() {
        // D1 hands a BLOB back as an array of byte values.
        bytes
            .iter()
            .map(|byte| byte_value(&byte))
            .collect::<Option<Vec<u8>>>()
            .map(Value::Blob)
            .ok_or_else(|| String::from("a result array that is not bytes"))
    } else if let Some(flag) = value.as_bool() {
        Ok(Value::Integer(i64::from(flag)))
    } else {
        Err(String::from("a result value of a type SQL does not have"))
    }
}

fn number_value(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() <= MAX_SAFE_INTEGER {
        // Whole and within ±2^53: exact as an i64.
        Value::Integer(number as i64)
    } else {
        Value::Real(number)
    }
}

fn byte_value(value: &JsValue) -> Option<u8> {
    let number = value.as_f64()?;
    (number.fract() == 0.0 && (0.0..=255.0).contains(&number)).then_some(number as u8)
}
