//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch), as Spin 3 serves it to newer SDKs: the
//! same stores as `fermyon:spin/key-value`, so that a key written through one is read through
//! the other. A bucket is a store label the component declared in `key_value_stores`; any other
//! is `access-denied`, as in Spin. `increment` keeps its integer as 8 little-endian bytes.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::{
    SpinView,
    bindings::wasi::keyvalue::{
        atomics::{self, CasError},
        batch,
        store::{self, Error, KeyResponse},
    },
    key_value::OpenStore,
};
use crate::stores::KeyValueStore;

/// A compare-and-swap the guest started: the key and the value it saw.
pub struct Cas {
    store: Arc<KeyValueStore>,
    key: String,
    seen: Option<Vec<u8>>,
}

type Answer<T> = wasmtime::Result<Result<T, Error>>;

fn other(err: String) -> Error {
    Error::Other(err)
}

impl SpinView<'_> {
    fn bucket(&self, handle: &Resource<OpenStore>) -> wasmtime::Result<Arc<KeyValueStore>> {
        Ok(self.table.get(handle)?.store())
    }
}

impl store::Host for SpinView<'_> {
    async fn open(&mut self, identifier: String) -> Answer<Resource<OpenStore>> {
        let Some(store) = self.component.key_value.get(&identifier) else {
            return Ok(Err(Error::AccessDenied));
        };
        Ok(Ok(self.table.push(OpenStore::new(store.clone()))?))
    }
}

impl store::HostBucket for SpinView<'_> {
    async fn get(&mut self, bucket: Resource<OpenStore>, key: String) -> Answer<Option<Vec<u8>>> {
        Ok(self.bucket(&bucket)?.get(&key).map_err(other))
    }

    async fn set(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> Answer<()> {
        Ok(self.bucket(&bucket)?.set(&key, &value).map_err(other))
    }

    async fn delete(&mut self, bucket: Resource<OpenStore>, key: String) -> Answer<()> {
        Ok(self.bucket(&bucket)?.delete(&key).map_err(other))
    }

    async fn exists(&mut self, bucket: Resource<OpenStore>, key: String) -> Answer<bool> {
        Ok(self.bucket(&bucket)?.exists(&key).map_err(other))
    }

    /// Every key at once (no cursor), as Spin answers.
    async fn list_keys(
        &mut self,
        bucket: Resource<OpenStore>,
        _cursor: Option<String>,
    ) -> Answer<KeyResponse> {
        Ok(self
            .bucket(&bucket)?
            .keys()
            .map(|keys| KeyResponse { keys, cursor: None })
            .map_err(other))
    }

    async fn drop(&mut self, bucket: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for SpinView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> Answer<i64> {
        Ok(self.bucket(&bucket)?.increment(&key, delta).map_err(other))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), CasError>> {
        let swapped = {
            let cas = self.table.get(&cas)?;
            cas.store.swap(&cas.key, cas.seen.as_deref(), &value)
        };
        Ok(match swapped {
            Ok(true) => {
                self.table.delete(cas)?;
                Ok(())
            }
            Ok(false) => Err(CasError::CasFailed(cas)),
            Err(err) => {
                self.table.delete(cas)?;
                Err(CasError::StoreError(other(err)))
            }
        })
    }
}

impl atomics::HostCas for SpinView<'_> {
    async fn new(&mut self, bucket: Resource<OpenStore>, key: String) -> Answer<Resource<Cas>> {
        let store = self.bucket(&bucket)?;
        let seen = match store.get(&key) {
            Ok(seen) => seen,
            Err(err) => return Ok(Err(other(err))),
        };
        Ok(Ok(self.table.push(Cas { store, key, seen })?))
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Answer<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&cas)?.seen.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for SpinView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> Answer<Vec<(String, Option<Vec<u8>>)>> {
        let store = self.bucket(&bucket)?;
        Ok(keys
            .into_iter()
            .map(|key| store.get(&key).map(|value| (key, value)))
            .collect::<Result<_, _>>()
            .map_err(other))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<OpenStore>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let store = self.bucket(&bucket)?;
        Ok(key_values
            .iter()
            .try_for_each(|(key, value)| store.set(key, value))
            .map_err(other))
    }

    async fn delete_many(&mut self, bucket: Resource<OpenStore>, keys: Vec<String>) -> Answer<()> {
        let store = self.bucket(&bucket)?;
        Ok(keys
            .iter()
            .try_for_each(|key| store.delete(key))
            .map_err(other))
    }
}
