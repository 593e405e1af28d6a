//! The running message triggers of one prepared app.

use std::sync::Arc;

use tokio::{sync::watch, task::JoinHandle};

use super::TriggerKind;
use crate::runtime::Runtime;

/// The Redis, MQTT and cron triggers of one app, receiving until [`Listeners::stop`].
pub struct Listeners {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Listeners {
    /// Starts every message trigger of `runtime` (a command is run by [`super::command::run`]).
    /// Each is marked not ready in the app's health until it receives.
    pub fn start(runtime: &Arc<Runtime>) -> Listeners {
        let (stop, stopping) = watch::channel(false);
        let mut tasks = Vec::new();
        for trigger in runtime.triggers() {
            let runtime = runtime.clone();
            let stopping = stopping.clone();
            let trigger = trigger.clone();
            let task = match &trigger.kind {
                TriggerKind::Redis { .. } => {
                    runtime.health.set_ready(&trigger.id, false);
                    tokio::spawn(super::redis::listen(runtime, trigger, stopping))
                }
                TriggerKind::Mqtt { .. } => {
                    runtime.health.set_ready(&trigger.id, false);
                    tokio::spawn(super::mqtt::listen(runtime, trigger, stopping))
                }
                TriggerKind::Cron { .. } => {
                    runtime.health.set_ready(&trigger.id, false);
                    tokio::spawn(super::cron::listen(runtime, trigger, stopping))
                }
                TriggerKind::Command => continue,
            };
            tasks.push(task);
        }
        Listeners { stop, tasks }
    }

    /// Listeners of no trigger.
    pub fn closed() -> Listeners {
        Listeners {
            stop: watch::Sender::new(true),
            tasks: Vec::new(),
        }
    }

    /// Closes every subscription, then waits for the handlers they started.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
