//! Spin's platform interfaces (`fermyon:spin@2.0.0`, `spin:postgres@4.0.0`) for guests:
//! variables, key-value and SQLite backed by the app's stores, outbound Redis, PostgreSQL and
//! MQTT to the hosts the manifest allows, and the interfaces spindle does not serve yet (MySQL,
//! LLM) answering with their own error so that apps importing them still start.

mod key_value;
mod mqtt;
mod postgres;
mod redis;
mod sqlite;
mod unsupported;
mod variables;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::{
    allow_list::AllowList,
    stores::{Database, KeyValueStore},
};

/// How long one call to an outside service (connect, command, query) may take.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// `work`, unless it takes longer than [`IO_TIMEOUT`].
async fn io_deadline<T>(work: impl Future<Output = T>) -> Result<T, tokio::time::error::Elapsed> {
    tokio::time::timeout(IO_TIMEOUT, work).await
}

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "spin-host",
        path: "wit",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": super::key_value::OpenStore,
            "fermyon:spin/sqlite.connection": super::sqlite::OpenDatabase,
            "fermyon:spin/redis.connection": super::redis::RedisConnection,
            "fermyon:spin/mqtt.connection": super::mqtt::MqttConnection,
            "fermyon:spin/postgres.connection": super::postgres::LegacyPgConnection,
            "spin:postgres/postgres.connection": super::postgres::PgConnection,
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
    /// Where it may connect: its `allowed_outbound_hosts`, templates rendered.
    pub allow: AllowList,
}

/// The view of a store's state that the interfaces work with.
pub struct SpinView<'a> {
    /// The store's resources (open stores, databases, connections).
    pub table: &'a mut ResourceTable,
    /// What the component may reach.
    pub component: &'a ComponentHost,
    /// When the request ends: no host call may outlive it.
    pub deadline: Instant,
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
