//! The store each evaluation runs in: what the guest may touch and how much it may use.

use std::time::Duration;

use wasmtime::{Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{
    ResourceTable, WasiCtx, WasiCtxView, WasiView,
    clocks::{HostMonotonicClock, HostWallClock},
};

/// What one evaluation may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall time before the evaluation is cut off.
    pub deadline: Duration,
    /// Linear memory the guest may grow to, in bytes.
    pub memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(10),
            memory: 1 << 30,
        }
    }
}

pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A clock stopped at the Unix epoch: evaluation must not depend on when it runs.
struct Frozen;

impl HostWallClock for Frozen {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Frozen {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A fresh store: no preopened directories, no environment, no arguments, no network, stdio
/// discarded, frozen clocks, bounded memory, and an epoch deadline.
pub fn store(engine: &Engine, limits: &Limits, tick: Duration) -> Store<State> {
    let wasi = WasiCtx::builder()
        .wall_clock(Frozen)
        .monotonic_clock(Frozen)
        .build();
    let state = State {
        wasi,
        table: ResourceTable::new(),
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory)
            .instances(4)
            .trap_on_grow_failure(true)
            .build(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits as &mut dyn ResourceLimiter);
    let ticks = (limits.deadline.as_millis() / tick.as_millis().max(1)).max(1);
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    store
}

/// Turns a trap into a sentence a user can act on.
pub fn explain(error: &wasmtime::Error, limits: &Limits, entry: &str) -> String {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!(
            "{entry}: evaluation did not finish within {:?} (an endless recursion or loop?)",
            limits.deadline
        ),
        Some(Trap::StackOverflow) => {
            format!("{entry}: evaluation overflowed its stack (a recursion too deep?)")
        }
        _ if is_memory_exhausted(error) => format!(
            "{entry}: evaluation needed more than {} MiB of memory",
            limits.memory >> 20
        ),
        _ => format!("{entry}: the evaluator failed: {error:#}"),
    }
}

fn is_memory_exhausted(error: &wasmtime::Error) -> bool {
    let text = format!("{error:#}");
    text.contains("forcing trap when growing memory") || text.contains("memory allocation")
}
