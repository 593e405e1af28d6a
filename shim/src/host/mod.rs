//! Spin's platform interfaces (`fermyon:spin@2.0.0`) for guests: variables, key-value and SQLite
//! backed by the app's stores, and the interfaces spindle does not serve yet (Redis, PostgreSQL,
//! MySQL, MQTT, LLM) answering with their own error so that apps importing them still start.

mod key_value;
mod sqlite;
mod unsupported;
mod variables;

use std::{collections::BTreeMap, sync::Arc};

use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::stores::{Database, KeyValueStore};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "spin-host",
        path: "wit",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": super::key_value::OpenStore,
            "fermyon:spin/sqlite.connection": super::sqlite::OpenDatabase,
            "fermyon:spin/redis.connection": super::unsupported::Never,
            "fermyon:spin/mqtt.connection": super::unsupported::Never,
            "fermyon:spin/postgres.connection": super::unsupported::Never,
            "fermyon:spin/mysql.connection": super::unsupported::Never,
        },
    });
}

/// What one component may reach: its variables, and the stores and databases it declared.
#[derive(Default)]
pub struct ComponentHost {
    pub id: String,
    pub variables: BTreeMap<String, String>,
    pub key_value: BTreeMap<String, Arc<KeyValueStore>>,
    pub sqlite: BTreeMap<String, Arc<Database>>,
}

/// The view of a store's state that the interfaces work with.
pub struct SpinView<'a> {
    pub table: &'a mut ResourceTable,
    pub component: &'a ComponentHost,
}

/// Marks [`SpinView`] as the data of Spin's interfaces, for `add_to_linker`.
pub struct Spin;

impl HasData for Spin {
    type Data<'a> = SpinView<'a>;
}

/// Adds Spin's interfaces to `linker`; `view` finds them in a store's state.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SpinView<'_>,
) -> wasmtime::Result<()> {
    bindings::SpinHost::add_to_linker::<T, Spin>(linker, view)
}
