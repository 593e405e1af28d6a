//! `spindle test`: golden files for users' repositories.

use std::{io::Write as _, path::PathBuf};

use anyhow::Result;
use clap::Args;

use super::{EvalArgs, exit};
use spindle_config::snapshot::{GOLDEN_DIR, Snapshot};
use spindle_reconciler::pipeline;
use spindle_render::golden;
use spindle_render::{Flavor, KubeVersion, Target};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The repository (or a folder inside one) holding `environments/` and `golden/`.
    #[arg(default_value = ".")]
    repo: PathBuf,
    /// Rewrite `golden/` from the current render instead of comparing. Review the change.
    #[arg(long)]
    update: bool,
    /// Test only this environment.
    #[arg(long, short = 'e')]
    env: Option<String>,
    /// Kubernetes version to render for. Fixed, so that the files do not depend on a cluster.
    #[arg(long, value_name = "X.Y", default_value_t = KubeVersion::NEWEST, value_parser = |s: &str| s.parse::<KubeVersion>())]
    kube_version: KubeVersion,
    #[arg(long, value_enum, default_value = "native")]
    flavor: Flavor,
    #[command(flatten)]
    eval: EvalArgs,
}

pub fn test(args: &TestArgs) -> Result<i32> {
    let snapshot = Snapshot::from_dir(&args.repo)?;
    let evaluator = args.eval.evaluator()?;
    let mut environments: Vec<String> = snapshot.environments().into_keys().collect();
    if let Some(wanted) = &args.env {
        environments.retain(|name| name == wanted);
        if environments.is_empty() {
            anyhow::bail!("no environment `{wanted}`");
        }
    }
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    // No revision label and no nodes: the files depend on the repository alone.
    let target = Target {
        kube: args.kube_version,
        flavor: args.flavor,
        ..Target::default()
    };
    for environment in &environments {
        let objects = match pipeline::build(&evaluator, &snapshot, Some(environment), &target) {
            Ok(rendered) => rendered.objects,
            Err(err) => {
                err.print(&snapshot);
                writeln!(out, "FAIL {environment}: invalid")?;
                failed += 1;
                continue;
            }
        };
        let actual = golden::files(&objects, false);
        let dir = args.repo.join(GOLDEN_DIR).join(environment);
        let expected = golden::read(&dir)?;
        let differences = golden::compare(&expected, &actual);
        if args.update {
            golden::write(&dir, &actual)?;
            writeln!(
                out,
                "{} {environment}: {} files in {}",
                if differences.is_empty() {
                    "same"
                } else {
                    "updated"
                },
                actual.len(),
                dir.display()
            )?;
        } else if expected.is_empty() {
            failed += 1;
            writeln!(
                out,
                "FAIL {environment}: no golden files in {} (`spindle test --update` writes them)",
                dir.display()
            )?;
        } else if differences.is_empty() {
            writeln!(
                out,
                "ok   {environment}: {} objects match {}",
                actual.len(),
                dir.display()
            )?;
        } else {
            failed += 1;
            writeln!(
                out,
                "FAIL {environment}: {} files differ from {}",
                differences.len(),
                dir.display()
            )?;
            for difference in differences {
                writeln!(out, "{difference}")?;
            }
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::INVALID })
}
