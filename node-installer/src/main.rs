//! `spindle-node-installer`: puts spindle's containerd shim on a node and registers it with
//! containerd, safely and idempotently. Runs as a privileged Job with the host's root mounted (the
//! reconciler renders those Jobs) or by hand.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use spindle_node_installer::{config, distro, download, node};

#[derive(Debug, Parser)]
#[command(
    name = "spindle-node-installer",
    version,
    about = "Installs spindle's containerd shim on a node and registers it with containerd"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install the shim and register the runtime; restart containerd only when the config
    /// changed, and roll the config back if containerd does not come back. Prints a JSON report.
    ///
    /// Exit status: 0 installed (or already), 1 refused or rolled back, 2 usage error.
    Install(InstallArgs),
    /// Remove the runtime from containerd's config (restarting it) and the shim's files.
    Uninstall(UninstallArgs),
}

#[derive(Debug, Args)]
struct Target {
    /// Where the host's root is mounted (`/` when run on the host itself).
    #[arg(long, default_value = "/")]
    host_root: PathBuf,
    /// The distribution, when detection (k3s, rke2, microk8s, k0s, plain containerd) should be
    /// overridden.
    #[arg(long, value_enum)]
    distro: Option<distro::Distro>,
    /// Edit this config file instead of the distribution's.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The runtime's name in containerd's config (the RuntimeClass handler).
    #[arg(long, default_value = "spindle")]
    handler: String,
    /// Folder for the shim binary, under the host root.
    #[arg(long, default_value = "opt/spindle/bin")]
    shim_dir: PathBuf,
    /// Restart containerd with this shell command instead of its systemd unit.
    #[arg(long)]
    restart_command: Option<String>,
    /// Check containerd with this shell command instead of `ctr version` on --socket.
    #[arg(long)]
    verify_command: Option<String>,
    /// containerd's socket, as the host sees it (default: the distribution's).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Seconds containerd may take to answer after a restart.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Run restart and check commands in the host's namespaces (PID 1's), as a pod with hostPID.
    #[arg(long)]
    enter_host: bool,
}

#[derive(Debug, Args)]
struct InstallArgs {
    #[command(flatten)]
    target: Target,
    /// The runtime's name in spindle's specs (reported only).
    #[arg(long)]
    runtime: Option<String>,
    #[arg(long, default_value = "io.containerd.spindle.v1")]
    runtime_type: String,
    #[arg(long)]
    shim_version: Option<String>,
    /// The shim's sha256; the binary is verified against it before it is used.
    #[arg(long)]
    shim_sha256: String,
    /// The shim binary (in the installer image).
    #[arg(long)]
    shim_file: Option<PathBuf>,
    /// Download the shim from this http(s) URL (into the shim directory; verified against
    /// --shim-sha256 before it is used). --shim-file wins when both are given.
    #[arg(long)]
    shim_url: Option<String>,
    /// Runtime options as a JSON object, written under the runtime's `options` table.
    #[arg(long)]
    options: Option<String>,
}

#[derive(Debug, Args)]
struct UninstallArgs {
    #[command(flatten)]
    target: Target,
}

impl Target {
    fn control(&self) -> node::Control {
        node::Control {
            restart: self.restart_command.clone(),
            verify: self.verify_command.clone(),
            socket: self.socket.clone(),
            timeout: Duration::from_secs_f64(self.timeout.max(1.0)),
            enter_host: self.enter_host,
        }
    }

    fn layout(&self) -> distro::Layout {
        node::layout(&self.host_root, self.distro, self.config.clone())
    }

    fn shim_dir(&self) -> PathBuf {
        self.host_root.join(&self.shim_dir)
    }
}

fn install(args: &InstallArgs) -> Result<node::Report> {
    let download = match &args.shim_url {
        Some(url) if args.shim_file.is_none() => Some(download::fetch(
            url,
            &args.target.shim_dir(),
            Duration::from_secs_f64(args.target.timeout.max(1.0)),
        )?),
        _ => None,
    };
    let source = match (&args.shim_file, &download) {
        (Some(file), _) => file.clone(),
        (None, Some(download)) => download.path().to_path_buf(),
        (None, None) => bail!("give --shim-file or --shim-url"),
    };
    let options: BTreeMap<String, serde_json::Value> = match &args.options {
        Some(text) => serde_json::from_str(text).context("--options must be a JSON object")?,
        None => BTreeMap::new(),
    };
    let entry = config::RuntimeEntry {
        handler: args.target.handler.clone(),
        runtime_type: args.runtime_type.clone(),
        runtime_path: None,
        options,
    };
    node::install(
        &args.target.host_root,
        &args.target.layout(),
        &entry,
        &source,
        &args.shim_sha256,
        &args.target.shim_dir(),
        &args.target.control(),
    )
}

fn main() {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Install(args) => install(args),
        Command::Uninstall(args) => node::uninstall(
            &args.target.host_root,
            &args.target.layout(),
            &args.target.handler,
            &args.target.shim_dir(),
            &args.target.control(),
        ),
    };
    match outcome {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string(&report).expect("reports serialise")
            );
        }
        Err(err) => {
            eprintln!("spindle-node-installer: {err:#}");
            std::process::exit(1);
        }
    }
}
