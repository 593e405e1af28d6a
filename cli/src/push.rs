//! `spindle push`: a local Spin app as a Spin OCI artifact in a registry.

use std::{io::Read as _, path::PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use spindle_runtime::artifact;

use super::{build, exit};
use spindle_reconciler::registry::{self, Access, Registry};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// `[APP] REFERENCE`: the app's `spin.toml` or folder (default: `.`), and where to push it,
    /// `REGISTRY/REPOSITORY[:TAG]`.
    #[arg(num_args = 1..=2, required = true, value_names = ["APP", "REFERENCE"])]
    args: Vec<String>,
    /// Run the components' build commands first.
    #[arg(long)]
    build: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// How to reach a registry, for `push` and `run oci://`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Talk plain HTTP to the registry (a local or test registry).
    #[arg(long)]
    insecure: bool,
    /// User name for the registry; the password is read from stdin (--password-stdin).
    /// Without it, the docker config file's credentials are used.
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password (or token) from stdin.
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

impl RegistryArgs {
    pub fn access(&self) -> Result<Access> {
        let login = match &self.username {
            Some(user) if self.password_stdin => {
                let mut password = String::new();
                std::io::stdin()
                    .read_to_string(&mut password)
                    .context("cannot read the password from stdin")?;
                Some((
                    user.clone(),
                    password.trim_end_matches(['\r', '\n']).to_owned(),
                ))
            }
            _ => None,
        };
        Ok(Access {
            insecure: self.insecure,
            login,
        })
    }
}

pub fn push(args: &PushArgs) -> Result<i32> {
    let (app_path, reference) = match args.args.as_slice() {
        [reference] => (PathBuf::from("."), reference),
        [app, reference] => (PathBuf::from(app), reference),
        _ => bail!("give [APP] REFERENCE"),
    };
    let reference = registry::reference(reference)?;
    let app = super::load_app(&app_path)?;
    if args.build {
        build::build(&app)?;
    }
    let artifact = artifact::pack(&app)?;
    let registry = Registry::new(&reference, &args.registry.access()?)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let digest = runtime.block_on(registry.push(&reference, &artifact))?;
    let size: usize = artifact.layers.iter().map(|layer| layer.bytes.len()).sum();
    eprintln!(
        "pushed {} ({} layers, {} KiB)",
        app.name,
        artifact.layers.len(),
        size.div_ceil(1024)
    );
    println!("{reference}@{digest}");
    Ok(exit::OK)
}
