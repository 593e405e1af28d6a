//! `spindle up`: run an environment's apps locally and follow the repository.

use std::{net::SocketAddr, path::PathBuf, time::Instant};

use anyhow::Result;
use clap::Args;
use spindle_runtime::App;

use super::{EvalArgs, build, cache_dir, exit, rejected};
use spindle_reconciler::revisions::Local;
use spindle_reconciler::up::{self, Up};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The repository (or a folder inside one) holding `environments/`.
    #[arg(default_value = ".")]
    repo: PathBuf,
    /// Environment to run. Needed when the repository has several.
    #[arg(long, short = 'e', env = "SPINDLE_ENV")]
    env: Option<String>,
    /// Follow this branch instead of the checked-out one.
    #[arg(long, conflicts_with = "dirty")]
    branch: Option<String>,
    /// Run the working tree as it is (and follow saved files) instead of the branch's commits.
    #[arg(long)]
    dirty: bool,
    /// Address of the first app; the others get the next ports.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Run the apps' build commands first.
    #[arg(long)]
    build: bool,
    #[command(flatten)]
    eval: EvalArgs,
}

pub fn up(args: &UpArgs) -> Result<i32> {
    let started = Instant::now();
    let source = Local::new(&args.repo, args.branch.clone(), args.dirty)?;
    let evaluator = args.eval.evaluator()?;
    let (snapshot, _) = source.read()?;
    let environment = match spindle_config::spec::environment(&snapshot, args.env.as_deref()) {
        Ok((name, _)) => name,
        Err(err) => return Err(rejected(&snapshot, err)),
    };
    println!(
        "spindle up: {} environment {environment}",
        source.describe()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut up = Up::new(source, environment, args.listen, cache_dir().map(|d| d.join("components")))?;
        let Some(first) = up.load(&evaluator)? else {
            unreachable!("nothing is served yet")
        };
        let revision = first.name;
        let loaded = match first.loaded {
            Ok(loaded) => loaded,
            Err(errors) => {
                eprintln!("{errors}");
                return anyhow::Ok(exit::INVALID);
            }
        };
        note_undeployable(&loaded);
        let spec = &loaded.spec;
        for (name, app) in &spec.platform.apps {
            match &app.source {
                Some(source) if args.build => {
                    println!("building {name}");
                    let app = App::load(&args.repo.join(source)).map_err(anyhow::Error::new)?;
                    build::build(&app)?;
                }
                Some(_) => {}
                None => println!("skipping {name}: it has only an `image`; running OCI images locally comes with the containerd shim"),
            }
        }
        for (name, runtime) in &spec.platform.runtimes {
            let nodes = if runtime.node_selector.is_empty() {
                "every node".to_owned()
            } else {
                runtime.node_selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
            };
            println!("runtime {name}: would install shim {} on nodes matching {nodes} (no nodes here)", runtime.shim.version);
        }
        up.apply(revision, loaded).await?;
        println!(
            "ready: {} app(s) in {:.1?}; watching for changes (Ctrl-C to stop)",
            up.addresses().len(),
            started.elapsed()
        );
        let (_watcher, mut changes) = up.source().watch()?;
        let mut stop = std::pin::pin!(spindle_runtime::server::termination());
        loop {
            tokio::select! {
                () = &mut stop => break,
                Some(()) = changes.recv() => {
                    match up.load(&evaluator) {
                        Ok(None) => {}
                        Ok(Some(up::Revision { name, loaded: Ok(loaded) })) => {
                            println!("\nrevision {name}");
                            note_undeployable(&loaded);
                            if let Err(err) = up.apply(name, loaded).await {
                                eprintln!("could not apply: {err:#}");
                            }
                        }
                        Ok(Some(up::Revision { name, loaded: Err(errors) })) => {
                            eprintln!("\nrevision {name} is invalid; the running apps stay as they are:\n{errors}");
                        }
                        Err(err) => eprintln!("could not read the repository: {err:#}"),
                    }
                }
            }
        }
        up.shutdown().await;
        eprintln!("stopped: in-flight requests finished");
        anyhow::Ok(exit::OK)
    })
}

/// Says that a revision runs here but would not render for a cluster, and why.
fn note_undeployable(loaded: &up::Loaded) {
    if let Some(why) = &loaded.undeployable {
        eprintln!("note: this revision runs here but would not deploy to a cluster:\n{why}");
    }
}
