//! `spindle diff`: what a revision changes, against another revision or the live cluster.

use std::{io::IsTerminal as _, path::PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use spindle_schema::Platform;

use super::{EvalArgs, Reported, exit, render::TargetArgs};
use spindle_config::evaluate::Evaluator;
use spindle_config::snapshot::Snapshot;
use spindle_config::spec::SpecError;
use spindle_reconciler::cluster::{self, Cluster};
use spindle_reconciler::live;
use spindle_reconciler::pipeline;
use spindle_reconciler::revisions::Folder;
use spindle_render::diff::{self, Action, Diff, format::Format};
use spindle_render::{Object, Target};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The repository (or a folder inside one) holding `environments/`.
    #[arg(default_value = ".")]
    repo: PathBuf,
    /// The revision to compare with: a branch, tag or commit (`origin/main`, `HEAD~1`).
    #[arg(
        long,
        value_name = "REV",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    base: Option<String>,
    /// The revision to show the changes of. Default: the working tree.
    #[arg(long, value_name = "REV")]
    head: Option<String>,
    /// Compare with the cluster of the current kubeconfig instead of a revision: only the fields
    /// spindle manages count, and spindle's objects that the render no longer has show as to be
    /// pruned.
    #[arg(long)]
    live: bool,
    /// Environment to compare. Needed when the repository has several, unless --all-envs.
    #[arg(long, short = 'e', env = "SPINDLE_ENV", conflicts_with = "all_envs")]
    env: Option<String>,
    /// Compare every environment of either side.
    #[arg(long)]
    all_envs: bool,
    /// With --live: the reconciler instance whose objects count as spindle's (objects that exist
    /// and are someone else's show as conflicts). Default: the environment's name.
    #[arg(long, value_name = "NAME", requires = "live")]
    instance: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Never colour text output (also: the NO_COLOR variable). By default it is coloured on a
    /// terminal.
    #[arg(long)]
    no_color: bool,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    eval: EvalArgs,
    #[command(flatten)]
    imports: super::ImportArgs,
}

/// One side of the comparison.
struct Side {
    label: String,
    snapshot: Snapshot,
}

pub fn diff(args: &DiffArgs) -> Result<i32> {
    let evaluator = args.eval.evaluator()?;
    let folder = match args.base.is_some() || args.head.is_some() {
        true => Some(Folder::open(&args.repo)?),
        false => None,
    };
    let git_side = |revision: &str, role: &str| -> Result<Side> {
        let folder = folder.as_ref().expect("opened for --base and --head");
        let (snapshot, commit) = folder.snapshot(revision)?;
        Ok(Side {
            label: format!("{role} {revision} ({})", &commit[..12]),
            snapshot,
        })
    };
    let head = match &args.head {
        Some(revision) => git_side(revision, "head")?,
        None => Side {
            label: "working tree".to_owned(),
            snapshot: Snapshot::from_dir(&args.repo)?,
        },
    };
    let base = match &args.base {
        Some(revision) => Some(git_side(revision, "base")?),
        None => None,
    };
    let environments = environments(args, &head, base.as_ref())?;
    let target = args.target.target(true)?;

    let mut diffs = Vec::new();
    for environment in &environments {
        // Both revisions are evaluated and rendered at once.
        let (after, before) = std::thread::scope(|scope| {
            let before = base.as_ref().map(|base| {
                scope.spawn(|| load(&evaluator, &base.snapshot, environment, &target, None))
            });
            // Only the head is held against its runtimes' interfaces (a base that fails it must
            // not block the fix): built sources in a working tree, images otherwise.
            let imports = Imports {
                repo: args.head.is_none().then_some(args.repo.as_path()),
                args: &args.imports,
            };
            let after = load(
                &evaluator,
                &head.snapshot,
                environment,
                &target,
                Some(imports),
            );
            (
                after,
                before.map(|handle| handle.join().expect("the base side does not panic")),
            )
        });
        let after = after?;
        let diff = match (&base, before) {
            (Some(base), Some(before)) => {
                let before = before?;
                let (changes, unchanged) =
                    diff::compare(&before.objects, &after.objects, Action::Removed);
                Diff {
                    environment: environment.clone(),
                    before: base.label.clone(),
                    after: head.label.clone(),
                    changes,
                    unchanged,
                    runtimes: diff::rollouts(
                        &before.platform,
                        &after.platform,
                        target.nodes.as_deref(),
                    ),
                    conflicts: Vec::new(),
                    refused: after.refused.clone(),
                }
            }
            _ => live_diff(
                environment,
                args.instance.as_deref().unwrap_or(environment),
                &head.label,
                &after,
            )?,
        };
        diffs.push(diff);
    }

    let color = args.format == Format::Text
        && !args.no_color
        && std::env::var_os("NO_COLOR").is_none()
        && std::io::stdout().is_terminal();
    print!("{}", diff::format::show(&diffs, args.format, color));
    Ok(if diffs.iter().any(|diff| !diff.refused.is_empty()) {
        exit::ERROR
    } else if diffs.iter().all(Diff::is_empty) {
        exit::OK
    } else {
        exit::INVALID
    })
}

/// The environments to compare: the one asked for, every one with --all-envs, or the only one.
fn environments(args: &DiffArgs, head: &Side, base: Option<&Side>) -> Result<Vec<String>> {
    let mut names: Vec<String> = head.snapshot.environments().into_keys().collect();
    if let Some(base) = base {
        names.extend(base.snapshot.environments().into_keys());
    }
    names.sort();
    names.dedup();
    match (&args.env, args.all_envs) {
        (Some(name), _) if names.contains(name) => Ok(vec![name.clone()]),
        (Some(name), _) => bail!(
            "no environment `{name}` on either side (have: {})",
            names.join(", ")
        ),
        (None, true) => Ok(names),
        (None, false) if names.len() == 1 => Ok(names),
        (None, false) if names.is_empty() => bail!("neither side has environments"),
        (None, false) => bail!(
            "several environments ({}): choose one with --env NAME, or --all-envs",
            names.join(", ")
        ),
    }
}

/// A side's environment: validated and rendered (empty when the side has no such environment).
struct Rendered {
    platform: Platform,
    objects: Vec<Object>,
    /// Its apps that would not run on their runtime (`file:line:col: message`); empty unless
    /// the side was held against its runtimes.
    refused: Vec<String>,
}

/// Where a side's component imports are read from, to hold its apps against their runtimes.
struct Imports<'a> {
    /// The working tree whose built sources are read, if the side is one.
    repo: Option<&'a std::path::Path>,
    args: &'a super::ImportArgs,
}

/// Evaluates, validates and renders `environment` of `snapshot`; prints the errors of a broken
/// side, which ends the diff with exit code 2 (1 means "changes" for a diff). With `imports`,
/// its apps are held against their runtimes' interfaces: the refusals are printed and kept in
/// [`Rendered::refused`], for the report.
fn load(
    evaluator: &Evaluator,
    snapshot: &Snapshot,
    environment: &str,
    target: &Target,
    imports: Option<Imports<'_>>,
) -> Result<Rendered> {
    if !snapshot.environments().contains_key(environment) {
        return Ok(Rendered {
            platform: Platform::default(),
            objects: Vec::new(),
            refused: Vec::new(),
        });
    }
    match pipeline::build(evaluator, snapshot, Some(environment), target) {
        Ok(rendered) => {
            let refused = match imports {
                Some(imports) => {
                    let pulling = imports.args.pulling();
                    match pipeline::check_imports(&rendered.spec, imports.repo, pulling.as_ref()) {
                        Ok(warnings) => {
                            for warning in warnings {
                                eprintln!("warning: {warning}");
                            }
                            Vec::new()
                        }
                        Err(err) => {
                            eprintln!("{}", err.render(snapshot));
                            err.lines()
                        }
                    }
                }
                None => Vec::new(),
            };
            Ok(Rendered {
                platform: rendered.spec.platform,
                objects: rendered.objects,
                refused,
            })
        }
        Err(err) => {
            eprintln!("{}", err.render(snapshot));
            if let SpecError::Invalid(_) = err {
                eprintln!("\n{} is invalid", snapshot.display_root().display());
            }
            Err(Reported(exit::ERROR).into())
        }
    }
}

fn live_diff(environment: &str, instance: &str, label: &str, after: &Rendered) -> Result<Diff> {
    if !cluster::configured() {
        bail!("--live needs a cluster: set KUBECONFIG (or ~/.kube/config)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cluster = Cluster::connect(cluster::client().await?).await?;
        let sides = live::sides(&cluster, &after.objects, environment, instance).await?;
        let (changes, unchanged) = diff::compare(&sides.live, &sides.desired, Action::Pruned);
        Ok(Diff {
            environment: environment.to_owned(),
            before: "cluster".to_owned(),
            after: label.to_owned(),
            changes,
            unchanged,
            runtimes: Vec::new(),
            conflicts: sides.conflicts,
            refused: after.refused.clone(),
        })
    })
}
