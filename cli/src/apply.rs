//! `spindle apply`: one reconcile pass of a local repository's commit against the cluster.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::{EvalArgs, exit};
use spindle_reconciler::cluster;
use spindle_reconciler::reconcile::{Outcome, Reconciler, Settings};
use spindle_reconciler::revisions::git;
use spindle_render::Flavor;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The repository (or a folder inside one) holding `environments/`.
    #[arg(default_value = ".")]
    repo: std::path::PathBuf,
    /// The commit to apply (a branch, tag, commit or expression like `HEAD~1`). Only committed
    /// files are applied, never the working tree's changes.
    #[arg(long, default_value = "HEAD", value_name = "REV")]
    revision: String,
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    eval: EvalArgs,
    #[command(flatten)]
    imports: super::ImportArgs,
}

/// How a reconcile pass behaves; shared by `apply` and `reconcile`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Environment to apply: the name of a file in `environments/`. Needed when there are several.
    #[arg(long, short = 'e', env = "SPINDLE_ENV")]
    pub env: Option<String>,
    /// Name of this reconciler's inventory and status (`spindle-inventory-NAME`). Default: the
    /// environment's name.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Namespace of spindle's inventory, status and installer Jobs.
    #[arg(long, default_value = "spindle-system", value_name = "NAMESPACE")]
    pub system_namespace: String,
    /// `native` (Deployments, Services, ...) or `spinkube` (spin-operator's SpinApps).
    #[arg(long, value_enum, default_value = "native")]
    pub flavor: Flavor,
    /// Image that runs spindle-node-installer for runtimes whose shim comes from a URL.
    #[arg(long, value_name = "IMAGE")]
    pub installer_image: Option<String>,
    /// Refuse a revision that would prune more than this share of the objects spindle manages.
    #[arg(long, default_value_t = 0.5, value_name = "SHARE")]
    pub max_prune_share: f64,
    /// Prune however much the revision removes (for an intended teardown).
    #[arg(long)]
    pub allow_mass_prune: bool,
    /// The only namespaces apps may be placed in (comma-separated); a revision that places one
    /// elsewhere is refused before anything is sent. Default: any but kube-system, kube-public,
    /// kube-node-lease, default and --system-namespace.
    #[arg(long, value_delimiter = ',', value_name = "NAMESPACES")]
    pub allowed_namespaces: Option<Vec<String>>,
    /// Let apps be placed in the `default` namespace.
    #[arg(long)]
    pub allow_default_namespace: bool,
    /// Apply, read and prune the rendered objects as this ServiceAccount (NAMESPACE/NAME), as
    /// Flux's `serviceAccountName` does: its RBAC bounds what the repository can do. spindle's
    /// own state, nodes and rollouts stay its own.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub service_account: Option<String>,
    /// Seconds to wait for Deployments to roll out and Jobs to complete; 0 checks once.
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS", value_parser = super::seconds)]
    pub health_timeout: f64,
    /// Show what would be applied and pruned, and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub node_policy: super::NodePolicyArgs,
}

impl SettingsArgs {
    /// The reconciler's settings, with the node policy read.
    pub fn settings(&self, source: String) -> Result<Settings> {
        Ok(Settings {
            environment: self.env.clone(),
            instance: self.instance.clone(),
            system_namespace: self.system_namespace.clone(),
            flavor: self.flavor,
            installer_image: self.installer_image.clone(),
            max_prune_share: self.max_prune_share,
            allow_mass_prune: self.allow_mass_prune,
            allowed_namespaces: self.allowed_namespaces.clone(),
            allow_default_namespace: self.allow_default_namespace,
            service_account: self.service_account.clone(),
            health_timeout: Duration::from_secs_f64(self.health_timeout.max(0.0)),
            dry_run: self.dry_run,
            node_policy: self.node_policy.read()?,
            source,
        })
    }
}

pub fn apply(args: &ApplyArgs) -> Result<i32> {
    let folder = git::Folder::open(&args.repo)?;
    let (snapshot, commit) = folder.snapshot(&args.revision)?;
    if git::of_working_tree(&args.repo).is_some_and(|r| r.ends_with("-dirty")) {
        eprintln!(
            "note: applying commit {} as committed; uncommitted changes in {} are not applied",
            spindle_reconciler::reconcile::short(&commit),
            args.repo.display()
        );
    }
    let settings = args
        .settings
        .settings(std::fs::canonicalize(&args.repo)?.display().to_string())?;
    let evaluator = args.eval.evaluator()?;
    // Apps that would not run on their runtime stop the apply before anything reaches the
    // cluster. The commit is applied, not the working tree: imports come from the images. A
    // spec that does not evaluate is left to the pass, which reports it in the status.
    let spec = spindle_config::spec::load(&evaluator, &snapshot, args.settings.env.as_deref());
    if let Ok(spec) = &spec {
        let pulling = args.imports.pulling();
        match spindle_reconciler::pipeline::check_imports(spec, None, pulling.as_ref()) {
            Ok(warnings) => warnings
                .iter()
                .for_each(|warning| eprintln!("warning: {warning}")),
            Err(err) => {
                eprintln!("{}", err.render(&snapshot));
                eprintln!("\nnothing was applied");
                return Ok(exit::INVALID);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = cluster::client().await?;
        let mut reconciler = Reconciler::new(client, evaluator, settings).await?;
        if let Ok(spec) = spec {
            reconciler.remember_evaluation(&commit, spec);
        }
        let outcome = reconciler.pass(&commit, &snapshot).await?;
        print_outcome(&outcome, args.settings.dry_run);
        Ok(exit_code(&outcome, &args.settings))
    })
}

/// 0 applied and healthy (or not waited for), 1 not applied or unhealthy.
pub fn exit_code(outcome: &Outcome, settings: &SettingsArgs) -> i32 {
    let unhealthy = !outcome.ready && settings.health_timeout > 0.0 && !settings.dry_run;
    if !outcome.applied || unhealthy {
        exit::INVALID
    } else {
        exit::OK
    }
}

/// What a pass did, for people.
pub fn print_outcome(outcome: &Outcome, dry_run: bool) {
    let short = spindle_reconciler::reconcile::short(&outcome.revision);
    if !outcome.applied {
        eprintln!("{}\n\nrevision {short} was not applied", outcome.message);
        return;
    }
    let (applied, pruned) = if dry_run {
        ("would apply", "would prune")
    } else {
        ("applied", "pruned")
    };
    for drifted in &outcome.drifted {
        println!("drifted  {}: {}", drifted.id, drifted.what);
    }
    for id in &outcome.sent {
        println!("{applied:<8} {id}");
    }
    for id in &outcome.pruned {
        println!("{pruned:<8} {id}");
    }
    for kept in &outcome.kept {
        println!("kept     {kept}");
    }
    println!(
        "revision {short}: {} {applied}, {} unchanged, {} {pruned}, {} drift corrected",
        outcome.sent.len(),
        outcome.unchanged,
        outcome.pruned.len(),
        outcome.drifted.len()
    );
    if !dry_run {
        println!("{}", outcome.message);
    }
}
