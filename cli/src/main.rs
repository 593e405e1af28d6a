//! The `spindle` command line: one module per command. The work is done by the library crates;
//! this crate parses flags, prints, and chooses exit codes.

mod apply;
mod build;
mod check;
mod diff;
mod install;
mod log_writer;
mod push;
mod reconcile;
mod render;
mod run;
mod status;
mod test;
mod up;

use std::{io::IsTerminal as _, path::PathBuf, time::Duration};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use spindle_config::evaluate::{Evaluator, Limits};
use spindle_config::snapshot::Snapshot;
use spindle_config::spec::{self, Spec, SpecError};

/// Exit codes, as `flux diff` and `argocd app diff` use them.
pub mod exit {
    /// Success (and, for diffs, no changes).
    pub const OK: i32 = 0;
    /// The repository is invalid (or, for diffs, there are changes).
    pub const INVALID: i32 = 1;
    /// Usage, I/O or infrastructure error.
    pub const ERROR: i32 = 2;
}

/// The `spindle` command line: the command to run and the global flags.
#[derive(Debug, Parser)]
#[command(
    name = "spindle",
    version,
    about = "GitOps for WebAssembly on Kubernetes",
    long_about = "spindle reads a Git repository of Spin app and node runtime specs (Nickel, YAML or JSON), \
evaluates them in a wasm sandbox, validates them, and turns them into Kubernetes objects."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate and validate one environment of a repository, and summarise it.
    ///
    /// Each app is also held against its runtime: a trigger its shim does not run, or a component
    /// import (read from the built source, else from the pulled image) its shim does not
    /// provide, is refused at the app's line.
    ///
    /// Exit status: 0 valid, 1 invalid (errors are printed as FILE:LINE:COL: MESSAGE), 2 usage or
    /// I/O error.
    Check(CheckArgs),
    /// Print the Kubernetes objects an environment becomes, sorted and stable.
    ///
    /// The same input gives byte-identical output. API versions follow the cluster's Kubernetes
    /// version (asked from the cluster in the current kubeconfig unless --kube-version or
    /// --offline is given). Installer Jobs are planned for the nodes that the rollout's first wave
    /// would install on, read from the cluster or from --nodes.
    ///
    /// Exit status: 0 rendered, 1 invalid, 2 usage or I/O error.
    Render(render::RenderArgs),
    /// Show what a revision changes: against another revision (--base), or the live cluster
    /// (--live).
    ///
    /// Both sides are rendered (revisions are read from Git's object database; the working tree is
    /// never touched) and compared object by object: added, changed, renamed, removed, with a
    /// unified diff of each. Secret values are never printed: a hash marker shows that a key
    /// changed. Node runtime changes are called out with the nodes they reach. The head's apps
    /// are held against their runtimes' interfaces, as `check` does.
    ///
    /// Exit status: 0 no changes, 1 changes, 2 error (including an invalid revision, or a head
    /// whose apps would not run on their runtime: the report still shows the changes, and
    /// names the apps).
    Diff(diff::DiffArgs),
    /// Compare each environment's render with the repository's golden files (`golden/ENV/`).
    ///
    /// Gives a repository the reviewed, diffable record of what it produces: commit the files,
    /// run `spindle test` in CI, and `spindle test --update` after an intended change. Renders for
    /// a fixed Kubernetes version, without revision labels or nodes.
    ///
    /// Exit status: 0 all match, 1 differences (or an environment that fails), 2 usage error.
    Test(test::TestArgs),
    /// Serve one Spin app (a `spin.toml`, or `oci://REFERENCE` in a registry) on spindle's
    /// runtime, like `spin up`.
    ///
    /// Prints the routes with their URLs, logs every request (method, path, status, duration)
    /// and serves until Ctrl-C or SIGTERM, letting in-flight requests finish.
    ///
    /// With OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, every
    /// request's span is exported over OTLP/HTTP (protobuf), a child of its `traceparent`;
    /// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS and
    /// OTEL_SDK_DISABLED are honoured.
    ///
    /// Exit status: 0 after a clean stop, 1 invalid manifest, 2 the app cannot start.
    Run(run::RunArgs),
    /// Push a Spin app to an OCI registry as a Spin artifact, the layout `spin registry push`
    /// writes: one layer per component and per file, and the locked app. containerd (through
    /// spindle's shim or SpinKube's), `spin up -f` and `spindle run oci://` run it.
    ///
    /// The same app gives the same digest. Prints REFERENCE@DIGEST.
    ///
    /// Exit status: 0 pushed, 1 invalid manifest, 2 error (the registry's message is shown).
    Push(push::PushArgs),
    /// Run an environment's apps on this machine and follow the repository, with no cluster.
    ///
    /// Reads the tip of the checked-out branch (or the working tree with --dirty, or a plain
    /// folder), serves every app with a `source` on its own port, and on each new commit prints
    /// the diff and switches only the apps that changed, without failing a request. A revision
    /// that does not evaluate is reported and changes nothing. Key-value and SQLite data live in
    /// `.spindle/` in the repository's folder.
    Up(up::UpArgs),
    /// Apply one commit of a local repository to the cluster, once.
    ///
    /// Evaluates, validates and renders the whole environment first: an invalid revision applies
    /// nothing. Then server-side applies (field manager `spindle`) in stages: Namespaces and CRDs,
    /// RuntimeClasses, the rest; only objects that changed since the last apply are sent. Objects
    /// that the previous apply created and this revision no longer has are pruned (never more than
    /// --max-prune-share of them without --allow-mass-prune; `spindle.dev/prune: disabled`
    /// protects one). Objects changed by someone else are put back. Waits for Deployments and
    /// Jobs to become healthy. The inventory and status are ConfigMaps in --system-namespace.
    ///
    /// Exit status: 0 applied and healthy, 1 not applied (invalid, refused) or unhealthy, 2 error.
    Apply(apply::ApplyArgs),
    /// Follow a repository and keep the cluster equal to it: what `spindle apply` does, on every
    /// new commit and every --interval (drift correction).
    ///
    /// Fetches with git2 (https with a token, ssh with a key checked against known_hosts,
    /// file:// and local paths) into a cache that survives restarts. New commits are seen on the
    /// interval, on a signed webhook (POST /hook), and for local repositories on the push itself.
    /// Serves /healthz, /readyz and Prometheus /metrics. Stops cleanly on SIGTERM.
    Reconcile(Box<reconcile::ReconcileArgs>),
    /// Show what each reconciler last did: revisions, conditions, app health.
    ///
    /// Exit status: 0 every reconciler is Ready, 1 one is not (or none reported), 2 error.
    Status(status::StatusArgs),
    /// Print the manifests that run `spindle reconcile` in a cluster (`--print`).
    Install(install::InstallArgs),
    /// Print the JSON Schema of an environment's evaluated value, for editors.
    Schema,
}

#[derive(Debug, Args)]
struct RepoArgs {
    /// The repository (or a folder inside one) holding `environments/`.
    #[arg(default_value = ".")]
    repo: PathBuf,
    /// Environment to use: the name of a file in `environments/`. Needed when there are several.
    #[arg(long, short = 'e', env = "SPINDLE_ENV")]
    env: Option<String>,
    #[command(flatten)]
    eval: EvalArgs,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// Time an evaluation may take before it is cut off, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS", value_parser = seconds)]
    eval_timeout: f64,
    /// Memory an evaluation may use, in MiB.
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    eval_memory: usize,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    node_policy: NodePolicyArgs,
    #[command(flatten)]
    imports: ImportArgs,
}

/// How the apps' component imports are read, to hold each app against the interfaces its
/// runtime's shim provides: from its built `source` (the components' Wasm beside its
/// `spin.toml`), else from its `image`, pulled (credentials from the docker config file) and
/// kept by digest in the cache folder.
#[derive(Debug, Args)]
struct ImportArgs {
    /// Do not pull images: only apps whose `source` is built are checked.
    #[arg(long)]
    no_pull: bool,
    /// A registry (HOST[:PORT]) to pull from over plain HTTP, such as a local one. Repeatable.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registries: Vec<String>,
    /// Seconds the check may spend pulling images (four at a time); the apps of an image not
    /// read by then are left unchecked, with a warning.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS", value_parser = seconds)]
    pull_timeout: f64,
}

impl ImportArgs {
    /// How to pull images, unless --no-pull (or there is no cache folder).
    fn pulling(&self) -> Option<spindle_reconciler::capabilities::Pulling> {
        if self.no_pull {
            return None;
        }
        Some(spindle_reconciler::capabilities::Pulling {
            cache: cache_dir()?.join("oci"),
            insecure: self.insecure_registries.clone(),
            timeout: Duration::from_secs_f64(self.pull_timeout),
        })
    }
}

/// The node policy a reconciler is given; see docs/node-installer.md.
#[derive(Debug, Args)]
struct NodePolicyArgs {
    /// What the repository may install on nodes (YAML: allowed installer images and shim URLs,
    /// the escape hatches, control-plane nodes). Without one, node runtimes get their
    /// RuntimeClass but nothing is installed on any node. See docs/node-installer.md.
    #[arg(long = "node-policy", visible_alias = "policy", value_name = "FILE")]
    file: Option<PathBuf>,
}

impl NodePolicyArgs {
    /// The policy the flag names, read.
    fn read(&self) -> Result<Option<spindle_render::NodePolicy>> {
        self.file
            .as_deref()
            .map(spindle_render::NodePolicy::read)
            .transpose()
    }
}

fn main() {
    std::process::exit(run());
}

/// Runs the command line and returns the process exit code.
fn run() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let outcome = match cli.command {
        Command::Check(args) => check::check(&args),
        Command::Render(args) => render::render(&args),
        Command::Diff(args) => diff::diff(&args),
        Command::Test(args) => test::test(&args),
        Command::Run(args) => run::run(&args),
        Command::Push(args) => push::push(&args),
        Command::Up(args) => up::up(&args),
        Command::Apply(args) => apply::apply(&args),
        Command::Reconcile(args) => reconcile::reconcile(&args),
        Command::Status(args) => status::status(&args),
        Command::Install(args) => install::install(&args),
        Command::Schema => schema(),
    };
    // What spindle logged comes before what it says last.
    log_writer::flush();
    match outcome {
        Ok(code) => code,
        Err(err) if err.is::<Reported>() => {
            err.downcast_ref::<Reported>().map_or(exit::ERROR, |r| r.0)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::ERROR
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPINDLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,spindle::request=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(log_writer::Batched::new())
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Parses a duration in seconds (`1.5`), refusing what is negative, not a number, or too large
/// to be meant (more than a year), instead of failing later.
fn seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !value.is_finite() || !(0.0..=365.0 * 86400.0).contains(&value) {
        return Err(format!(
            "`{text}`: give a number of seconds from 0 to 31536000 (a year)"
        ));
    }
    Ok(value)
}

/// Where spindle keeps compiled components and other caches.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SPINDLE_CACHE") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("spindle"))
}

impl EvalArgs {
    fn evaluator(&self) -> Result<Evaluator> {
        let limits = Limits {
            deadline: Duration::from_secs_f64(self.eval_timeout.max(0.01)),
            memory: self.eval_memory.max(16) << 20,
        };
        Evaluator::new(cache_dir().map(|dir| dir.join("components")), limits)
    }
}

/// An error already shown to the user: the command ends with this exit code.
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
struct Reported(i32);

/// Prints why a repository was rejected, and ends the command with the error's exit code.
fn rejected(snapshot: &Snapshot, err: SpecError) -> anyhow::Error {
    err.print(snapshot);
    Reported(err.exit_code()).into()
}

/// Loads the Spin app at `path`; a manifest error is printed and ends the command with exit 1.
fn load_app(path: &std::path::Path) -> Result<spindle_runtime::App> {
    spindle_runtime::App::load(path).map_err(|err| {
        eprintln!("{err}");
        Reported(exit::INVALID).into()
    })
}

/// Reads the repository and loads its environment; a rejection is printed and ends the command.
fn load(args: &RepoArgs) -> Result<(Snapshot, Spec)> {
    let snapshot = Snapshot::from_dir(&args.repo)?;
    let evaluator = args.eval.evaluator()?;
    match spec::load(&evaluator, &snapshot, args.env.as_deref()) {
        Ok(spec) => Ok((snapshot, spec)),
        Err(err) => Err(rejected(&snapshot, err)),
    }
}

fn schema() -> Result<i32> {
    let schema = serde_json::to_string_pretty(&spindle_schema::json_schema())?;
    println!("{schema}");
    Ok(exit::OK)
}
