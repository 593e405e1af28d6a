//! Whether an app's triggers are connected, and what they handled: what the health endpoint
//! (`/.well-known/spin/health`) and the app's info report.

use std::{collections::BTreeMap, sync::Mutex};

/// The state of every message trigger of one app.
#[derive(Debug, Default)]
pub struct Health(Mutex<BTreeMap<String, TriggerHealth>>);

/// The state of one trigger.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TriggerHealth {
    /// Subscribed (or scheduled) and receiving.
    pub ready: bool,
    /// Messages whose handler succeeded.
    pub handled: u64,
    /// Messages whose handler trapped, returned an error or ran out of time.
    pub failed: u64,
}

impl Health {
    fn update(&self, trigger: &str, change: impl FnOnce(&mut TriggerHealth)) {
        let mut triggers = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(triggers.entry(trigger.to_owned()).or_default());
    }

    /// Marks `trigger` as receiving, or not (connecting, reconnecting, stopped).
    pub(crate) fn set_ready(&self, trigger: &str, ready: bool) {
        self.update(trigger, |health| health.ready = ready);
    }

    /// Counts one message handled by `trigger`'s component, successfully or not.
    pub(crate) fn record(&self, trigger: &str, succeeded: bool) {
        self.update(trigger, |health| {
            if succeeded {
                health.handled += 1;
            } else {
                health.failed += 1;
            }
        });
    }

    /// The triggers that are not receiving, by id.
    pub fn not_ready(&self) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .filter(|(_, health)| !health.ready)
            .map(|(id, _)| id)
            .collect()
    }

    /// Every trigger's state, by id.
    pub fn snapshot(&self) -> BTreeMap<String, TriggerHealth> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}
