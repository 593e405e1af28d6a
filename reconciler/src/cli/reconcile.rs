//! `spindle reconcile`: follow a repository and keep the cluster equal to it.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use anyhow::{Context as _, Result};
use clap::Args;
use tokio::sync::mpsc;

use super::{EvalArgs, apply::SettingsArgs, cache_dir, exit};
use crate::{
    cluster,
    reconcile::{Reconciler, endpoints::Endpoints, short},
    source::{Credentials, Follow, Source, clean_path, parse_follow},
};

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The repository: an https or ssh URL, `file://PATH`, or a local path (a bare repository or
    /// a clone). Local ones are watched, so a commit or push is picked up at once.
    #[arg(long, env = "SPINDLE_REPO", value_name = "URL")]
    repo: String,
    /// What to apply: `branch:NAME` (or just `NAME`), `tag:PATTERN` (the highest matching tag,
    /// as a version), or `commit:SHA`.
    #[arg(long, default_value = "main", value_parser = parse_follow, value_name = "REF")]
    follow: Follow,
    /// The folder inside the repository that holds `environments/`.
    #[arg(long, default_value = "", value_name = "PATH")]
    path: String,
    /// Seconds between reconciles (fetch, apply what changed, correct drift).
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    interval: f64,
    /// Where to serve /healthz, /readyz, /metrics and the webhook receiver (POST /hook).
    #[arg(long, default_value = "127.0.0.1:9090", value_name = "ADDRESS")]
    listen: SocketAddr,
    /// File holding the webhook secret (GitHub/Gitea HMAC, GitLab token); without it, /hook is
    /// off.
    #[arg(long, env = "SPINDLE_WEBHOOK_SECRET_FILE", value_name = "FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// User name for https (default `git`).
    #[arg(long, env = "SPINDLE_GIT_USERNAME")]
    git_username: Option<String>,
    /// File holding the https password or token (or set SPINDLE_GIT_PASSWORD).
    #[arg(long, env = "SPINDLE_GIT_PASSWORD_FILE", value_name = "FILE")]
    git_password_file: Option<PathBuf>,
    /// Private key for ssh URLs.
    #[arg(long, env = "SPINDLE_SSH_KEY", value_name = "FILE")]
    ssh_key: Option<PathBuf>,
    /// Host keys the ssh server must present (default ~/.ssh/known_hosts).
    #[arg(long, env = "SPINDLE_KNOWN_HOSTS", value_name = "FILE")]
    known_hosts: Option<PathBuf>,
    /// A folder of credential files, each used when present: `username`, `password`, `ssh-key`,
    /// `known-hosts`, `webhook-secret` (a mounted Secret). The flags above take precedence.
    #[arg(long, env = "SPINDLE_CREDENTIALS_DIR", value_name = "DIR")]
    credentials_dir: Option<PathBuf>,
    /// Accept any ssh host key. Never in production.
    #[arg(long)]
    insecure_skip_host_key_check: bool,
    /// Run one reconcile and exit, with `spindle apply`'s exit status.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    eval: EvalArgs,
}

/// How soon to look again while something rolls out, or after a failure.
const SOON: Duration = Duration::from_secs(5);

pub fn reconcile(args: &ReconcileArgs) -> Result<i32> {
    let source = source(args)?;
    let settings = args.settings.settings(args.repo.clone());
    let evaluator = args.eval.evaluator()?;
    let webhook_secret = match args.file_or_credential(&args.webhook_secret_file, "webhook-secret")
    {
        Some(path) => Some(Arc::new(read_secret(&path)?.into_bytes())),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = cluster::client().await?;
        let mut reconciler = Reconciler::new(client, evaluator, settings).await?;
        if args.once {
            let fetched = fetch(&source).await?;
            let (snapshot, commit) = fetched.folder.snapshot(&fetched.commit)?;
            let outcome = reconciler.pass(&commit, &snapshot).await?;
            super::apply::print_outcome(&outcome, args.settings.dry_run);
            return Ok(super::apply::exit_code(&outcome, &args.settings));
        }
        let (trigger, mut triggers) = mpsc::channel(1);
        let ready = Arc::new(AtomicBool::new(false));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("could not listen on {}", args.listen))?;
        eprintln!(
            "serving /healthz /readyz /metrics /hook on http://{}",
            listener.local_addr()?
        );
        tokio::spawn(crate::reconcile::endpoints::serve(
            listener,
            Endpoints {
                metrics: reconciler.metrics.clone(),
                ready: ready.clone(),
                webhook_secret,
                trigger: trigger.clone(),
            },
        ));
        // Pushes into a local repository wake the loop at once.
        let _watch = match source.local_path() {
            Some(path) => Some(watch_pushes(&path, trigger.clone())?),
            None => None,
        };
        let interval = Duration::from_secs_f64(args.interval.max(1.0));
        let mut shutdown = std::pin::pin!(spindle_shim::server::termination());
        let mut reason = "start";
        loop {
            let wait = match cycle(&source, &mut reconciler, reason).await {
                Ok(outcome) => {
                    if outcome.applied {
                        ready.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if outcome.progressing { SOON } else { interval }
                }
                Err(err) => {
                    tracing::error!("reconcile failed: {err:#}");
                    SOON
                }
            };
            reason = tokio::select! {
                () = tokio::time::sleep(wait) => "interval",
                Some(why) = triggers.recv() => why,
                () = &mut shutdown => break,
            };
        }
        eprintln!("stopped");
        Ok(exit::OK)
    })
}

impl ReconcileArgs {
    /// `flag`'s file, or else `key` in the credentials folder when it is there.
    fn file_or_credential(&self, flag: &Option<PathBuf>, key: &str) -> Option<PathBuf> {
        flag.clone().or_else(|| {
            self.credentials_dir
                .as_ref()
                .map(|dir| dir.join(key))
                .filter(|path| path.is_file())
        })
    }
}

fn read_secret(path: &std::path::Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?
        .trim()
        .to_owned())
}

fn source(args: &ReconcileArgs) -> Result<Source> {
    let password = match args.file_or_credential(&args.git_password_file, "password") {
        Some(path) => Some(read_secret(&path)?),
        None => std::env::var("SPINDLE_GIT_PASSWORD").ok(),
    };
    let username = match (
        &args.git_username,
        args.file_or_credential(&None, "username"),
    ) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(path)) => Some(read_secret(&path)?),
        (None, None) => None,
    };
    Ok(Source {
        url: args.repo.clone(),
        follow: args.follow.clone(),
        path: clean_path(&args.path)?,
        credentials: Credentials {
            username,
            password,
            ssh_key: args.file_or_credential(&args.ssh_key, "ssh-key"),
            known_hosts: args.file_or_credential(&args.known_hosts, "known-hosts"),
            insecure_skip_host_key_check: args.insecure_skip_host_key_check,
        },
        cache: cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("sources"),
    })
}

/// Fetches on a blocking thread (git2 is synchronous).
async fn fetch(source: &Source) -> Result<crate::source::Fetched> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || source.fetch()).await?
}

/// One fetch and pass.
async fn cycle(
    source: &Source,
    reconciler: &mut Reconciler,
    reason: &str,
) -> Result<crate::reconcile::Outcome> {
    let fetched = fetch(source).await?;
    let (snapshot, commit) = fetched.folder.snapshot(&fetched.commit)?;
    tracing::info!(revision = short(&commit), reason, "reconciling");
    let outcome = reconciler.pass(&commit, &snapshot).await?;
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

/// Watches a local repository's refs and triggers a reconcile when one moves.
fn watch_pushes(
    path: &std::path::Path,
    trigger: mpsc::Sender<&'static str>,
) -> Result<notify::RecommendedWatcher> {
    let git_dir = git2::Repository::open(path)
        .with_context(|| format!("{} is not a Git repository", path.display()))?
        .path()
        .to_path_buf();
    let (watcher, mut changes) = crate::watch::watch(&git_dir, crate::watch::is_ref_change)?;
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            // A push writes several refs: let it finish, and count it once.
            tokio::time::sleep(crate::up::DEBOUNCE).await;
            while changes.try_recv().is_ok() {}
            let _ = trigger.try_send("push");
        }
    });
    Ok(watcher)
}
