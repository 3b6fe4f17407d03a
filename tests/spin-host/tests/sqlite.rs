//! `spin:sqlite`: the `default` database through opencode-spin's `SpinHost::sql` (spin-sdk's
//! `execute-async`) and spin-sdk's synchronous functions; values round-trip, errors map without
//! parameters, access follows `sqlite_databases`, `--sqlite` runs SQL at startup,
//! `--sqlite-file` keeps the data, and one statement is atomic across serving threads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use std::net::SocketAddr;

use common::{probe_manifest, request, scratch, workspace, Response, SpinHost};

/// The probe's `POST /sql/{db}`: `sql` with `params` (serde's JSON for `sql::Value`s).
fn sql(addr: SocketAddr, path: &str, sql: &str, params: &str) -> Response {
    let body = format!(r#"{{"sql":"{}","params":[{params}]}}"#, sql.replace('\\', "\\\\").replace('"', "\\\""));
    request(addr, "POST", path, &[("content-type", "application/json")], body.as_bytes())
}

fn ok(response: Response) -> String {
    assert_eq!(response.status, 200, "{}", response.text());
    response.text()
}

fn schema_arg() -> String {
    format!("@{}", workspace().join("migrations/0001_control_plane.sql").display())
}

#[test]
fn values_round_trip_in_both_databases() {
    let dir = scratch("sqlite-values");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    let create = sql(host.addr, "/sql/main", "CREATE TABLE t (a, b, c, d, e)", "");
    assert_eq!(ok(create), "[]");
    let values = r#""Null",{"Integer":-9223372036854775808},{"Real":-1.5},{"Text":"ü \"?1\""},{"Blob":[0,255,7]}"#;
    let insert =
        sql(host.addr, "/sql/main", "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5) RETURNING a, b, c, d, e", values);
    assert_eq!(ok(insert), format!("[[{values}]]"));
    // On Spin the counters' database is the same `default` database.
    let select = sql(host.addr, "/sql/key:1", "SELECT * FROM t WHERE b = ?1", r#"{"Integer":-9223372036854775808}"#);
    assert_eq!(ok(select), format!("[[{values}]]"));
    let empty = sql(host.addr, "/sql/main", "SELECT * FROM t WHERE a IS NOT NULL", "");
    assert_eq!(ok(empty), "[]");
}

#[test]
fn errors_map_to_sql_errors_without_parameters() {
    let dir = scratch("sqlite-errors");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    let missing = sql(host.addr, "/sql/main", "SELECT * FROM missing", "");
    assert_eq!(missing.status, 502);
    assert!(missing.text().contains("database failed: no such table: missing"), "{}", missing.text());

    ok(sql(host.addr, "/sql/main", "CREATE TABLE k (id TEXT PRIMARY KEY)", ""));
    ok(sql(host.addr, "/sql/main", "INSERT INTO k VALUES (?1)", r#"{"Text":"s3cr3t"}"#));
    let duplicate = sql(host.addr, "/sql/main", "INSERT INTO k VALUES (?1)", r#"{"Text":"s3cr3t"}"#);
    assert_eq!(duplicate.status, 502);
    assert!(duplicate.text().contains("UNIQUE constraint failed: k.id"), "{}", duplicate.text());
    assert!(!duplicate.text().contains("s3cr3t"), "{}", duplicate.text());
}

#[test]
fn only_components_declaring_the_database_may_open_it() {
    let dir = scratch("sqlite-access");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    assert_eq!(ok(host.get("/sqlite-open/default")), "opened");
    // `special` declares no `sqlite_databases`.
    let denied = sql(host.addr, "/special/sql/main", "SELECT 1", "");
    assert_eq!(denied.status, 502);
    assert!(denied.text().contains("access to database default denied"), "{}", denied.text());
    assert_eq!(host.get("/special/sqlite-open/default").text(), "Error::AccessDenied");
    assert_eq!(host.get("/sqlite-open/other").text(), "Error::NoSuchDatabase");

    // A manifest naming a database Spin does not define does not start.
    let dir = scratch("sqlite-unknown");
    let manifest = probe_manifest(&dir, "", "");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replacen(r#"sqlite_databases = ["default"]"#, r#"sqlite_databases = ["other"]"#, 1))
        .unwrap();
    let log = SpinHost::try_start(&manifest, &[], &[]).err().expect("spin-host started");
    assert!(log.contains("unknown SQLite database \"other\""), "{log}");
}

#[test]
fn the_synchronous_functions_work_too() {
    let dir = scratch("sqlite-sync");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    // Last insert rowid 2, 2 rows changed, then the count.
    assert_eq!(ok(host.get("/sqlite-sync")), r#"2 2 ["n"] Some([Value::Integer(2)])"#);
}

#[test]
fn startup_sql_runs_in_order_and_a_file_keeps_the_data() {
    let dir = scratch("sqlite-startup");
    let manifest = probe_manifest(&dir, "", "");
    let file = dir.join("db/sqlite_db.db");
    let file = file.to_str().unwrap();
    let schema = schema_arg();
    let args = ["--sqlite-file", file, "--sqlite", &schema, "--sqlite", "INSERT INTO audit_log_probe VALUES (1)"];
    // The second statement needs a table the schema does not have: the host refuses to start.
    let log = SpinHost::try_start(&manifest, &[], &args).err().expect("spin-host started");
    assert!(log.contains("--sqlite") && log.contains("no such table: audit_log_probe"), "{log}");

    let args = ["--sqlite-file", file, "--sqlite", &schema, "--sqlite", "CREATE TABLE IF NOT EXISTS p (x)"];
    let host = SpinHost::start(&manifest, &[], &args);
    ok(sql(host.addr, "/sql/main", "INSERT INTO p VALUES (?1)", r#"{"Text":"kept"}"#));
    assert!(host.terminate().success());
    // The schema is applied again at every start, as Spin does: it must be idempotent.
    let host = SpinHost::start(&manifest, &[], &args);
    assert_eq!(ok(sql(host.addr, "/sql/main", "SELECT x FROM p", "")), r#"[[{"Text":"kept"}]]"#);
    assert_eq!(ok(sql(host.addr, "/sql/main", "SELECT count(*) FROM counters", "")), r#"[[{"Integer":0}]]"#);
    drop(host);
    // Without the file the database starts empty.
    let host = SpinHost::start(&manifest, &[], &["--sqlite", &schema]);
    assert_eq!(sql(host.addr, "/sql/main", "SELECT x FROM p", "").status, 502);
}

#[test]
fn a_conditional_upsert_admits_exactly_its_limit_across_threads() {
    const ADMIT: &str = "INSERT INTO counters \
         (scope, window_start, requests, tokens, inflight, touched_ms, period, spent_micros) \
         VALUES (?1, 0, 1, 0, 0, 0, '', 0) \
         ON CONFLICT (scope) DO UPDATE SET requests = requests + 1 WHERE requests < 10 \
         RETURNING requests";
    let dir = scratch("sqlite-exact");
    let schema = schema_arg();
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &["--sqlite", &schema, "--threads", "4"]);
    let addr = host.addr;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| ok(sql(addr, "/sql/key:k1", ADMIT, r#"{"Text":"key:k1"}"#)))
                    .filter(|rows| rows != "[]")
                    .count()
            })
        })
        .collect();
    let admitted: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(admitted, 10);
    let count = sql(addr, "/sql/main", "SELECT requests FROM counters WHERE scope = ?1", r#"{"Text":"key:k1"}"#);
    assert_eq!(ok(count), r#"[[{"Integer":10}]]"#);
}
