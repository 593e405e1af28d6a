//! Runs configuration programs inside a wasm sandbox.
//!
//! The evaluator is a WebAssembly component (`schema/evaluator`, Nickel) that implements the
//! `spindle:evaluator` WIT world. It is compiled once per process (and cached on disk, see
//! [`spindle_runtime::compile_cache`]) and every evaluation gets a fresh sandbox (`sandbox`): no filesystem, network or real
//! clock, an epoch deadline and a memory cap. Another language can be plugged in by building
//! another component against the same world.

mod sandbox;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result};
use spindle_runtime::{compile_cache, epoch::Ticker};
use wasmtime::{Config, Engine, component::Linker};

pub use sandbox::Limits;

mod bindings {
    wasmtime::component::bindgen!({
        world: "evaluator",
        path: "../schema/evaluator/wit",
    });
}

use bindings::EvaluatorPre;
pub use bindings::{Diagnostic, Location};

/// The evaluator component, built by `build.rs`.
const EVALUATOR_WASM: &[u8] = include_bytes!(env!("SPINDLE_EVALUATOR_WASM"));

/// The largest value (as JSON) an evaluation may return: parsed, it takes several times that in
/// the host, outside the guest's memory cap.
const MAX_OUTPUT: usize = 32 << 20;

/// How often the engine's epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The outcome of one evaluation.
#[derive(Debug, Clone)]
pub struct Output {
    /// The evaluated program.
    pub value: serde_json::Value,
    /// Where record fields and array elements were defined, by JSON pointer.
    pub origins: std::collections::HashMap<String, Location>,
}

/// A compiled evaluator, ready to run programs. Cheap to share between threads.
pub struct Evaluator {
    engine: Engine,
    pre: EvaluatorPre<sandbox::State>,
    limits: Limits,
    _ticker: Ticker,
}

impl Evaluator {
    /// Compiles (or loads from the cache in `cache_dir`) the built-in Nickel evaluator.
    pub fn new(cache_dir: Option<PathBuf>, limits: Limits) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let component =
            compile_cache::load_or_compile(&engine, EVALUATOR_WASM, cache_dir.as_deref())
                .context("could not prepare the configuration evaluator")?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let pre = EvaluatorPre::new(linker.instantiate_pre(&component)?)?;
        let ticker = Ticker::start(&engine, EPOCH_TICK)?;
        Ok(Evaluator {
            engine,
            pre,
            limits,
            _ticker: ticker,
        })
    }

    /// Evaluates `entry`, one of `files` (repository-relative path and content). `library` files
    /// can be imported by bare name from anywhere (`import "spindle.ncl"`).
    ///
    /// `Err` holds the program's own errors; a sandbox violation (deadline, memory) comes back as a
    /// diagnostic too, since it is the program's fault.
    pub fn eval(
        &self,
        entry: &str,
        files: &[(String, String)],
        library: &[(String, String)],
    ) -> Result<Output, Vec<Diagnostic>> {
        let mut store = sandbox::store(&self.engine, &self.limits, EPOCH_TICK);
        let outcome = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.call_eval(&mut store, entry, files, library));
        match outcome {
            Ok(Ok(evaluation)) if evaluation.json.len() > MAX_OUTPUT => Err(vec![plain(format!(
                "the program's value is {} MiB of JSON; at most {} MiB is accepted",
                evaluation.json.len() >> 20,
                MAX_OUTPUT >> 20
            ))]),
            Ok(Ok(evaluation)) => {
                let value = serde_json::from_str(&evaluation.json).map_err(|err| {
                    vec![plain(format!("the evaluator returned invalid JSON: {err}"))]
                })?;
                let origins = evaluation
                    .origins
                    .into_iter()
                    .map(|origin| (origin.pointer, origin.location))
                    .collect();
                Ok(Output { value, origins })
            }
            Ok(Err(diagnostics)) => Err(diagnostics),
            Err(trap) => Err(vec![plain(sandbox::explain(&trap, &self.limits, entry))]),
        }
    }
}

fn plain(message: String) -> Diagnostic {
    Diagnostic {
        message,
        location: None,
        notes: Vec::new(),
    }
}
