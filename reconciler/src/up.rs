//! `spindle up`: the GitOps loop on one machine. An environment's apps run in this process on
//! spindle's runtime, one port each; a new commit (or, for a plain folder, a saved file) is
//! evaluated, its diff printed, and only the apps that changed are switched: the new version is
//! prepared beside the old, then swapped in, and the old drains.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};
use spindle_runtime::{
    App, Options, Runtime, ServingEngine,
    cpu_share::{self, CpuShare},
    server::{self, Slot},
    stores::{RuntimeConfig, StateDir, StoreConfig},
};
use spindle_schema::{App as AppSpec, KeyValueStore, Platform, SqliteDatabase, Variable};
use tokio::sync::oneshot;

use crate::{pipeline, revisions::Local};
use spindle_config::evaluate::Evaluator;
use spindle_config::spec::{self, Spec};
use spindle_render::diff::{self, Action, Diff, format::Format};
use spindle_render::{Object, Target};

/// A revision of the repository, evaluated and rendered.
pub struct Revision {
    /// The commit (12 digits) or a hash of the working tree's files.
    pub name: String,
    /// The validated spec and what it renders to, or its errors rendered for people.
    pub loaded: Result<Loaded, String>,
}

/// A valid revision.
pub struct Loaded {
    /// The environment's spec.
    pub spec: Spec,
    /// The objects it would deploy, for the diff between revisions; empty when it does not render
    /// for a cluster (apps with a `source` and no `image` run here but not there).
    pub objects: Vec<Object>,
    /// Why it would not render for a cluster, when it would not.
    pub undeployable: Option<String>,
}

/// One served app.
struct Served {
    slot: Arc<Slot>,
    address: SocketAddr,
    fingerprint: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<()>>,
}

/// The apps of an environment, served.
pub struct Up {
    source: Local,
    environment: String,
    engine: ServingEngine,
    first_port: u16,
    cache_dir: Option<PathBuf>,
    apps: BTreeMap<String, Served>,
    ports: BTreeMap<String, u16>,
    revision: String,
    objects: Vec<Object>,
}

impl Up {
    /// Prepares to serve `environment` from `source`, with apps on ports from `listen`'s on (0: any
    /// free port) and compiled components cached in `cache_dir`.
    pub fn new(
        source: Local,
        environment: String,
        listen: SocketAddr,
        cache_dir: Option<PathBuf>,
    ) -> Result<Up> {
        Ok(Up {
            source,
            environment,
            engine: ServingEngine::new(256 << 20)?,
            first_port: listen.port(),
            cache_dir,
            apps: BTreeMap::new(),
            ports: BTreeMap::new(),
            revision: String::new(),
            objects: Vec::new(),
        })
    }

    /// What the apps are served from.
    pub fn source(&self) -> &Local {
        &self.source
    }

    /// Evaluates the current revision; `Ok(None)` when it is the one already served.
    pub fn load(&self, evaluator: &Evaluator) -> Result<Option<Revision>> {
        let (snapshot, name) = self.source.read()?;
        if name == self.revision {
            return Ok(None);
        }
        // An app that would not run on its runtime (built here, so its imports are read) keeps
        // the revision from being served, as any other invalid revision.
        let loaded = spec::load(evaluator, &snapshot, Some(&self.environment))
            .and_then(|spec| {
                pipeline::check_imports(&spec, Some(self.source.path()), None).map(|_| spec)
            })
            .map(
                |spec| match pipeline::render(&spec, &snapshot, &Target::default()) {
                    Ok(objects) => Loaded {
                        spec,
                        objects,
                        undeployable: None,
                    },
                    Err(err) => Loaded {
                        spec,
                        objects: Vec::new(),
                        undeployable: Some(err.render(&snapshot)),
                    },
                },
            )
            .map_err(|err| err.render(&snapshot));
        Ok(Some(Revision { name, loaded }))
    }

    /// Brings the served apps to `spec`: starts new ones, switches changed ones, stops removed
    /// ones. An app that fails to prepare is reported and its running version kept.
    pub async fn apply(&mut self, revision: String, loaded: Loaded) -> Result<()> {
        let Loaded { spec, objects, .. } = loaded;
        if !self.revision.is_empty() {
            let (changes, unchanged) = diff::compare(&self.objects, &objects, Action::Removed);
            let report = Diff {
                environment: self.environment.clone(),
                before: self.revision.clone(),
                after: revision.clone(),
                changes,
                unchanged,
                runtimes: Vec::new(),
                conflicts: Vec::new(),
                refused: Vec::new(),
            };
            print!("{}", diff::format::show(&[report], Format::Text, false));
        }
        let wanted = local_apps(&spec.platform);
        let removed: Vec<String> = self
            .apps
            .keys()
            .filter(|name| !wanted.contains_key(*name))
            .cloned()
            .collect();
        for name in removed {
            let served = self.apps.remove(&name).expect("listed");
            let _ = served.stop.send(());
            let _ = served.task.await;
            println!("stopped {name}");
        }
        for (name, app) in &wanted {
            let (loaded, fingerprint) = match load_local(self.source.path(), app) {
                Ok(found) => found,
                Err(err) => {
                    eprintln!("{name}: {err:#}");
                    continue;
                }
            };
            if self
                .apps
                .get(name)
                .is_some_and(|served| served.fingerprint == fingerprint)
            {
                continue;
            }
            let started = Instant::now();
            let prepared = self.prepare(name, app, loaded).await;
            let runtime = match prepared {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("{name}: cannot start this version: {err:#}");
                    if self.apps.contains_key(name) {
                        eprintln!("{name}: keeping the running version");
                    }
                    continue;
                }
            };
            let command = runtime.app.is_command();
            match self.apps.get_mut(name) {
                Some(served) => {
                    served.slot.replace(runtime);
                    served.fingerprint = fingerprint;
                    println!("switched {name} ({:.1?})", started.elapsed());
                    if command {
                        run_command(name, &served.slot);
                    }
                }
                None => {
                    let served = self.start(name, runtime, fingerprint).await?;
                    println!(
                        "started  {name:<16} http://{} ({:.1?})",
                        served.address,
                        started.elapsed()
                    );
                    if command {
                        run_command(name, &served.slot);
                    }
                    self.apps.insert(name.clone(), served);
                }
            }
        }
        self.revision = revision;
        self.objects = objects;
        Ok(())
    }

    async fn prepare(&self, name: &str, spec: &AppSpec, app: App) -> Result<Runtime> {
        let state = self.source.path().join(".spindle").join(name);
        // The apps share the process's cores; an app keeps its share across its versions.
        let cpu_share = self.apps.get(name).map_or_else(
            || CpuShare::limited(cpu_share::slots_among_apps()),
            |served| served.slot.current().cpu_share().clone(),
        );
        let options = Options {
            state: StateDir::Folder(state),
            variables: spec
                .variables
                .iter()
                .filter_map(|(key, variable)| match variable {
                    Variable::Value(value) => Some((key.clone(), value.clone())),
                    Variable::From(_) => None,
                })
                .collect(),
            retain: spec.components.clone(),
            cache_dir: self.cache_dir.clone(),
            cpu_share,
            ..Options::default()
        };
        let engine = self.engine.clone();
        let config = runtime_config(spec);
        tokio::task::spawn_blocking(move || Runtime::on_with_config(&engine, app, options, config))
            .await
            .context("preparing the app panicked")?
    }

    async fn start(&mut self, name: &str, runtime: Runtime, fingerprint: String) -> Result<Served> {
        // Port 0 asks for any free port per app; otherwise apps take the next ports in turn and
        // keep them across restarts of the app.
        let port = match self.ports.get(name) {
            Some(port) => *port,
            None if self.first_port == 0 => 0,
            None => {
                let used: Vec<u16> = self.ports.values().copied().collect();
                (self.first_port..)
                    .find(|p| !used.contains(p))
                    .expect("a free port")
            }
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("{name}: cannot listen on 127.0.0.1:{port}"))?;
        let address = listener.local_addr()?;
        self.ports.insert(name.to_owned(), address.port());
        let slot = Slot::new(runtime);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(slot.clone(), listener, async {
            let _ = stopped.await;
        }));
        Ok(Served {
            slot,
            address,
            fingerprint,
            stop,
            task,
        })
    }

    /// Stops every app, letting in-flight requests finish.
    pub async fn shutdown(self) {
        for (_, served) in self.apps {
            let _ = served.stop.send(());
            let _ = served.task.await;
        }
    }

    /// The served apps and their addresses.
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        self.apps
            .iter()
            .map(|(name, served)| (name.clone(), served.address))
            .collect()
    }
}

/// Runs the command app in `slot` once, in the background, and says how it exited: each version
/// of a command app runs once, as its Job would in a cluster.
fn run_command(name: &str, slot: &Slot) {
    let runtime = slot.current();
    let name = name.to_owned();
    tokio::spawn(async move {
        match spindle_runtime::trigger::command::run(&runtime, &[]).await {
            Ok(status) => println!("{name}: the command exited with status {status}"),
            Err(err) => eprintln!("{name}: the command could not run: {err:#}"),
        }
    });
}

/// The apps that can run here: those with a `source`.
fn local_apps(platform: &Platform) -> BTreeMap<String, AppSpec> {
    platform
        .apps
        .iter()
        .filter(|(_, app)| app.source.is_some())
        .map(|(name, app)| (name.clone(), app.clone()))
        .collect()
}

/// The stores of the app's runtime config, kept in its state folder (paths meant for pods are
/// not used on this machine).
fn runtime_config(spec: &AppSpec) -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    let store = |kind: &str| StoreConfig {
        kind: kind.to_owned(),
        path: None,
        options: BTreeMap::new(),
    };
    if let Some(runtime_config) = &spec.runtime_config {
        for (label, kv) in &runtime_config.key_value_stores {
            let kind = match kv {
                KeyValueStore::Spin { .. } => "spin",
                KeyValueStore::Redis { .. } => "redis",
            };
            config.key_value_store.insert(label.clone(), store(kind));
        }
        for (label, db) in &runtime_config.sqlite_databases {
            let kind = match db {
                SqliteDatabase::Spin { .. } => "spin",
                SqliteDatabase::Libsql { .. } => "libsql",
            };
            config.sqlite_database.insert(label.clone(), store(kind));
        }
    }
    config
}

/// Loads a local app's `spin.toml`, with what decides whether the app must be switched: a digest
/// of its spec, its manifest, and its Wasm files.
fn load_local(repo: &Path, spec: &AppSpec) -> Result<(App, String)> {
    let mut digest = Sha256::new();
    digest.update(serde_json::to_vec(spec)?);
    let source = repo.join(spec.source.as_deref().unwrap_or_default());
    let app = App::load(&source).map_err(anyhow::Error::new)?;
    digest.update(std::fs::read(&app.manifest_path)?);
    for component in app.components.values() {
        let modified = std::fs::metadata(&component.source)
            .and_then(|m| m.modified())
            .with_context(|| format!("cannot read {}", component.source.display()))?;
        digest.update(format!("{}:{modified:?}", component.source.display()));
    }
    Ok((app, hex::encode(digest.finalize())))
}
