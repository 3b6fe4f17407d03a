//! The SQLite database behind `spin:sqlite`: Spin's `default` database, one per host, shared by
//! every component and every serving thread (as Spin's in-process SQLite shares one connection
//! per database).
//!
//! One connection behind a mutex: each statement runs whole under the lock, so a statement is
//! atomic and read-modify-write statements (`INSERT ... ON CONFLICT ... RETURNING`) are exact
//! across threads. In memory unless a file is named (`--sqlite-file`), like the KV stores;
//! `spin up` keeps it in `.spin/sqlite_db.db`. A file is opened in WAL mode with
//! `synchronous = NORMAL` (a development host: a power cut may lose the last commits, never
//! corrupt the file).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context as _, Result};
use rusqlite::types::{Value, ValueRef};

/// The only database name Spin defines without runtime configuration.
pub const DEFAULT: &str = "default";

/// The `default` database.
#[derive(Debug)]
pub struct SqliteDb {
    connection: Mutex<rusqlite::Connection>,
}

/// A statement's result: its column names and every row, values in column order.
#[derive(Debug, Default, PartialEq)]
pub struct QueryOutput {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl SqliteDb {
    /// Opens the database in `file` (created with its directory if missing), or in memory.
    pub fn open(file: Option<&Path>) -> Result<Self> {
        let connection = match file {
            Some(file) => {
                if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                }
                let connection = rusqlite::Connection::open(file)
                    .with_context(|| format!("opening SQLite database {}", file.display()))?;
                connection
                    .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                    .with_context(|| format!("setting up {}", file.display()))?;
                connection
            }
            None => rusqlite::Connection::open_in_memory()?,
        };
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        // A poisoned lock only means a request panicked mid-call; SQLite rolled its statement back.
        self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs one `--sqlite` argument as `spin up --sqlite` does: `@path` runs the SQL file at
    /// `path`, anything else is SQL itself; either may hold several statements.
    pub fn run_startup(&self, argument: &str) -> Result<()> {
        let (sql, origin) = match argument.strip_prefix('@') {
            Some(path) => (std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?, path),
            None => (argument.to_owned(), "the --sqlite statement"),
        };
        self.lock().execute_batch(&sql).with_context(|| format!("running {origin}"))
    }

    /// Runs one statement with positional parameters and collects its rows. The error is
    /// SQLite's message, which names tables, columns and constraints, never parameter values.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<QueryOutput, String> {
        let connection = self.lock();
        let mut prepared = connection.prepare(sql).map_err(|e| e.to_string())?;
        let columns: Vec<String> = prepared.column_names().map(str::to_owned).collect();
        let count = columns.len();
        let mut rows = prepared.query(rusqlite::params_from_iter(params)).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let values = (0..count).map(|i| row.get_ref(i).map(owned)).collect::<Result<_, _>>();
            out.push(values.map_err(|e| e.to_string())?);
        }
        Ok(QueryOutput { columns, rows: out })
    }

    /// The rowid of the most recent successful INSERT on the shared connection (as Spin's, it
    /// may be another instance's: nothing in the platform reads it).
    pub fn last_insert_rowid(&self) -> i64 {
        self.lock().last_insert_rowid()
    }

    /// The rows the most recent INSERT, UPDATE or DELETE on the shared connection changed.
    pub fn changes(&self) -> u64 {
        self.lock().changes()
    }
}

/// A row's value, owned; text that is not UTF-8 (SQLite does not check) is read lossily rather
/// than refused.
fn owned(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const COUNT: &str = "INSERT INTO counters (scope, n) VALUES (?1, 1) \
         ON CONFLICT (scope) DO UPDATE SET n = n + 1 WHERE n < ?2 RETURNING n";

    #[test]
    fn values_round_trip_and_columns_are_named() -> Result<()> {
        let db = SqliteDb::open(None)?;
        let params = [
            Value::Null,
            Value::Integer(i64::MIN),
            Value::Real(-1.5),
            Value::Text("ü \u{0} ?1".into()),
            Value::Blob(vec![0, 255, 7]),
        ];
        let out = db.execute("SELECT ?1 AS a, ?2 AS b, ?3, ?4, ?5", &params).map_err(anyhow::Error::msg)?;
        assert_eq!(out.columns, ["a", "b", "?3", "?4", "?5"]);
        assert_eq!(out.rows, [params.to_vec()]);
        Ok(())
    }

    #[test]
    fn errors_are_sqlite_messages_without_parameters() -> Result<()> {
        let db = SqliteDb::open(None)?;
        let error = db.execute("SELECT * FROM missing WHERE x = ?1", &[Value::Text("secret".into())]).err();
        assert!(error.as_deref().is_some_and(|e| e.contains("no such table: missing")), "{error:?}");
        db.run_startup("CREATE TABLE t (id TEXT PRIMARY KEY)")?;
        db.execute("INSERT INTO t VALUES (?1)", &[Value::Text("secret".into())]).map_err(anyhow::Error::msg)?;
        let error = db.execute("INSERT INTO t VALUES (?1)", &[Value::Text("secret".into())]).err();
        assert!(error.as_deref().is_some_and(|e| e.contains("UNIQUE") && !e.contains("secret")), "{error:?}");
        assert!(db.execute("SELECT 1; SELECT 2", &[]).is_err(), "one statement per call");
        Ok(())
    }

    #[test]
    fn startup_sql_comes_from_an_argument_or_a_file_and_the_schema_is_idempotent() -> Result<()> {
        let db = SqliteDb::open(None)?;
        let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/0001_control_plane.sql");
        db.run_startup(&format!("@{schema}"))?;
        db.run_startup(&format!("@{schema}"))?;
        db.run_startup("CREATE TABLE a (x); INSERT INTO a VALUES (1), (2);")?;
        let out = db.execute("SELECT count(*) FROM a", &[]).map_err(anyhow::Error::msg)?;
        assert_eq!(out.rows, [[Value::Integer(2)]]);
        assert!(db.run_startup("@/nonexistent/file.sql").is_err());
        assert!(db.run_startup("NOT SQL").is_err());
        Ok(())
    }

    #[test]
    fn a_file_keeps_its_data_across_reopening() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("spin-host-sqlite-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = dir.join("nested/db.sqlite");
        SqliteDb::open(Some(&file))?.run_startup("CREATE TABLE t (x); INSERT INTO t VALUES ('kept');")?;
        let out = SqliteDb::open(Some(&file))?.execute("SELECT x FROM t", &[]).map_err(anyhow::Error::msg)?;
        assert_eq!(out.rows, [[Value::Text("kept".into())]]);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn a_conditional_upsert_admits_exactly_its_limit_across_threads() -> Result<()> {
        let db = Arc::new(SqliteDb::open(None)?);
        db.run_startup("CREATE TABLE counters (scope TEXT PRIMARY KEY, n INTEGER NOT NULL)")?;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let db = Arc::clone(&db);
                std::thread::spawn(move || {
                    (0..50)
                        .filter(|_| {
                            let params = [Value::Text("k".into()), Value::Integer(10)];
                            db.execute(COUNT, &params).is_ok_and(|out| !out.rows.is_empty())
                        })
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        assert_eq!(admitted, 10);
        assert_eq!(db.execute("SELECT n FROM counters", &[]).map_err(anyhow::Error::msg)?.rows, [[Value::Integer(10)]]);
        assert_eq!(db.changes(), 0, "the last upsert changed nothing");
        Ok(())
    }
}
