//! A test Worker for opencode-cloudflare: each route drives one `WorkersHost` capability, so
//! `host.test.mjs` can check the adapter inside the real runtime (Miniflare / workerd) without
//! going through the core's handlers. It is not part of the product and is never deployed.
//!
//! Routes (query parameters are plain, unencoded ASCII except where noted):
//! - `/stream?n=N&ms=MS` — a `Body::Stream` of N SSE events, MS apart (timers + streaming out)
//! - `/proxy?url=URL` (URL percent-encoded) — POSTs `{"hello":1}` with `x-probe: 1` through
//!   `Host::fetch` and returns the upstream response as it streams
//! - `/peek?url=URL` (URL percent-encoded) — GETs URL through `Host::fetch`, reads the first
//!   chunk of its body, drops the rest and answers with that chunk 300 ms later
//! - `/call?fn=NAME&path=PATH` (PATH percent-encoded) — GET PATH on a sibling via its binding;
//!   `x-probe-body` says whether its body arrived `full` or as a `stream`
//! - `/kv` — a put/get/delete round trip on stores `cache` and `data`, as text lines
//! - `/bg` then `/bgcheck` — `spawn_background` writes a key after the response is sent
//! - `/misc` — random bytes, clock, sleep and `var` lookups, as text lines
//! - `/status?s=CODE` — a response with that status (null-body and invalid statuses)
//! - `/sql/types?db=DB` — every value type bound and read back, as text lines; DB is `main`
//!   (D1) or a counters scope (its Durable Object, which this Worker also hosts)
//! - `/sql/bad?db=DB` — a statement the database refuses, then one it runs
//! - `/sql/upsert?db=SCOPE` — one guarded increment of the scope's `requests` (at most 10)
//! - `/sql/read?db=SCOPE` — the scope's `requests`

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use bytes::Bytes;
use futures::StreamExt;
use opencode_cloudflare::{into_web_response, WorkersHost};
use opencode_runtime::sql::{Database, Statement, Value};
use opencode_runtime::{Body, Host};
use worker::web_sys;

// The Durable Object class `Counters`, as admin's Worker exports it.
opencode_cloudflare::counters_object!();

fn text(status: u16, body: String) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(body));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    response
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(url: &str, key: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn request(method: http::Method, uri: &str, body: Bytes) -> Option<http::Request<Bytes>> {
    http::Request::builder().method(method).uri(uri).header("x-probe", "1").body(body).ok()
}

async fn route(host: &WorkersHost, url: &str) -> http::Response<Body> {
    let path = url.split_once("://").and_then(|(_, rest)| rest.split_once('/')).map_or("", |(_, path)| path);
    let path = path.split('?').next().unwrap_or_default();
    match path {
        "stream" => {
            let n: u64 = query(url, "n").and_then(|v| v.parse().ok()).unwrap_or(5);
            let ms: u64 = query(url, "ms").and_then(|v| v.parse().ok()).unwrap_or(300);
            let clock = host.clone();
            let events = futures::stream::unfold(0u64, move |i| {
                let clock = clock.clone();
                async move {
                    if i >= n {
                        return None;
                    }
                    if i > 0 {
                        clock.sleep(ms).await;
                    }
                    let event = format!("data: {i} at {}\n\n", clock.now_ms());
                    Some((Ok(Bytes::from(event)), i + 1))
                }
            });
            let mut response = http::Response::new(Body::Stream(events.boxed_local()));
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/event-stream"));
            response
        }
        "proxy" => {
            let target = query(url, "url").unwrap_or_default();
            let body = Bytes::from_static(b"{\"hello\":1}");
            let Some(request) = request(http::Method::POST, &target, body) else {
                return text(400, String::from("bad url"));
            };
            match host.fetch(request).await {
                Ok(response) => response,
                Err(error) => text(502, format!("fetch error: {error}")),
            }
        }
        "peek" => {
            let target = query(url, "url").unwrap_or_default();
            let Some(request) = request(http::Method::GET, &target, Bytes::new()) else {
                return text(400, String::from("bad url"));
            };
            let first = match host.fetch(request).await {
                Ok(response) => match response.into_body() {
                    Body::Stream(mut stream) => stream.next().await,
                    Body::Full(bytes) => Some(Ok(bytes)),
                },
                Err(error) => return text(502, format!("fetch error: {error}")),
            };
            // The body is gone by now; the request stays open a while so that only the drop,
            // not the end of the request, can have stopped the upstream.
            host.sleep(300).await;
            match first {
                Some(Ok(chunk)) => text(200, String::from_utf8_lossy(&chunk).into_owned()),
                other => text(502, format!("no first chunk: {other:?}")),
            }
        }
        "call" => {
            let name = query(url, "fn").unwrap_or_default();
            let target = query(url, "path").unwrap_or_else(|| String::from("/"));
            let Some(request) = request(http::Method::GET, &target, Bytes::new()) else {
                return text(400, String::from("bad path"));
            };
            match host.call_function(&name, request).await {
                Ok(mut response) => {
                    let kind = match response.body() {
                        Body::Full(_) => "full",
                        Body::Stream(_) => "stream",
                    };
                    response.headers_mut().insert("x-probe-body", http::HeaderValue::from_static(kind));
                    response
                }
                Err(error) => text(502, format!("call error: {error}")),
            }
        }
        "kv" => {
            let lines = [
                format!("put a: {:?}", host.kv_put("cache", "probe:a", b"one".to_vec(), Some(120)).await),
                format!("put b ttl 5: {:?}", host.kv_put("cache", "probe:b", b"two".to_vec(), Some(5)).await),
                format!("put data c: {:?}", host.kv_put("data", "probe:c", b"three".to_vec(), None).await),
                format!("get a: {:?}", host.kv_get("cache", "probe:a").await),
                format!("get missing: {:?}", host.kv_get("cache", "probe:zzz").await),
                format!("get data c: {:?}", host.kv_get("data", "probe:c").await),
                format!("get c from cache: {:?}", host.kv_get("cache", "probe:c").await),
                format!("delete a: {:?}", host.kv_delete("cache", "probe:a").await),
                format!("delete missing: {:?}", host.kv_delete("cache", "probe:nope").await),
                format!("get a after delete: {:?}", host.kv_get("cache", "probe:a").await),
                format!("no such store: {:?}", host.kv_get("nostore", "x").await),
                format!("empty key: {:?}", host.kv_get("cache", "").await),
            ];
            text(200, lines.join("\n"))
        }
        "bg" => {
            let later = host.clone();
            host.spawn_background(Box::pin(async move {
                later.sleep(200).await;
                let _ = later.kv_put("cache", "probe:bg", b"done".to_vec(), None).await;
            }));
            text(200, String::from("scheduled"))
        }
        "bgcheck" => text(200, format!("{:?}", host.kv_get("cache", "probe:bg").await)),
        "misc" => {
            let mut small = [0u8; 16];
            host.random_bytes(&mut small);
            let mut big = vec![0u8; 100_000];
            host.random_bytes(&mut big);
            let zeros = big.iter().filter(|b| **b == 0).count();
            let before = host.now_ms();
            host.sleep(50).await;
            let slept = host.now_ms().saturating_sub(before);
            let lines = [
                format!("random: {}", small.iter().map(|b| format!("{b:02x}")).collect::<String>()),
                format!("zeros in 100000 random bytes: {zeros}"),
                format!("now: {before}"),
                format!("slept: {slept}"),
                format!("var OPENAI_BASE_URL: {:?}", host.var("OPENAI_BASE_URL")),
                format!("var PROBE_SECRET: {:?}", host.var("PROBE_SECRET")),
                format!("var EMPTY: {:?}", host.var("EMPTY")),
                format!("var MISSING: {:?}", host.var("MISSING")),
            ];
            text(200, lines.join("\n"))
        }
        "status" => {
            let status: u16 = query(url, "s").and_then(|v| v.parse().ok()).unwrap_or(200);
            let mut response = text(200, String::from("body"));
            if let Ok(status) = http::StatusCode::from_u16(status) {
                *response.status_mut() = status;
            }
            response
        }
        "sql/types" | "sql/bad" | "sql/upsert" | "sql/read" => {
            let name = query(url, "db").unwrap_or_default();
            let db = if name == "main" { Database::Main } else { Database::Counters(&name) };
            text(200, sql(host, db, path).await)
        }
        _ => text(404, format!("probe: no route {path}")),
    }
}

/// The `/sql/...` routes: each statement's result (`Ok(rows)` or the error) on a line.
async fn sql(host: &WorkersHost, db: Database<'_>, path: &str) -> String {
    let statements = match path {
        "sql/types" => {
            let values = vec![
                Value::Null,
                Value::Integer(-42),
                Value::Integer(1_767_225_600_000),
                Value::Integer(9_007_199_254_740_991),
                Value::Real(1.5),
                Value::Real(-0.001),
                Value::Text(String::from("h\u{e9}llo \u{2713} 'q' \"dq\" \u{1f600}")),
                Value::Text(String::new()),
                Value::Blob(vec![0, 1, 127, 128, 255]),
            ];
            let columns = "n, i, ms, max, r, small, t, empty, b";
            vec![
                Statement::new("SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9", values.clone()),
                Statement::new(
                    "CREATE TABLE IF NOT EXISTS probe_values (n, i INTEGER, ms INTEGER, max INTEGER, r REAL, small REAL, t TEXT, empty TEXT, b BLOB)",
                    Vec::new(),
                ),
                Statement::new(
                    format!("INSERT INTO probe_values ({columns}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {columns}"),
                    values,
                ),
                Statement::new(
                    "SELECT typeof(n), typeof(i), typeof(ms), typeof(max), typeof(r), typeof(small), typeof(t), typeof(empty), typeof(b) FROM probe_values",
                    Vec::new(),
                ),
                Statement::new("SELECT 2.0, 0.1 + 0.2, 'x' || ?1, length(?2)", vec![Value::from("y"), Value::Blob(vec![7; 300])]),
                Statement::new("SELECT 1 WHERE 0", Vec::new()),
            ]
        }
        "sql/bad" => vec![
            Statement::new("SELEC 1", Vec::new()),
            Statement::new("SELECT * FROM no_such_table", Vec::new()),
            Statement::new("INSERT INTO counters (scope) VALUES (?1)", vec![Value::from("incomplete")]),
            Statement::new("SELECT 1", Vec::new()),
        ],
        "sql/upsert" => vec![Statement::new(
            "INSERT INTO counters (scope, window_start, requests, tokens, inflight, touched_ms, period, spent_micros) \
             VALUES (?1, 0, 1, 0, 0, 0, '', 0) \
             ON CONFLICT(scope) DO UPDATE SET requests = requests + 1 WHERE requests < 10 RETURNING requests",
            vec![Value::from("probe")],
        )],
        _ => vec![Statement::new("SELECT requests FROM counters WHERE scope = ?1", vec![Value::from("probe")])],
    };
    let mut lines = Vec::new();
    for statement in &statements {
        lines.push(format!("{:?}", host.sql(db, statement).await));
    }
    lines.join("\n")
}

#[worker::event(fetch)]
async fn fetch(request: web_sys::Request, env: worker::Env, ctx: worker::Context) -> worker::Result<web_sys::Response> {
    let host = WorkersHost::new(env, ctx);
    into_web_response(route(&host, &request.url()).await)
}
