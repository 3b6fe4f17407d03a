//! The Spin interfaces a component imports beyond WASI: `spin:key-value@3.0.0`,
//! `spin:variables@3.0.0` and `wasi:config/store` (Spin's synchronous view of the same
//! variables), implemented over [`crate::kv`] and the manifest's resolved variables.

use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, HasSelf, Linker, Resource, StreamReader};

use crate::kv::KvStore;
use crate::runtime::StoreData;

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spin-imports",
        imports: { default: trappable },
        with: {
            "spin:key-value/key-value.store": crate::spin_api::KvHandle,
        },
    });
}

use generated::spin::key_value::key_value;
use generated::spin::variables::variables;
use generated::wasi::config::store as config;

/// An open store, as a guest resource.
pub struct KvHandle(Arc<KvStore>);

/// Adds the Spin interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    key_value::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)?;
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
