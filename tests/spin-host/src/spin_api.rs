//! The Spin interfaces a component imports beyond WASI: `spin:key-value@3.0.0`,
//! `spin:sqlite@3.1.0`, `spin:variables@3.0.0` and `wasi:config/store` (Spin's synchronous
//! view of the same variables), implemented over [`crate::kv`], [`crate::sqlite`] and the
//! manifest's resolved variables.

use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, HasSelf, Linker, Resource, StreamReader};

use crate::kv::KvStore;
use crate::runtime::StoreData;
use crate::sqlite::SqliteDb;

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spin-imports",
        imports: { default: trappable },
        with: {
            "spin:key-value/key-value.store": crate::spin_api::KvHandle,
            "spin:sqlite/sqlite.connection": crate::spin_api::SqlHandle,
        },
    });
}

use generated::spin::key_value::key_value;
use generated::spin::sqlite::sqlite;
use generated::spin::variables::variables;
use generated::wasi::config::store as config;

/// An open store, as a guest resource.
pub struct KvHandle(Arc<KvStore>);

/// An open connection to the `default` database, as a guest resource.
pub struct SqlHandle(Arc<SqliteDb>);

/// Adds the Spin interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    key_value::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)?;
    sqlite::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)?;
    variables::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)?;
    config::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)?;
    Ok(())
}

/// The store behind a guest's handle.
fn store<T>(accessor: &Accessor<T, HasSelf<StoreData>>, handle: &Resource<KvHandle>) -> wasmtime::Result<Arc<KvStore>> {
    accessor.with(|mut access| -> wasmtime::Result<Arc<KvStore>> { Ok(Arc::clone(&access.get().table.get(handle)?.0)) })
}

impl key_value::Host for StoreData {}

impl key_value::HostStore for StoreData {
    fn drop(&mut self, handle: Resource<KvHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl<T> key_value::HostStoreWithStore<T> for HasSelf<StoreData> {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<KvHandle>, key_value::Error>> {
        accessor.with(|mut access| -> wasmtime::Result<_> {
            let data = access.get();
            if !data.env.key_value_stores.contains(&label) {
                return Ok(Err(key_value::Error::AccessDenied));
            }
            let Some(store) = data.env.kv.get(&label) else {
                return Ok(Err(key_value::Error::NoSuchStore));
            };
            Ok(Ok(data.table.push(KvHandle(store))?))
        })
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        handle: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, key_value::Error>> {
        let store = store(accessor, &handle)?;
        Ok(Ok(store.get(&key)))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        handle: Resource<KvHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let store = store(accessor, &handle)?;
        Ok(store.set(&key, value).map_err(key_value::Error::Other))
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        handle: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let store = store(accessor, &handle)?;
        Ok(store.delete(&key).map_err(key_value::Error::Other))
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        handle: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, key_value::Error>> {
        let store = store(accessor, &handle)?;
        Ok(Ok(store.exists(&key)))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        handle: Resource<KvHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), key_value::Error>>)> {
        let keys = store(accessor, &handle)?.keys();
        accessor.with(|mut access| -> wasmtime::Result<_> {
            let stream = StreamReader::new(&mut access, keys)?;
            let done: wasmtime::Result<Result<(), key_value::Error>> = Ok(Ok(()));
            let result = FutureReader::new(&mut access, std::future::ready(done))?;
            Ok((stream, result))
        })
    }
}

/// Opens `name` for a component: `default` is the only database there is, and a component may
/// open it only if its manifest lists it in `sqlite_databases`.
fn open_database(data: &mut StoreData, name: &str) -> wasmtime::Result<Result<Resource<SqlHandle>, sqlite::Error>> {
    if name != crate::sqlite::DEFAULT {
        return Ok(Err(sqlite::Error::NoSuchDatabase));
    }
    if !data.env.sqlite_databases.iter().any(|declared| declared == name) {
        return Ok(Err(sqlite::Error::AccessDenied));
    }
    Ok(Ok(data.table.push(SqlHandle(Arc::clone(&data.env.sqlite)))?))
}

/// The database behind a guest's handle.
fn database(
    table: &wasmtime::component::ResourceTable,
    handle: &Resource<SqlHandle>,
) -> wasmtime::Result<Arc<SqliteDb>> {
    Ok(Arc::clone(&table.get(handle)?.0))
}

/// Runs one statement to its end (under the database's lock, so it is atomic).
fn execute(
    db: &SqliteDb,
    statement: &str,
    parameters: Vec<sqlite::Value>,
) -> Result<sqlite::QueryResult, sqlite::Error> {
    let parameters: Vec<rusqlite::types::Value> = parameters.into_iter().map(to_sqlite).collect();
    let output = db.execute(statement, &parameters).map_err(sqlite::Error::Io)?;
    let rows = output
        .rows
        .into_iter()
        .map(|row| sqlite::RowResult { values: row.into_iter().map(from_sqlite).collect() })
        .collect();
    Ok(sqlite::QueryResult { columns: output.columns, rows })
}

fn to_sqlite(value: sqlite::Value) -> rusqlite::types::Value {
    match value {
        sqlite::Value::Integer(n) => rusqlite::types::Value::Integer(n),
        sqlite::Value::Real(r) => rusqlite::types::Value::Real(r),
        sqlite::Value::Text(text) => rusqlite::types::Value::Text(text),
        sqlite::Value::Blob(bytes) => rusqlite::types::Value::Blob(bytes),
        sqlite::Value::Null => rusqlite::types::Value::Null,
    }
}

fn from_sqlite(value: rusqlite::types::Value) -> sqlite::Value {
    match value {
        rusqlite::types::Value::Integer(n) => sqlite::Value::Integer(n),
        rusqlite::types::Value::Real(r) => sqlite::Value::Real(r),
        rusqlite::types::Value::Text(text) => sqlite::Value::Text(text),
        rusqlite::types::Value::Blob(bytes) => sqlite::Value::Blob(bytes),
        rusqlite::types::Value::Null => sqlite::Value::Null,
    }
}

impl sqlite::Host for StoreData {}

impl sqlite::HostConnection for StoreData {
    fn open(&mut self, database: String) -> wasmtime::Result<Result<Resource<SqlHandle>, sqlite::Error>> {
        open_database(self, &database)
    }

    fn execute(
        &mut self,
        handle: Resource<SqlHandle>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> wasmtime::Result<Result<sqlite::QueryResult, sqlite::Error>> {
        let db = database(&self.table, &handle)?;
        Ok(execute(&db, &statement, parameters))
    }

    fn last_insert_rowid(&mut self, handle: Resource<SqlHandle>) -> wasmtime::Result<i64> {
        Ok(database(&self.table, &handle)?.last_insert_rowid())
    }

    fn changes(&mut self, handle: Resource<SqlHandle>) -> wasmtime::Result<u64> {
        Ok(database(&self.table, &handle)?.changes())
    }

    fn drop(&mut self, handle: Resource<SqlHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl<T> sqlite::HostConnectionWithStore<T> for HasSelf<StoreData> {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<SqlHandle>, sqlite::Error>> {
        accessor.with(|mut access| open_database(access.get(), &database))
    }

    /// The statement runs to its end before this returns; its rows then stream from memory and
    /// the result future is already resolved (an error is the call's own `error`).
    async fn execute_async(
        accessor: &Accessor<T, Self>,
        handle: Resource<SqlHandle>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> wasmtime::Result<
        Result<(Vec<String>, StreamReader<sqlite::RowResult>, FutureReader<Result<(), sqlite::Error>>), sqlite::Error>,
    > {
        let db = accessor.with(|mut access| database(&access.get().table, &handle))?;
        let result = match execute(&db, &statement, parameters) {
            Ok(result) => result,
            Err(error) => return Ok(Err(error)),
        };
        accessor.with(|mut access| -> wasmtime::Result<_> {
            let rows = StreamReader::new(&mut access, result.rows)?;
            let done: wasmtime::Result<Result<(), sqlite::Error>> = Ok(Ok(()));
            let finished = FutureReader::new(&mut access, std::future::ready(done))?;
            Ok(Ok((result.columns, rows, finished)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<T, Self>,
        handle: Resource<SqlHandle>,
    ) -> wasmtime::Result<i64> {
        let db = accessor.with(|mut access| database(&access.get().table, &handle))?;
        Ok(db.last_insert_rowid())
    }

    async fn changes_async(accessor: &Accessor<T, Self>, handle: Resource<SqlHandle>) -> wasmtime::Result<u64> {
        let db = accessor.with(|mut access| database(&access.get().table, &handle))?;
        Ok(db.changes())
    }
}

impl variables::Host for StoreData {}

impl<T> variables::HostWithStore<T> for HasSelf<StoreData> {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        Ok(accessor.with(|mut access| match access.get().env.variables.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(variables::Error::Undefined(format!("no variable for {name:?}"))),
        }))
    }
}

impl config::Host for StoreData {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, config::Error>> {
        Ok(Ok(self.env.variables.get(&key).cloned()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, config::Error>> {
        Ok(Ok(self.env.variables.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
    }
}
