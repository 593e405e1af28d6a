//! Triggers other than HTTP: what starts a component besides a request, read from the manifest
//! ([`resolve`]) and run while the app serves ([`Listeners`]).
//!
//! - `redis`: Spin's Redis trigger, `[[trigger.redis]]`; the component exports
//!   `fermyon:spin/inbound-redis`.
//! - `mqtt`: the MQTT trigger plugin's `[[trigger.mqtt]]`; the component exports
//!   `handle-message` of `spin:mqtt-trigger`'s `spin-mqtt` world.
//! - `cron`: the cron trigger plugin's `[[trigger.cron]]`; the component exports
//!   `handle-cron-event` of `fermyon:spin-cron`'s `spin-cron` world.
//! - `command`: the command trigger plugin's `[[trigger.command]]`; the component is a
//!   `wasi:cli` command, run once ([`command::run`]).
//!
//! Delivery is the same for every message trigger ([`delivery`]): each message gets a fresh
//! instance with the request deadline and memory cap of an HTTP request; a handler that traps or
//! returns an error is logged and counted and the next message is handled; at most
//! [`delivery::CONCURRENCY`] handlers of one trigger run at once, and the trigger stops reading
//! from its broker until one finishes (backpressure, no unbounded queue); a lost connection is
//! retried with exponential backoff; stopping closes the subscriptions and lets running handlers
//! finish.

pub mod command;
mod cron;
pub(crate) mod delivery;
mod health;
mod listeners;
pub(crate) mod locked;
pub(crate) mod mqtt;
mod redis;
mod spec;

pub use health::Health;
pub use listeners::Listeners;
pub use spec::{ComponentKind, MqttSession, Trigger, TriggerKind};
pub(crate) use spec::{render, resolve};
