//! `spindle render`: print the objects an environment becomes.

use std::{io::Write as _, path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::{RepoArgs, exit, load, rejected};
use spindle_reconciler::cluster;
use spindle_reconciler::pipeline;
use spindle_reconciler::revisions::git;
use spindle_render::golden;
use spindle_render::{self as render, Flavor, KubeVersion, Node, Object, Target};

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "yaml")]
    output: Format,
    /// Write one file per object (`kind.namespace.name.yaml`) into DIR instead of printing.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Revision recorded on every object (`spindle.dev/revision`). Default: the commit checked
    /// out in the repository, with `-dirty` when its files changed since.
    #[arg(long, value_name = "REV")]
    revision: Option<String>,
}

/// What the objects are rendered for: the cluster's version and nodes, the flavor.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Kubernetes version to render for (1.20 to 1.37); picks API versions such as
    /// autoscaling/v2 or v2beta2. Default: the cluster's, or 1.37 without one.
    #[arg(long, value_name = "X.Y", value_parser = parse_kube_version)]
    kube_version: Option<KubeVersion>,
    /// `native`: Deployments, Services, RuntimeClasses, installer Jobs. `spinkube`: SpinApp,
    /// SpinAppExecutor and Shim resources for clusters that run spin-operator.
    #[arg(long, value_enum, default_value = "native")]
    flavor: Flavor,
    /// Plan installer Jobs for these nodes (what `kubectl get nodes -o yaml` prints) instead of
    /// the cluster's.
    #[arg(long, value_name = "FILE")]
    nodes: Option<PathBuf>,
    /// Never contact a cluster: render for --kube-version (or the newest) and, without --nodes,
    /// plan no installer Jobs.
    #[arg(long)]
    offline: bool,
    /// Namespace of spindle's own objects, such as installer Jobs.
    #[arg(long, default_value = "spindle-system", value_name = "NAMESPACE")]
    system_namespace: String,
    /// Image that runs spindle-node-installer for runtimes whose shim comes from a URL.
    #[arg(long, value_name = "IMAGE")]
    installer_image: Option<String>,
    #[command(flatten)]
    node_policy: super::NodePolicyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// A stream of YAML documents.
    Yaml,
    /// A `v1` `List`.
    Json,
}

fn parse_kube_version(text: &str) -> Result<KubeVersion, String> {
    text.parse()
}

pub fn render(args: &RenderArgs) -> Result<i32> {
    let (snapshot, spec) = load(&args.repo)?;
    let mut target = args.target.target(!spec.platform.runtimes.is_empty())?;
    target.revision = match &args.revision {
        Some(revision) => Some(revision.clone()),
        None => git::of_working_tree(&args.repo.repo),
    };
    let objects =
        pipeline::render(&spec, &snapshot, &target).map_err(|err| rejected(&snapshot, err))?;
    args.target.note_missing_nodes(&target, &spec.platform);
    match &args.output_dir {
        Some(dir) => write_dir(dir, &objects, args.output)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(print(&objects, args.output)?.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(exit::OK)
}

impl TargetArgs {
    /// What to render for; asks the cluster what the flags leave open (its version, and its
    /// nodes when there are runtimes to install).
    pub fn target(&self, has_runtimes: bool) -> Result<Target> {
        let mut target = Target {
            flavor: self.flavor,
            system_namespace: self.system_namespace.clone(),
            ..Target::default()
        };
        if let Some(image) = &self.installer_image {
            target.installer_image = image.clone();
        }
        target.node_policy = self.node_policy.read()?;
        if let Some(path) = &self.nodes {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("could not read {}", path.display()))?;
            target.nodes = Some(
                render::nodes::parse(&text)
                    .with_context(|| format!("{} holds no nodes", path.display()))?,
            );
        }
        let wants_nodes = self.flavor == Flavor::Native && target.nodes.is_none() && has_runtimes;
        let (version, nodes) = if !self.offline
            && (self.kube_version.is_none() || wants_nodes)
            && cluster::configured()
        {
            ask_cluster(wants_nodes)
        } else {
            (None, None)
        };
        target.kube = self.kube_version.or(version).unwrap_or(KubeVersion::NEWEST);
        target.nodes = target.nodes.or(nodes);
        Ok(target)
    }

    /// Says on stderr why installer Jobs are missing: no nodes known, or no node policy.
    pub fn note_missing_nodes(&self, target: &Target, platform: &spindle_schema::Platform) {
        if self.flavor != Flavor::Native || platform.runtimes.is_empty() {
            return;
        }
        if target.nodes.is_none() {
            eprintln!(
                "note: no nodes known, so no installer Jobs are shown; give --nodes FILE or a cluster"
            );
        } else if target.node_policy.is_none() {
            eprintln!(
                "note: no node policy, so no installer Jobs are planned (a reconciler without one \
                 installs nothing on nodes); give --node-policy FILE"
            );
        }
    }
}

/// Asks the configured cluster for its version and, when wanted, its nodes. A cluster that
/// cannot be reached is reported and rendering goes on without it.
fn ask_cluster(nodes: bool) -> (Option<KubeVersion>, Option<Vec<Node>>) {
    let asked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                let client = cluster::client().await?;
                let version = cluster::version(&client, Duration::from_secs(5)).await?;
                let nodes = match nodes {
                    true => Some(cluster::nodes(client).await?),
                    false => None,
                };
                anyhow::Ok((version, nodes))
            })
        });
    match asked {
        Ok((version, nodes)) => (Some(version), nodes),
        Err(err) => {
            eprintln!(
                "warning: {err:#}; rendering for Kubernetes {} without the cluster \
                 (pass --kube-version or --offline to silence this)",
                KubeVersion::NEWEST
            );
            (None, None)
        }
    }
}

/// The objects as one YAML stream or one JSON `List`.
fn print(objects: &[Object], format: Format) -> Result<String> {
    Ok(match format {
        Format::Yaml => {
            let mut out = String::new();
            for object in objects {
                out.push_str("---\n");
                out.push_str(&spindle_render::yaml::to_string(object.value()));
            }
            out
        }
        Format::Json => {
            let items: Vec<&serde_json::Value> = objects.iter().map(Object::value).collect();
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            serde_json::to_string_pretty(&list)? + "\n"
        }
    })
}

fn write_dir(dir: &std::path::Path, objects: &[Object], format: Format) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: give a new or empty folder, so that no stale file is left beside the \
             rendered ones",
            dir.display()
        );
    }
    golden::write(dir, &golden::files(objects, format == Format::Json))
}
