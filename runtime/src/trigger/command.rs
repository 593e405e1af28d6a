//! The command trigger plugin's `[[trigger.command]]`: the component is a `wasi:cli` command,
//! run once; its exit status is the app's: 0, or 1 for a failure (WASI 0.2's `exit` carries
//! success or failure only), whether the guest exits, its `run` returns an error, or it traps
//! (the trap is logged). A command has no deadline of its own: a Kubernetes Job bounds it with
//! `activeDeadlineSeconds`.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, Result, anyhow};

use super::TriggerKind;
use crate::{handler::Handler, runtime::Runtime};

/// What a command that runs on is allowed: long enough never to be reached.
const NO_DEADLINE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Runs the app's command component with `args` after its name (`argv[0]`, as the plugin
/// passes it); its exit status.
pub async fn run(runtime: &Arc<Runtime>, args: &[String]) -> Result<i32> {
    let trigger = runtime
        .triggers()
        .iter()
        .find(|trigger| trigger.kind == TriggerKind::Command)
        .ok_or_else(|| anyhow!("the app has no [[trigger.command]]"))?;
    let component = runtime
        .component(&trigger.component)
        .with_context(|| format!("component `{}` is not in the app", trigger.component))?;
    let Handler::Command(pre) = &component.handler else {
        anyhow::bail!("component `{}` is not a command", trigger.component);
    };
    let argv: Vec<String> = std::iter::once(trigger.component.clone())
        .chain(args.iter().cloned())
        .collect();
    let mut store = runtime.store_for(component, 0, NO_DEADLINE, &argv)?;
    let command = pre.instantiate_async(&mut store).await?;
    let status = match command.wasi_cli_run().call_run(&mut store).await {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(err) => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => exit.0,
            None => {
                tracing::error!(component = %trigger.component, "the command trapped: {err:?}");
                1
            }
        },
    };
    tracing::info!(component = %trigger.component, status, "the command exited");
    Ok(status)
}
