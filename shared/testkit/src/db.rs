//! The testkit's database: SQLite in memory with the platform's schema, one per host (its
//! clones share it), so tests run the control plane's real SQL.

use std::cell::OnceCell;

use opencode_runtime::sql::{Row, Statement, Value, SCHEMA};
use opencode_runtime::HostError;
use rusqlite::types::{ToSqlOutput, ValueRef};

#[derive(Default)]
pub(crate) struct Db {
    connection: OnceCell<rusqlite::Connection>,
}

impl Db {
    fn connection(&self) -> Result<&rusqlite::Connection, HostError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection);
        }
        let connection = rusqlite::Connection::open_in_memory().map_err(error)?;
        connection.execute_batch(SCHEMA).map_err(error)?;
        Ok(self.connection.get_or_init(|| connection))
    }

    pub(crate) fn run(&self, statement: &Statement) -> Result<Vec<Row>, HostError> {
        let connection = self.connection()?;
        let mut prepared = connection.prepare(&statement.sql).map_err(error)?;
        let params: Vec<Param<'_>> = statement.params.iter().map(Param).collect();
        let columns = prepared.column_count();
        let mut rows = prepared.query(rusqlite::params_from_iter(params)).map_err(error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            let values = (0..columns).map(|i| row.get_ref(i).map(value).map_err(error)).collect::<Result<_, _>>()?;
            out.push(values);
        }
        Ok(out)
    }
}

struct Param<'a>(&'a Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Real(r) => ToSqlOutput::Borrowed(ValueRef::Real(*r)),
            Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Blob(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

fn value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

fn error(err: rusqlite::Error) -> HostError {
    HostError::Sql(err.to_string())
}
