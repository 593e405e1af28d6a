//! The cron trigger plugin's `[[trigger.cron]]`: run the component's `handle-cron-event` at each
//! tick of a schedule with seconds, in UTC.
//!
//! Each tick fires once: the next tick is always the first one after the last that fired. A tick
//! more than a second in the past (the process was paused, or every handler slot was busy) is
//! skipped rather than fired late, so a backlog never bursts.

use std::{str::FromStr as _, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{
    TriggerKind,
    delivery::{Delivery, stopped},
};
use crate::{handler::Handler, runtime::Runtime, trigger::Trigger};

/// A schedule from `sec min hour day-of-month month day-of-week [year]`.
pub(super) fn schedule(expression: &str) -> Result<cron::Schedule, String> {
    let fields = expression.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(format!(
            "cron_expression `{expression}` has {fields} fields: expected 6 or 7, with seconds \
             first (`sec min hour day-of-month month day-of-week [year]`, e.g. `*/5 * * * * *`)"
        ));
    }
    cron::Schedule::from_str(expression)
        .map_err(|err| format!("cron_expression `{expression}`: {err}"))
}

/// Runs `trigger` until `stop`.
pub(super) async fn listen(
    runtime: Arc<Runtime>,
    trigger: Trigger,
    mut stop: watch::Receiver<bool>,
) {
    let TriggerKind::Cron { expression } = trigger.kind.clone() else {
        return;
    };
    let Ok(schedule) = schedule(&expression) else {
        return;
    };
    let id = trigger.id.clone();
    let delivery = Delivery::new(runtime.clone(), trigger);
    runtime.health.set_ready(&id, true);
    let mut last: Option<DateTime<Utc>> = None;
    loop {
        let now = Utc::now();
        let from = match last {
            Some(last) => last.max(now - chrono::Duration::seconds(1)),
            None => now,
        };
        let Some(tick) = schedule.after(&from).next() else {
            tracing::info!(trigger = %id, "the schedule `{expression}` has no more ticks");
            break;
        };
        // Sleeps may end a little early: wait until the tick has come by this clock.
        loop {
            let wait = (tick - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if wait.is_zero() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopped(&mut stop) => {
                    runtime.health.set_ready(&id, false);
                    delivery.finish().await;
                    return;
                }
            }
        }
        last = Some(tick);
        let room = tokio::select! {
            room = delivery.room() => room,
            () = stopped(&mut stop) => break,
        };
        let timestamp = u64::try_from(tick.timestamp()).unwrap_or(0);
        delivery.start(
            room,
            Box::new(move |store, handler| {
                Box::pin(async move {
                    let Handler::Cron(pre) = handler else {
                        wasmtime::bail!("the component is not a cron handler");
                    };
                    let instance = pre.instantiate_async(&mut *store).await?;
                    use crate::handler::cron::fermyon::spin_cron::cron_types::{Error, Metadata};
                    let answer = instance
                        .call_handle_cron_event(&mut *store, Metadata { timestamp })
                        .await?;
                    Ok(answer.map_err(|Error::Other(message)| message))
                })
            }),
            |_| {},
        );
    }
    runtime.health.set_ready(&id, false);
    delivery.finish().await;
}
