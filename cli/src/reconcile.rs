//! `spindle reconcile`: follow a repository and keep the cluster equal to it.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use clap::Args;

use super::{EvalArgs, apply::SettingsArgs, cache_dir, exit};
use spindle_reconciler::cluster;
use spindle_reconciler::reconcile::{Controller, Reconciler, lease::Election};
use spindle_reconciler::revisions::{
    Credentials, Follow, Remote, TrustSource, Trusted,
    remote::{clean_path, parse_follow},
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
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS", value_parser = super::seconds)]
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
    /// Apply only revisions signed by these keys: `ssh:FILE` (an allowed-signers file, as for
    /// `ssh-keygen -Y verify`) or `pgp:FILE` (armored OpenPGP public keys); repeat for both. The
    /// followed tag's signature counts for `tag:`, the commit's otherwise. An unsigned revision,
    /// or one signed by another key, is not evaluated; the status says why.
    #[arg(long, value_name = "ssh:FILE|pgp:FILE")]
    verify: Vec<TrustSource>,
    /// Run one reconcile and exit, with `spindle apply`'s exit status.
    #[arg(long)]
    once: bool,
    /// Run as one of several replicas: only the one holding the Lease `spindle-INSTANCE` in
    /// --system-namespace passes; the others take over when it stops renewing it.
    #[arg(long)]
    leader_elect: bool,
    /// Seconds a leader holds the Lease without renewing it before another replica may take it.
    #[arg(long, default_value_t = 15.0, value_name = "SECONDS", value_parser = super::seconds)]
    lease_duration: f64,
    /// This replica's name in the Lease. Default: POD_NAME, else the host name, with the process
    /// id.
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    identity: Option<String>,
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    eval: EvalArgs,
}

pub fn reconcile(args: &ReconcileArgs) -> Result<i32> {
    let remote = remote(args)?;
    let settings = args.settings.settings(remote.display())?;
    let evaluator = args.eval.evaluator()?;
    let webhook_secret = match args.file_or_credential(&args.webhook_secret_file, "webhook-secret")
    {
        Some(path) => {
            let secret = read_secret(&path)?;
            if secret.is_empty() {
                anyhow::bail!(
                    "the webhook secret in {} is empty, which would let anyone trigger a \
                     reconcile: put a secret in it, or leave --webhook-secret-file out to turn \
                     /hook off",
                    path.display()
                );
            }
            Some(Arc::new(secret.into_bytes()))
        }
        None => None,
    };
    let interval = Duration::from_secs_f64(args.interval.max(1.0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = cluster::client().await?;
        let reconciler = Reconciler::new(client.clone(), evaluator, settings).await?;
        let mut controller = Controller::new(remote, reconciler, interval);
        if args.leader_elect && !args.once {
            let name = format!(
                "spindle-{}",
                args.settings
                    .instance
                    .as_deref()
                    .or(args.settings.env.as_deref())
                    .unwrap_or("default")
            );
            let identity = args.identity.clone().unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_else(|_| "spindle".to_owned());
                format!("{host}-{}", std::process::id())
            });
            controller = controller.with_election(Election::new(
                client,
                &args.settings.system_namespace,
                &name,
                &identity,
                Duration::from_secs_f64(args.lease_duration.max(1.0)),
            ));
        }
        if args.once {
            let outcome = controller.once().await?;
            super::apply::print_outcome(&outcome, args.settings.dry_run);
            return Ok(super::apply::exit_code(&outcome, &args.settings));
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("could not listen on {}", args.listen))?;
        eprintln!(
            "serving /healthz /readyz /metrics /hook on http://{}",
            listener.local_addr()?
        );
        controller
            .run(
                listener,
                webhook_secret,
                spindle_runtime::server::termination(),
            )
            .await?;
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

fn remote(args: &ReconcileArgs) -> Result<Remote> {
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
    Ok(Remote {
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
        trusted: if args.verify.is_empty() {
            None
        } else {
            Some(Arc::new(Trusted::load(&args.verify)?))
        },
    })
}
