//! The loop that keeps a cluster equal to a followed repository: fetch the revision, run a pass,
//! then wait for the interval, a webhook, a push into a local repository, or the stop signal.
//! While something rolls out, or after a failure, it comes back soon instead.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result};
use tokio::{net::TcpListener, sync::mpsc};

use super::{
    Outcome, Reconciler, endpoints,
    lease::{Election, Holder},
    short,
};
use crate::revisions::{Fetched, Remote, Verdict, watch};

/// How soon to look again while something rolls out, and after a first failure.
pub const SOON: Duration = Duration::from_secs(5);
/// The longest wait between attempts after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The wait after `failures` failed passes in a row (at least one): [`SOON`], doubling up to
/// [`MAX_BACKOFF`], spread by `jitter` (0 to 1) over ±25% so that reconcilers failing together
/// do not retry together.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let doubled = SOON.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled
        .min(MAX_BACKOFF)
        .mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A number from 0 to 1 that differs from one call to the next, enough to spread retries.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    f64::from(nanos % 1000) / 999.0
}

/// A reconciler following a remote.
pub struct Controller {
    remote: Remote,
    reconciler: Reconciler,
    /// Time between passes when nothing else wakes the loop.
    interval: Duration,
    /// With several replicas: the Lease that decides which one passes.
    election: Option<Election>,
}

impl Controller {
    /// A controller for `remote`, passing every `interval` (at least a second).
    pub fn new(remote: Remote, reconciler: Reconciler, interval: Duration) -> Self {
        Controller {
            remote,
            reconciler,
            interval: interval.max(Duration::from_secs(1)),
            election: None,
        }
    }

    /// Passes only while this replica holds the Lease of `election`.
    pub fn with_election(mut self, election: Election) -> Self {
        self.election = Some(election);
        self
    }

    /// Fetches the followed revision and runs one pass.
    pub async fn once(&mut self) -> Result<Outcome> {
        self.cycle("once").await
    }

    /// Serves the endpoints on `listener` (`/healthz`, `/readyz`, `/metrics`, and `POST /hook`
    /// when there is a `webhook_secret`) and passes until `shutdown` completes.
    pub async fn run(
        mut self,
        listener: TcpListener,
        webhook_secret: Option<Arc<Vec<u8>>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let (trigger, mut triggers) = forwarded(&mut self.reconciler);
        let ready = Arc::new(AtomicBool::new(false));
        let lease = match self.election.take() {
            Some(election) => Some(campaign(election, trigger.clone()).await),
            None => None,
        };
        tokio::spawn(endpoints::serve(
            listener,
            endpoints::Endpoints {
                metrics: self.reconciler.metrics.clone(),
                ready: ready.clone(),
                webhook_secret,
                trigger: trigger.clone(),
                lease: lease.clone(),
            },
        ));
        // Pushes into a local repository wake the loop at once.
        let _watch = match self.remote.local_path() {
            Some(path) => Some(watch_pushes(&path, trigger)?),
            None => None,
        };
        let mut shutdown = std::pin::pin!(shutdown);
        let mut reason = "start";
        let mut failures = 0;
        loop {
            let holder = lease
                .as_ref()
                .map(|lease| lease.lock().unwrap_or_else(|p| p.into_inner()).clone());
            if let Some(holder) = &holder {
                if !holder.me {
                    // A follower waits for the Lease; the campaign wakes it when it leads.
                    reason = tokio::select! {
                        Some(why) = triggers.recv() => why,
                        () = &mut shutdown => return Ok(()),
                    };
                    continue;
                }
                self.reconciler.set_leader(holder.identity.clone());
            }
            let wait = match self.cycle(reason).await {
                Ok(outcome)
                    if outcome.applied || outcome.stopped.as_ref().is_some_and(|s| s.stalled) =>
                {
                    failures = 0;
                    if outcome.applied {
                        ready.store(true, Ordering::Relaxed);
                    }
                    if outcome.progressing {
                        SOON
                    } else {
                        self.interval
                    }
                }
                // Not applied and not stalled (an apply that failed, an ownership conflict): it
                // may pass later without a new revision.
                Ok(_) => {
                    failures += 1;
                    backoff(failures, jitter()).min(self.interval.max(SOON))
                }
                Err(err) => {
                    failures += 1;
                    let wait = backoff(failures, jitter());
                    tracing::error!("reconcile failed: {err:#}; next attempt in {wait:.0?}");
                    wait
                }
            };
            reason = tokio::select! {
                () = tokio::time::sleep(wait) => "interval",
                Some(why) = triggers.recv() => why,
                () = &mut shutdown => return Ok(()),
            };
        }
    }

    /// One fetch and pass.
    async fn cycle(&mut self, reason: &str) -> Result<Outcome> {
        let fetched = fetch(&self.remote).await?;
        // An untrusted revision's files are not read at all.
        match &fetched.verdict {
            Some(Verdict::Refused(why)) => {
                let message = format!(
                    "revision {} was not applied: its signature is not trusted: {why}",
                    short(&fetched.commit)
                );
                tracing::error!(revision = short(&fetched.commit), "{message}");
                return self
                    .reconciler
                    .refuse(&fetched.commit, "VerificationFailed", message)
                    .await;
            }
            Some(Verdict::SignedBy(signer)) => {
                tracing::info!(revision = short(&fetched.commit), "signed by {signer}");
            }
            None => {}
        }
        let (snapshot, commit) = fetched.folder.snapshot(&fetched.commit)?;
        tracing::info!(revision = short(&commit), reason, "reconciling");
        let outcome = self.reconciler.pass(&commit, &snapshot).await?;
        if !outcome.applied {
            tracing::error!(
                revision = short(&commit),
                "not applied: {}",
                outcome.message
            );
        } else {
            tracing::info!(
                revision = short(&commit),
                applied = outcome.sent.len(),
                unchanged = outcome.unchanged,
                pruned = outcome.pruned.len(),
                drift_corrected = outcome.drifted.len(),
                ready = outcome.ready,
                "{}",
                outcome.message
            );
        }
        Ok(outcome)
    }
}

/// The loop's wake-ups. Pushes, webhooks and the Lease send on the returned sender; each is
/// counted for `reconciler` (so that a pass waiting for health yields to it) and passed on to the
/// returned receiver.
fn forwarded(
    reconciler: &mut Reconciler,
) -> (mpsc::Sender<&'static str>, mpsc::Receiver<&'static str>) {
    let (sender, mut incoming) = mpsc::channel::<&'static str>(8);
    let (forward, triggers) = mpsc::channel(1);
    let (count, arrivals) = tokio::sync::watch::channel(0u64);
    reconciler.yield_to(arrivals);
    tokio::spawn(async move {
        while let Some(why) = incoming.recv().await {
            if why != "lease" {
                count.send_modify(|n| *n += 1);
            }
            // A full queue means a wake-up is pending already.
            let _ = forward.try_send(why);
        }
    });
    (sender, triggers)
}

/// Runs the election in the background for as long as the process lives: takes or renews the
/// Lease every third of its duration and wakes the loop (`"lease"`) when this replica becomes
/// the leader. Returns who holds it, kept current; the first round is done before it returns.
async fn campaign(
    election: Election,
    wake: mpsc::Sender<&'static str>,
) -> Arc<std::sync::Mutex<Holder>> {
    let held = Arc::new(std::sync::Mutex::new(Holder {
        identity: None,
        me: false,
    }));
    let shared = held.clone();
    let (started, first_round) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut started = Some(started);
        loop {
            let round = election.round().await;
            let holder = match round {
                Ok(holder) => holder,
                Err(err) => {
                    // Not knowing is not leading: stop writing until a round succeeds.
                    tracing::warn!("leader election: {err:#}");
                    Holder {
                        identity: None,
                        me: false,
                    }
                }
            };
            let was_leader = {
                let mut current = shared.lock().unwrap_or_else(|p| p.into_inner());
                let was = current.me;
                if holder != *current {
                    match (&holder.identity, holder.me) {
                        (Some(identity), true) if !was => {
                            tracing::info!("leading as {identity}");
                        }
                        (identity, false) if was || current.identity != holder.identity => {
                            tracing::info!(
                                "following {} (this replica is {})",
                                identity.as_deref().unwrap_or("nobody"),
                                election.identity()
                            );
                        }
                        _ => {}
                    }
                }
                *current = holder.clone();
                was
            };
            if holder.me && !was_leader {
                let _ = wake.try_send("lease");
            }
            if let Some(started) = started.take() {
                let _ = started.send(());
            }
            tokio::time::sleep(election.renew_every()).await;
        }
    });
    let _ = first_round.await;
    held
}

/// Fetches on a blocking thread (git2 is synchronous).
async fn fetch(remote: &Remote) -> Result<Fetched> {
    let remote = remote.clone();
    tokio::task::spawn_blocking(move || remote.fetch()).await?
}

/// Watches a local repository's refs and triggers a pass when one moves.
fn watch_pushes(
    path: &std::path::Path,
    trigger: mpsc::Sender<&'static str>,
) -> Result<notify::RecommendedWatcher> {
    let git_dir = git2::Repository::open(path)
        .with_context(|| format!("{} is not a Git repository", path.display()))?
        .path()
        .to_path_buf();
    let (watcher, mut changes) = watch::debounced(&git_dir, watch::is_ref_change)?;
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            let _ = trigger.try_send("push");
        }
    });
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_exponentially_with_jitter_up_to_a_cap() {
        assert_eq!(backoff(1, 0.5), SOON);
        assert_eq!(backoff(2, 0.5), SOON * 2);
        assert_eq!(backoff(4, 0.5), SOON * 8);
        assert_eq!(backoff(30, 0.5), MAX_BACKOFF);
        assert_eq!(backoff(1, 0.0), SOON.mul_f64(0.75));
        assert_eq!(backoff(1, 1.0), SOON.mul_f64(1.25));
        assert!(backoff(u32::MAX, 1.0) <= MAX_BACKOFF.mul_f64(1.25));
        let spread = jitter();
        assert!((0.0..=1.0).contains(&spread));
    }
}
