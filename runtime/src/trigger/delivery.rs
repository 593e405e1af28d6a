//! How a message trigger hands messages to its component: the same for Redis, MQTT and cron.
//!
//! - Each message gets a fresh instance, with the app's request deadline and memory cap and the
//!   host interfaces of an HTTP handler.
//! - At most [`CONCURRENCY`] handlers of one trigger run at once. A trigger takes room
//!   ([`Delivery::room`]) before it reads the next message, so a burst waits at the broker
//!   (Redis's output buffer, MQTT's in-flight window), not in this process.
//! - A handler that traps, returns an error or runs out of time is logged and counted in the
//!   app's [`Health`](super::Health); the next message is handled as usual. Nothing is retried.
//! - [`Delivery::finish`] waits for the running handlers: stopping a trigger closes its
//!   subscription first, then lets what it started end.

use std::{
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use wasmtime::Store;

use crate::{
    handler::Handler,
    runtime::{DeadlineExceeded, Runtime, State},
    trigger::Trigger,
};

/// Handlers of one trigger that may run at once.
pub const CONCURRENCY: usize = 16;

/// One message's call into a fresh instance: the handler's own answer (`Err` carries the
/// guest's error), inside wasmtime's (`Err` is a trap).
pub(crate) type Call = Box<
    dyn for<'a> FnOnce(
            &'a mut Store<State>,
            &'a Handler,
        ) -> Pin<
            Box<dyn Future<Output = wasmtime::Result<Result<(), String>>> + Send + 'a>,
        > + Send,
>;

/// Hands one trigger's messages to its component.
pub(crate) struct Delivery {
    runtime: Arc<Runtime>,
    trigger: Arc<Trigger>,
    room: Arc<Semaphore>,
}

/// Room for one more handler, taken before the message it will handle is read.
pub(crate) struct Room {
    _permit: OwnedSemaphorePermit,
}

impl Delivery {
    /// Delivery of `trigger`'s messages to its component in `runtime`.
    pub fn new(runtime: Arc<Runtime>, trigger: Trigger) -> Delivery {
        Delivery {
            runtime,
            trigger: Arc::new(trigger),
            room: Arc::new(Semaphore::new(CONCURRENCY)),
        }
    }

    /// Waits until fewer than [`CONCURRENCY`] handlers run.
    pub async fn room(&self) -> Room {
        Room {
            _permit: self
                .room
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed"),
        }
    }

    /// Runs `call` on a task of its own, in `room`; `then` is told whether the handler succeeded
    /// once it ended (MQTT acknowledges a message there).
    pub fn start(&self, room: Room, call: Call, then: impl FnOnce(bool) + Send + 'static) {
        let runtime = self.runtime.clone();
        let trigger = self.trigger.clone();
        tokio::spawn(async move {
            let succeeded = handle(&runtime, &trigger, call).await;
            then(succeeded);
            drop(room);
        });
    }

    /// Waits for every handler started to end.
    pub async fn finish(&self) {
        let _all = self
            .room
            .acquire_many(CONCURRENCY as u32)
            .await
            .expect("the semaphore is never closed");
    }
}

/// Runs one handler to its end; whether it succeeded.
async fn handle(runtime: &Arc<Runtime>, trigger: &Trigger, call: Call) -> bool {
    let started = Instant::now();
    let outcome = invoke(runtime, trigger, call).await;
    let succeeded = outcome.is_ok();
    runtime.health.record(&trigger.id, succeeded);
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(()) => tracing::info!(
            target: "spindle::message",
            trigger = %trigger.id,
            component = %trigger.component,
            duration_ms,
            "handled"
        ),
        Err(err) => tracing::warn!(
            target: "spindle::message",
            trigger = %trigger.id,
            component = %trigger.component,
            duration_ms,
            "handler failed: {err}"
        ),
    }
    succeeded
}

async fn invoke(runtime: &Arc<Runtime>, trigger: &Trigger, call: Call) -> Result<(), String> {
    let component = runtime
        .component(&trigger.component)
        .ok_or_else(|| format!("component `{}` is not in the app", trigger.component))?;
    let timeout = runtime.request_timeout();
    let mut store = runtime
        .store(component, 0)
        .map_err(|err| format!("cannot make an instance: {err:#}"))?;
    let called = runtime
        .cpu_share()
        .run(call(&mut store, &component.handler));
    match tokio::time::timeout(timeout, called).await {
        Err(_) => Err(DeadlineExceeded(timeout).to_string()),
        Ok(Err(trap)) => Err(match trap.downcast_ref::<DeadlineExceeded>() {
            Some(deadline) => deadline.to_string(),
            None => format!("the guest trapped: {trap:#}"),
        }),
        Ok(Ok(Err(error))) => Err(format!("the handler returned an error: {error}")),
        Ok(Ok(Ok(()))) => Ok(()),
    }
}

/// Resolves once `stop` says so (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Waits between attempts to reach a broker: 100 ms doubling to 10 s, reset once connected.
pub(crate) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(10);

    pub fn new() -> Backoff {
        Backoff(Self::FIRST)
    }

    /// The next attempt may come at once.
    pub fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    /// How long the next wait is.
    pub fn delay(&self) -> Duration {
        self.0
    }

    /// Waits the current delay, then doubles it; `false` when `stop` came first.
    pub async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Self::MOST);
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = stopped(stop) => false,
        }
    }
}
