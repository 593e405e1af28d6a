//! Spin's platform interfaces (`fermyon:spin@2.0.0`, `spin:postgres@4.0.0`) for guests:
//! variables, key-value and SQLite backed by the app's stores, outbound Redis, PostgreSQL, MQTT
//! and MySQL to the hosts the manifest allows, and LLM (which spindle does not serve) answering
//! with its own error so that apps importing it still start.

mod key_value;
mod mqtt;
mod mysql;
mod pg_wire;
mod postgres;
mod redis;
mod sqlite;
mod unsupported;
mod variables;
mod wasi_keyvalue;

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

/// Why `address` (`scheme://[user[:password]@]host[:port][/…]`) may not be opened, when the
/// component's `allowed_outbound_hosts` does not allow it (or it has no host); credentials masked.
pub(super) fn refused(view: &SpinView<'_>, address: &str) -> Option<String> {
    let refusal = || {
        Some(format!(
            "address {} is not permitted",
            crate::allow_list::redact(address)
        ))
    };
    let Some((scheme, rest)) = address.split_once("://") else {
        return refusal();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, at)| at);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').unwrap_or((bracketed, ""));
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match port.map(str::parse::<u16>) {
        Some(Ok(port)) => Some(port),
        Some(Err(_)) => return refusal(),
        None => None,
    };
    if host.is_empty() || !view.component.allow.allows(scheme, host, port) {
        return refusal();
    }
    None
}

/// The most result bytes (values, as the database sends them) one MySQL or PostgreSQL query
/// hands back to a guest: the host holds them before the guest's memory cap can refuse them.
const MAX_RESULT_BYTES: usize = 16 << 20;

/// Why a query over [`MAX_RESULT_BYTES`] failed.
fn result_too_large() -> String {
    format!("the result is larger than the {MAX_RESULT_BYTES} bytes spindle hands to a guest")
}

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
            "wasi:keyvalue/store.bucket": super::key_value::OpenStore,
            "wasi:keyvalue/atomics.cas": super::wasi_keyvalue::Cas,
            "fermyon:spin/sqlite.connection": super::sqlite::OpenDatabase,
            "spin:sqlite/sqlite.connection": super::sqlite::OpenDatabase,
            "fermyon:spin/redis.connection": super::redis::RedisConnection,
            "fermyon:spin/mqtt.connection": super::mqtt::MqttConnection,
            "fermyon:spin/postgres.connection": super::postgres::LegacyPgConnection,
            "spin:postgres/postgres@4.0.0.connection": super::postgres::PgConnection,
            "spin:postgres/postgres@3.0.0.connection": super::postgres::PgConnection,
            "fermyon:spin/mysql.connection": super::mysql::MysqlConnection,
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
