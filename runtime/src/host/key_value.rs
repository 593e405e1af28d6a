//! `fermyon:spin/key-value`: the stores a component declared in `key_value_stores`.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::{
    SpinView,
    bindings::fermyon::spin::key_value::{Error, Host, HostStore},
};
use crate::stores::KeyValueStore;

/// A store the guest opened (a `fermyon:spin/key-value` store or a `wasi:keyvalue` bucket).
pub struct OpenStore(Arc<KeyValueStore>);

impl OpenStore {
    pub(super) fn new(store: Arc<KeyValueStore>) -> OpenStore {
        OpenStore(store)
    }

    pub(super) fn store(&self) -> Arc<KeyValueStore> {
        self.0.clone()
    }
}

type Answer<T> = wasmtime::Result<Result<T, Error>>;

impl SpinView<'_> {
    fn store(&self, handle: &Resource<OpenStore>) -> wasmtime::Result<Arc<KeyValueStore>> {
        Ok(self.table.get(handle)?.0.clone())
    }
}

fn other(err: String) -> Error {
    Error::Other(err)
}

impl HostStore for SpinView<'_> {
    async fn open(&mut self, label: String) -> Answer<Resource<OpenStore>> {
        // Like Spin: a store the component did not declare is refused, whether it exists or not.
        let Some(store) = self.component.key_value.get(&label) else {
            return Ok(Err(Error::AccessDenied));
        };
        Ok(Ok(self.table.push(OpenStore(store.clone()))?))
    }

    async fn get(&mut self, store: Resource<OpenStore>, key: String) -> Answer<Option<Vec<u8>>> {
        Ok(self.store(&store)?.get(&key).map_err(other))
    }

    async fn set(&mut self, store: Resource<OpenStore>, key: String, value: Vec<u8>) -> Answer<()> {
        Ok(self.store(&store)?.set(&key, &value).map_err(other))
    }

    async fn delete(&mut self, store: Resource<OpenStore>, key: String) -> Answer<()> {
        Ok(self.store(&store)?.delete(&key).map_err(other))
    }

    async fn exists(&mut self, store: Resource<OpenStore>, key: String) -> Answer<bool> {
        Ok(self.store(&store)?.exists(&key).map_err(other))
    }

    async fn get_keys(&mut self, store: Resource<OpenStore>) -> Answer<Vec<String>> {
        Ok(self.store(&store)?.keys().map_err(other))
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl Host for SpinView<'_> {}
