//! `spindle run`: serve one Spin app on the embedded runtime, like `spin up`: its HTTP routes and
//! its Redis, MQTT and cron triggers, or, for a command app, run it once and exit with its status.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context as _, Result};
use clap::Args;
use spindle_runtime::{App, Options, server, stores::StateDir, trigger::TriggerKind};

use super::{build, cache_dir};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The app's `spin.toml`, the folder holding it, or `oci://REGISTRY/REPOSITORY[:TAG]` (a
    /// Spin artifact, fetched into spindle's cache).
    #[arg(default_value = ".")]
    app: PathBuf,
    #[command(flatten)]
    registry: super::push::RegistryArgs,
    /// Address to serve on: the HTTP routes, and `/.well-known/spin/health` (ready once every
    /// Redis, MQTT and cron trigger receives) for any app.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Spin's runtime config file (key-value stores, SQLite databases).
    #[arg(long, value_name = "FILE")]
    runtime_config: Option<PathBuf>,
    /// An environment variable for every component (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = key_value)]
    environment: Vec<(String, String)>,
    /// A value for an application variable (repeatable); `SPIN_VARIABLE_<NAME>` in the
    /// environment and the manifest's defaults come after.
    #[arg(long = "variable", value_name = "NAME=VALUE", value_parser = key_value)]
    variables: Vec<(String, String)>,
    /// Where the `default` key-value store and SQLite database live. Default: `.spindle/` in the
    /// app's folder.
    #[arg(long, value_name = "DIR", conflicts_with = "ephemeral")]
    state_dir: Option<PathBuf>,
    /// Keep stores in memory only.
    #[arg(long)]
    ephemeral: bool,
    /// Run the components' build commands first.
    #[arg(long)]
    build: bool,
    /// Serve only these components (comma-separated), as SpinKube's `SPIN_COMPONENTS_TO_RETAIN`.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    components: Option<Vec<String>>,
    /// How long one request (or one trigger message) may run, in seconds.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS", value_parser = super::seconds)]
    request_timeout: f64,
    /// Memory one component instance may use, in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    instance_memory: u64,
    /// Requests answered at once; beyond, 503 with Retry-After.
    #[arg(long, default_value_t = 250, value_name = "N")]
    max_in_flight: usize,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

pub fn run(args: &RunArgs) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let app = match args.app.to_str().filter(|app| app.starts_with("oci://")) {
        Some(reference) => runtime.block_on(pull(reference, &args.registry))?,
        None => super::load_app(&args.app)?,
    };
    if args.build {
        build::build(&app)?;
    }
    let state = if args.ephemeral {
        StateDir::Ephemeral
    } else {
        StateDir::Folder(
            args.state_dir
                .clone()
                .unwrap_or_else(|| app.dir.join(".spindle")),
        )
    };
    let options = Options {
        state,
        runtime_config: args.runtime_config.clone(),
        variables: args.variables.iter().cloned().collect(),
        environment: args.environment.clone(),
        retain: args.components.clone(),
        instance_memory: args.instance_memory << 20,
        max_in_flight: args.max_in_flight,
        request_timeout: Duration::from_secs_f64(args.request_timeout.max(0.01)),
        cache_dir: cache_dir().map(|dir| dir.join("components")),
        ..Options::default()
    };
    let app_is_command = app.is_command();
    let status = runtime.block_on(server::run(
        app,
        options,
        args.listen,
        |name| std::env::var(name).ok(),
        |loaded, address| {
            println!("Serving {} on http://{address}", loaded.app.name);
            for (route, component) in &loaded.app.routes {
                println!("  {component:<20} http://{address}{route}");
            }
            let private = loaded.app.components.keys().filter(|id| {
                !loaded.app.routes.iter().any(|(_, c)| c == *id)
                    && !loaded.triggers().iter().any(|t| t.component == **id)
            });
            for id in private {
                println!("  {id:<20} (private: no route)");
            }
            for trigger in loaded.triggers() {
                println!("  {:<20} {}", trigger.component, describe(&trigger.kind));
            }
        },
    ))?;
    if !app_is_command {
        eprintln!("stopped: in-flight requests and messages finished");
    }
    Ok(status)
}

/// A trigger as `spindle run` lists it, credentials left out.
fn describe(kind: &TriggerKind) -> String {
    match kind {
        TriggerKind::Redis { address, channel } => {
            format!(
                "redis channel `{channel}` on {}",
                spindle_runtime::redact(address)
            )
        }
        TriggerKind::Mqtt {
            session,
            topic,
            qos,
        } => format!(
            "mqtt topic `{topic}` (QoS {qos}) on {}",
            spindle_runtime::redact(&session.address)
        ),
        TriggerKind::Cron { expression } => format!("cron `{expression}` (UTC)"),
        TriggerKind::Command => "command".to_owned(),
    }
}

/// Fetches and unpacks a Spin artifact.
async fn pull(reference: &str, registry: &super::push::RegistryArgs) -> Result<App> {
    let reference = spindle_reconciler::registry::reference(reference)?;
    let cache = cache_dir()
        .context("no cache folder for pulled apps: set SPINDLE_CACHE or HOME")?
        .join("oci");
    spindle_reconciler::registry::Registry::new(&reference, &registry.access()?)?
        .pull(&reference, &cache)
        .await
}
