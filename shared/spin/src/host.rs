//! [`SpinHost`]: each `opencode_runtime::Host` capability on its Spin interface.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use opencode_runtime::log::Record;
use opencode_runtime::sql::{Database, Row, Statement, Value};
use opencode_runtime::{Body, ByteStream, Host, HostError};
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::FullBody;
use spin_sdk::key_value::{Error as KvError, Store};
// The interface's synchronous calls: the async ones (a stream of rows and a future per
// statement) cost every component about 15 KiB gzipped of bindings, for answers that SQLite
// gives at once anyway.
use spin_sdk::sqlite::wit::sqlite::{Connection, Error as SqlError, Value as SqlValue};
use spin_sdk::wasip3::http::types::ErrorCode;
use spin_sdk::wasip3::http_compat::{IncomingBody, IncomingMessage};

use crate::wire;

#[allow(unsafe_code, clippy::all, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod bindings {
    spin_sdk::wit_bindgen::generate!({
        runtime_path: "spin_sdk::wit_bindgen::rt",
        world: "host-imports",
        path: "wit",
        generate_all,
    });
}

use bindings::wasi::config::store as config;

/// The core's host on Spin. Made fresh for every request by [`crate::serve`]; clones share the
/// KV stores and the database connection opened so far, so a request opens each once.
#[derive(Clone, Default)]
pub struct SpinHost {
    stores: Rc<RefCell<HashMap<String, Rc<Store>>>>,
    database: Rc<RefCell<Option<Rc<Connection>>>>,
}

impl SpinHost {
    /// A host with no store opened yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The store labelled `label`, opened on first use.
    async fn store(&self, label: &str) -> Result<Rc<Store>, HostError> {
        if let Some(store) = self.stores.borrow().get(label) {
            return Ok(Rc::clone(store));
        }
        let store = Rc::new(Store::open(label).await.map_err(|error| kv_error(label, &error))?);
        self.stores.borrow_mut().insert(label.to_owned(), Rc::clone(&store));
        Ok(store)
    }

    /// The component's `default` database, opened on first use.
    async fn database(&self) -> Result<Rc<Connection>, HostError> {
        if let Some(connection) = self.database.borrow().as_ref() {
            return Ok(Rc::clone(connection));
        }
        let connection = Rc::new(Connection::open("default").map_err(|error| sql_error(&error))?);
        *self.database.borrow_mut() = Some(Rc::clone(&connection));
        Ok(connection)
    }
}

impl Host for SpinHost {
    async fn fetch(&self, request: http::Request<Bytes>) -> Result<http::Response<Body>, HostError> {
        send(request).await.map_err(send_error)
    }

    async fn call_function(
        &self,
        name: &str,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Body>, HostError> {
        let path = request.uri().path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
        let url = wire::function_url(name, path).ok_or_else(|| HostError::NoService(name.to_owned()))?;
        let uri: http::Uri = url.parse().map_err(|_| HostError::NoService(name.to_owned()))?;
        let (mut parts, body) = request.into_parts();
        parts.uri = uri;
        send(http::Request::from_parts(parts, body)).await.map_err(|error| match error {
            ErrorCode::DestinationNotFound => HostError::NoService(name.to_owned()),
            other => send_error(other),
        })
    }

    async fn kv_get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.store(store).await?.get(key).await.map_err(|error| kv_error(store, &error))
    }

    async fn kv_put(
        &self,
        store: &str,
        key: &str,
        value: Vec<u8>,
        _ttl_hint_secs: Option<u64>,
    ) -> Result<(), HostError> {
        // Spin KV has no expiry; the core stores its own deadline with values that expire.
        self.store(store).await?.set(key, value).await.map_err(|error| kv_error(store, &error))
    }

    async fn kv_delete(&self, store: &str, key: &str) -> Result<(), HostError> {
        self.store(store).await?.delete(key).await.map_err(|error| kv_error(store, &error))
    }

    async fn sql(&self, _db: Database<'_>, statement: &Statement) -> Result<Vec<Row>, HostError> {
        // Both databases are the component's `default` on Spin: the counters are its
        // `counters` table, keyed by scope in the statement itself.
        let connection = self.database().await?;
        let params = statement.params.iter().map(to_sqlite).collect::<Vec<_>>();
        let result = connection.execute(statement.sql.as_ref(), &params).map_err(|error| sql_error(&error))?;
        Ok(result.rows.into_iter().map(|row| row.values.into_iter().map(from_sqlite).collect()).collect())
    }

    fn now_ms(&self) -> u64 {
        let now = spin_sdk::wasip3::clocks::system_clock::now();
        wire::epoch_millis(now.seconds, now.nanoseconds)
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        // `wasi:clocks/monotonic-clock#wait-for` is an async import: the instance keeps serving
        // other work while this request waits.
        Box::pin(spin_sdk::time::sleep(Duration::from_millis(ms)))
    }

    fn var(&self, name: &str) -> Option<String> {
        let name = wire::variable_name(name)?;
        match config::get(&name) {
            Ok(Some(value)) if !value.is_empty() => Some(value),
            _ => None,
        }
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        let mut filled = 0;
        // `get-random-bytes` may return fewer bytes than asked; it returns none only on a
        // broken host, and then the loop stops rather than spin.
        while filled < buf.len() {
            let Some(rest) = buf.get_mut(filled..) else {
                break;
            };
            let bytes = spin_sdk::wasip3::random::random::get_random_bytes(rest.len() as u64);
            if bytes.is_empty() {
                break;
            }
            let n = bytes.len().min(rest.len());
            for (slot, byte) in rest.iter_mut().zip(bytes) {
                *slot = byte;
            }
            filled += n;
        }
    }

    fn log(&self, record: &Record<'_>) {
        // One line per record on stderr, which Spin (and spin-host) pass to their own log.
        // Written whole and without `eprintln!`'s formatting machinery; a failed write is lost.
        let mut line = record.to_line();
        line.push('\n');
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }

    fn spawn_background(&self, task: LocalBoxFuture<'static, ()>) {
        // A task spawned inside the export's component-model task keeps running after `handle`
        // has returned the response: the runtime drives the instance until every such task
        // finishes (wasmtime calls this post-return work).
        spin_sdk::wasip3::spawn(task);
    }
}

/// Sends one request through the `wasi:http` client. The response body is handed on as a stream,
/// chunk by chunk as it arrives: a provider's SSE must never be buffered here. Public for the
/// spin-host relay fixture, which must do a chat's I/O without [`SpinHost`] (whose KV stores
/// would import `spin:key-value`).
pub async fn send(request: http::Request<Bytes>) -> Result<http::Response<Body>, ErrorCode> {
    let (mut parts, body) = request.into_parts();
    // `wasi:http` takes the authority from the URL and refuses hop-by-hop headers.
    wire::strip_hop_by_hop(&mut parts.headers);
    wire::declare_request_length(&mut parts.headers, &parts.method, body.len());
    let request = http::Request::from_parts(parts, FullBody::new(body));
    let response = spin_sdk::http::send(request).await?;
    let (parts, body) = response.into_parts();
    let stream = body_stream(body, &parts.headers);
    Ok(http::Response::from_parts(parts, Body::Stream(stream)))
}

/// A `wasi:http` body as the core's stream, chunk by chunk as it arrives, ending at its
/// declared length ([`wire::until_declared`]).
pub fn body_stream<T: IncomingMessage + 'static>(body: IncomingBody<T>, headers: &http::HeaderMap) -> ByteStream {
    Box::pin(wire::until_declared(
        body.stream().map(|chunk| chunk.map_err(|error| HostError::Body(error.to_string()))),
        opencode_api::web::declared_length(headers),
    ))
}

/// Maps a `wasi:http` client error to the core's: refusals by the runtime (a host not in
/// `allowed_outbound_hosts`) apart from network failures.
fn send_error(error: ErrorCode) -> HostError {
    match error {
        ErrorCode::HttpRequestDenied => HostError::Refused("outbound request denied".to_owned()),
        ErrorCode::HttpRequestUriInvalid => HostError::Refused("invalid request URL".to_owned()),
        other => HostError::Connect(other.to_string()),
    }
}

fn kv_error(store: &str, error: &KvError) -> HostError {
    match error {
        KvError::NoSuchStore => HostError::Kv(format!("no such store: {store}")),
        KvError::AccessDenied => HostError::Kv(format!("access to store {store} denied")),
        KvError::StoreTableFull => HostError::Kv("too many stores open".to_owned()),
        KvError::Other(message) => HostError::Kv(message.clone()),
    }
}

fn to_sqlite(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Integer(n) => SqlValue::Integer(*n),
        Value::Real(r) => SqlValue::Real(*r),
        Value::Text(text) => SqlValue::Text(text.clone()),
        Value::Blob(bytes) => SqlValue::Blob(bytes.clone()),
    }
}

fn from_sqlite(value: SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(n) => Value::Integer(n),
        SqlValue::Real(r) => Value::Real(r),
        SqlValue::Text(text) => Value::Text(text),
        SqlValue::Blob(bytes) => Value::Blob(bytes),
    }
}

/// The runtime's message names the failure, never the statement's parameters (SQLite's own
/// messages name tables, columns and constraints, not values).
fn sql_error(error: &SqlError) -> HostError {
    HostError::Sql(match error {
        SqlError::NoSuchDatabase => "no such database: default".to_owned(),
        SqlError::AccessDenied => "access to database default denied (sqlite_databases in spin.toml)".to_owned(),
        SqlError::InvalidConnection => "invalid database connection".to_owned(),
        SqlError::DatabaseFull => "database full".to_owned(),
        SqlError::Io(message) => message.clone(),
    })
}
