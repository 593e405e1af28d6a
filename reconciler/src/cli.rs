//! The `spindle` command line.

use std::{
    io::{IsTerminal as _, Write as _},
    path::PathBuf,
    time::Duration,
};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use spindle_schema::Platform;

use crate::{
    evaluate::{Evaluator, Limits},
    snapshot::Snapshot,
    spec::{self, Spec, SpecError},
};

/// Exit codes, as `flux diff` and `argocd app diff` use them.
pub mod exit {
    /// Success (and, for diffs, no changes).
    pub const OK: i32 = 0;
    /// The repository is invalid (or, for diffs, there are changes).
    pub const INVALID: i32 = 1;
    /// Usage, I/O or infrastructure error.
    pub const ERROR: i32 = 2;
}

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
    /// Exit status: 0 valid, 1 invalid (errors are printed as FILE:LINE:COL: MESSAGE), 2 usage or
    /// I/O error.
    Check(CheckArgs),
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
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    eval_timeout: f64,
    /// Memory an evaluation may use, in MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    eval_memory: usize,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    repo: RepoArgs,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let outcome = match cli.command {
        Command::Check(args) => check(&args),
        Command::Schema => schema(),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::ERROR
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPINDLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
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

/// Loads the environment, or prints why not and returns the exit code.
fn load(args: &RepoArgs) -> Result<Result<(Snapshot, Spec), i32>> {
    let snapshot = Snapshot::from_dir(&args.repo)?;
    let evaluator = args.eval.evaluator()?;
    match spec::load(&evaluator, &snapshot, args.env.as_deref()) {
        Ok(spec) => Ok(Ok((snapshot, spec))),
        Err(err) => {
            eprintln!("{}", err.render(&snapshot));
            Ok(Err(match err {
                SpecError::Usage(_) => exit::ERROR,
                SpecError::Invalid(diagnostics) => {
                    eprintln!(
                        "\n{} error{} in environment",
                        diagnostics.len(),
                        if diagnostics.len() == 1 { "" } else { "s" }
                    );
                    exit::INVALID
                }
            }))
        }
    }
}

fn check(args: &CheckArgs) -> Result<i32> {
    let (snapshot, spec) = match load(&args.repo)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", summary(&snapshot, &spec))?;
    for line in describe(&spec.platform) {
        writeln!(out, "{line}")?;
    }
    Ok(exit::OK)
}

fn summary(snapshot: &Snapshot, spec: &Spec) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}: environment {} is valid: {}, {}",
        snapshot.display_root().display(),
        spec.environment,
        plural(spec.platform.apps.len(), "app"),
        plural(spec.platform.runtimes.len(), "runtime"),
    )
}

/// One line per app and runtime.
fn describe(platform: &Platform) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, app) in &platform.apps {
        let scale = match &app.autoscaling {
            Some(a) => format!(
                "replicas {}-{} (cpu {}%)",
                a.min_replicas, a.max_replicas, a.target_cpu_utilization
            ),
            None => format!("replicas {}", app.replicas),
        };
        let from = match (&app.image, &app.source) {
            (Some(image), _) => format!("image {image}"),
            (None, Some(source)) => format!("source {source}"),
            (None, None) => String::new(),
        };
        let runtime = app
            .runtime
            .clone()
            .or_else(|| platform.runtimes.keys().next().cloned())
            .unwrap_or_else(|| "-".to_owned());
        lines.push(format!(
            "  app      {name:<20} {:<12} {scale:<24} runtime {runtime:<12} {from}",
            app.namespace
        ));
    }
    for (name, runtime) in &platform.runtimes {
        let nodes = if runtime.node_selector.is_empty() {
            "all nodes".to_owned()
        } else {
            runtime
                .node_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        lines.push(format!(
            "  runtime  {name:<20} shim {:<10} handler {:<12} nodes {nodes} (maxUnavailable {})",
            runtime.shim.version, runtime.handler, runtime.rollout.max_unavailable
        ));
    }
    lines
}

fn schema() -> Result<i32> {
    let schema = serde_json::to_string_pretty(&spindle_schema::json_schema())?;
    println!("{schema}");
    Ok(exit::OK)
}
