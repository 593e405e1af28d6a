//! Prometheus metrics of a reconciler, in the text exposition format.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use super::Outcome;

/// A reconciler's counters and gauges, updated after each pass and served at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    reconciles: AtomicU64,
    failures: AtomicU64,
    duration_micros_sum: AtomicU64,
    last_duration_micros: AtomicU64,
    applied: AtomicU64,
    pruned: AtomicU64,
    drift_corrected: AtomicU64,
    last_success_seconds: AtomicU64,
    ready: AtomicU64,
}

impl Metrics {
    /// Records a pass that applied its revision: its duration, the objects it sent, pruned and put
    /// back, and whether it is ready.
    pub fn record(&self, outcome: &Outcome, took: Duration) {
        self.count(took);
        self.applied
            .fetch_add(outcome.sent.len() as u64, Ordering::Relaxed);
        self.pruned
            .fetch_add(outcome.pruned.len() as u64, Ordering::Relaxed);
        self.drift_corrected
            .fetch_add(outcome.drifted.len() as u64, Ordering::Relaxed);
        self.ready
            .store(u64::from(outcome.ready), Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.last_success_seconds
            .store(now.as_secs(), Ordering::Relaxed);
    }

    /// Records a pass that applied nothing, and marks the reconciler not ready.
    pub fn record_failure(&self, took: Duration) {
        self.count(took);
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.ready.store(0, Ordering::Relaxed);
    }

    fn count(&self, took: Duration) {
        let micros = took.as_micros() as u64;
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        self.duration_micros_sum
            .fetch_add(micros, Ordering::Relaxed);
        self.last_duration_micros.store(micros, Ordering::Relaxed);
    }

    /// The metrics as Prometheus text.
    pub fn render(&self) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let seconds = |micros: u64| micros as f64 / 1e6;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "spindle_reconciles_total",
            "counter",
            "Reconcile passes run.",
            get(&self.reconciles).to_string(),
        );
        metric(
            "spindle_reconcile_failures_total",
            "counter",
            "Passes that applied nothing: invalid revision, refused prune, apply error.",
            get(&self.failures).to_string(),
        );
        metric(
            "spindle_reconcile_duration_seconds_sum",
            "counter",
            "Total time spent in reconcile passes.",
            seconds(get(&self.duration_micros_sum)).to_string(),
        );
        metric(
            "spindle_reconcile_duration_seconds_last",
            "gauge",
            "Duration of the last pass.",
            seconds(get(&self.last_duration_micros)).to_string(),
        );
        metric(
            "spindle_objects_applied_total",
            "counter",
            "Objects sent with server-side apply.",
            get(&self.applied).to_string(),
        );
        metric(
            "spindle_objects_pruned_total",
            "counter",
            "Objects deleted because they left the render.",
            get(&self.pruned).to_string(),
        );
        metric(
            "spindle_drift_corrected_total",
            "counter",
            "Objects put back after someone else changed them.",
            get(&self.drift_corrected).to_string(),
        );
        metric(
            "spindle_last_success_timestamp_seconds",
            "gauge",
            "When a pass last applied a revision.",
            get(&self.last_success_seconds).to_string(),
        );
        metric(
            "spindle_ready",
            "gauge",
            "1 when the last pass applied and everything is healthy.",
            get(&self.ready).to_string(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_exposition() {
        let metrics = Metrics::default();
        let outcome = Outcome {
            sent: vec![],
            ready: true,
            ..Outcome::default()
        };
        metrics.record(&outcome, Duration::from_millis(250));
        metrics.record_failure(Duration::from_millis(50));
        let text = metrics.render();
        assert!(text.contains("spindle_reconciles_total 2\n"), "{text}");
        assert!(text.contains("spindle_reconcile_failures_total 1\n"));
        assert!(text.contains("spindle_reconcile_duration_seconds_sum 0.3\n"));
        assert!(text.contains("# TYPE spindle_ready gauge\nspindle_ready 0\n"));
    }
}
