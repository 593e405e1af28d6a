//! What a component exports for the trigger that runs it, checked when the app is prepared: an
//! HTTP handler, a Redis, MQTT or cron message handler, or a command. A component that lacks its
//! trigger's export (or exports it with other types) stops the start with the export named.

use anyhow::{Context as _, Result};
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::{runtime::State, trigger::ComponentKind};

pub(crate) mod redis {
    wasmtime::component::bindgen!({
        world: "redis-handler",
        path: "wit/triggers",
        exports: { default: async },
    });
}

pub(crate) mod mqtt {
    wasmtime::component::bindgen!({
        world: "mqtt-handler",
        path: "wit/triggers",
        exports: { default: async },
    });
}

pub(crate) mod cron {
    wasmtime::component::bindgen!({
        world: "cron-handler",
        path: "wit/triggers",
        exports: { default: async },
    });
}

/// A component's entry point, pre-instantiated.
pub(crate) enum Handler {
    /// `wasi:http/incoming-handler`.
    Http(ProxyPre<State>),
    /// `fermyon:spin/inbound-redis`.
    Redis(redis::RedisHandlerPre<State>),
    /// `spin:mqtt-trigger`'s `handle-message`.
    Mqtt(mqtt::MqttHandlerPre<State>),
    /// `fermyon:spin-cron`'s `handle-cron-event`.
    Cron(cron::CronHandlerPre<State>),
    /// `wasi:cli/run`.
    Command(wasmtime_wasi::p2::bindings::CommandPre<State>),
}

impl Handler {
    /// The entry point `kind` needs, found in `pre`'s component.
    pub fn prepare(kind: ComponentKind, pre: InstancePre<State>) -> Result<Handler> {
        let handler = match kind {
            ComponentKind::Http => ProxyPre::new(pre).map(Handler::Http),
            ComponentKind::Redis => redis::RedisHandlerPre::new(pre).map(Handler::Redis),
            ComponentKind::Mqtt => mqtt::MqttHandlerPre::new(pre).map(Handler::Mqtt),
            ComponentKind::Cron => cron::CronHandlerPre::new(pre).map(Handler::Cron),
            ComponentKind::Command => {
                wasmtime_wasi::p2::bindings::CommandPre::new(pre).map(Handler::Command)
            }
        };
        handler
            .map_err(anyhow::Error::from)
            .with_context(|| format!("it does not export {}", kind.export()))
    }
}
