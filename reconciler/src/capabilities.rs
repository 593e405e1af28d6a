//! Whether each app's components import only what its runtime's shim provides: refused in the
//! pull request, at the app's line, rather than found as a failing call (or a CrashLoopBackOff)
//! after the merge. The imports are read from the app's built `source` (its components' Wasm
//! beside its `spin.toml`) or, when it is not built, from its `image`, pulled from the registry
//! and kept by digest.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use spindle_runtime::{App as SpinApp, interfaces};
use spindle_schema::{App, Platform, Problem, Runtime, pointer_segment};

use crate::registry::{self, Access, Registry};

/// The interfaces one app's components import, and where they were read.
#[derive(Debug, Clone)]
pub struct Imports {
    /// Read from the built `source` (true) or from the `image` (false).
    pub from_source: bool,
    /// Each component's imports, by component id.
    pub components: BTreeMap<String, BTreeSet<String>>,
}

/// How images are pulled to read their imports.
#[derive(Debug, Clone)]
pub struct Pulling {
    /// Where pulled blobs and unpacked apps are kept, by digest.
    pub cache: PathBuf,
    /// Registries reached over plain HTTP.
    pub insecure: Vec<String>,
    /// How long reading the images' imports may take, all of them (their manifests and the
    /// blobs not yet kept): an image not read by then leaves its apps unchecked.
    pub timeout: std::time::Duration,
}

/// How many images are pulled at once.
const PARALLEL_PULLS: usize = 4;

/// Reads the imports of every app of `platform`: from its built `source` under `repo`, else
/// from its `image` when `pulling` allows (each image once, a few at a time). What cannot be
/// read is left out, with a warning.
pub async fn read(
    platform: &Platform,
    repo: Option<&Path>,
    pulling: Option<&Pulling>,
) -> (BTreeMap<String, Imports>, Vec<String>) {
    use futures::StreamExt as _;

    let (mut read, unread) = read_built(platform, repo);
    let mut warnings = Vec::new();
    let mut apps_of_image: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for name in unread {
        let image = platform
            .apps
            .get(&name)
            .and_then(|app| app.image.as_deref());
        match (image, pulling) {
            (Some(image), Some(_)) => apps_of_image.entry(image).or_default().push(name),
            _ => warnings.push(not_read(&name)),
        }
    }
    let Some(pulling) = pulling else {
        return (read, warnings);
    };
    let deadline = tokio::time::Instant::now() + pulling.timeout;
    let mut pulls = futures::stream::iter(apps_of_image)
        .map(|(image, names)| async move {
            let pulled = tokio::time::timeout_at(deadline, pulled_imports(image, pulling))
                .await
                .unwrap_or_else(|_| {
                    Err(anyhow::anyhow!(
                        "its image was not read within {}s",
                        pulling.timeout.as_secs_f64()
                    ))
                });
            (names, pulled)
        })
        .buffer_unordered(PARALLEL_PULLS);
    while let Some((names, pulled)) = pulls.next().await {
        for name in names {
            match &pulled {
                Ok(components) => {
                    read.insert(
                        name,
                        Imports {
                            from_source: false,
                            components: components.clone(),
                        },
                    );
                }
                Err(err) => warnings.push(format!(
                    "app `{name}`: its components' imports are not checked: {err:#}"
                )),
            }
        }
    }
    warnings.sort();
    (read, warnings)
}

/// Reads the imports of the apps of `platform` whose `source` is built under `repo`; returns
/// them and the names of the apps (with a `source` or an `image`) it could not read.
pub fn read_built(
    platform: &Platform,
    repo: Option<&Path>,
) -> (BTreeMap<String, Imports>, Vec<String>) {
    let mut read = BTreeMap::new();
    let mut unread = Vec::new();
    for (name, app) in &platform.apps {
        let built = match (repo, &app.source) {
            (Some(repo), Some(source)) => SpinApp::load(&repo.join(source))
                .ok()
                .and_then(|spin_app| component_imports(&spin_app).ok()),
            _ => None,
        };
        match built {
            Some(components) => {
                read.insert(
                    name.clone(),
                    Imports {
                        from_source: true,
                        components,
                    },
                );
            }
            None if app.source.is_some() || app.image.is_some() => unread.push(name.clone()),
            None => {}
        }
    }
    (read, unread)
}

/// The warning for an app whose imports were not read.
pub fn not_read(name: &str) -> String {
    format!(
        "app `{name}`: its components' imports are not checked (not built, and no image pulled)"
    )
}

/// Each component of `app` and what it imports; fails when a component's Wasm is missing.
fn component_imports(app: &SpinApp) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    app.components
        .iter()
        .map(|(id, spec)| {
            let wasm = std::fs::read(&spec.source)?;
            Ok((id.clone(), interfaces::imports(&wasm)?))
        })
        .collect()
}

async fn pulled_imports(
    image: &str,
    pulling: &Pulling,
) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let reference = registry::reference(image)?;
    let access = Access {
        insecure: pulling
            .insecure
            .iter()
            .any(|registry| registry == reference.resolve_registry()),
        login: None,
    };
    let app = Registry::new(&reference, &access)?
        .pull(&reference, &pulling.cache)
        .await?;
    component_imports(&app)
}

/// Whether a shim provides an interface.
#[derive(Debug, PartialEq, Eq)]
enum Provision {
    Provided,
    /// Not by this shim's version; the version that has it, if any.
    Missing {
        since: Option<&'static str>,
    },
    /// A shim (or an interface) this check does not know.
    Unknown,
}

/// Since which containerd-shim-spin version an interface is served, from the shim's version
/// map (v0.12.0 is Spin 2.2, v0.17.0 Spin 3.0, v0.21.0 Spin 3.4); `None` for one this check
/// does not know.
fn spin_shim_since(import: &str) -> Option<&'static str> {
    let (name, version) = import.split_once('@').unwrap_or((import, ""));
    if name.starts_with("wasi:keyvalue/") || name.starts_with("wasi:config/") {
        Some("0.17.0")
    } else if (name.starts_with("wasi:") && version.starts_with("0.2."))
        || (name.starts_with("fermyon:spin/") && version == "2.0.0")
    {
        Some("0.12.0")
    } else if name == "spin:postgres/postgres" && version == "3.0.0" {
        Some("0.17.0")
    } else if name == "spin:postgres/postgres" && version == "4.0.0" {
        Some("0.21.0")
    } else {
        None
    }
}

/// Whether `runtime`'s shim provides `import`.
fn provision(runtime: &Runtime, import: &str) -> Provision {
    let kind = runtime.runtime_type.as_str();
    if kind.starts_with("io.containerd.spindle.") {
        if interfaces::served(import) {
            Provision::Provided
        } else {
            Provision::Missing { since: None }
        }
    } else if kind.starts_with("io.containerd.spin.") {
        match spin_shim_since(import) {
            Some(since) if spindle_render::triggers::older(&runtime.shim.version, since) => {
                Provision::Missing { since: Some(since) }
            }
            Some(_) => Provision::Provided,
            None => Provision::Unknown,
        }
    } else {
        Provision::Unknown
    }
}

/// The apps of `platform` that import an interface their runtime's shim does not provide, each
/// refused at its `source` (or `image`, when the imports came from it).
pub fn check(platform: &Platform, imports: &BTreeMap<String, Imports>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (name, app) in &platform.apps {
        let (Some(read), Some((runtime_name, runtime))) =
            (imports.get(name), platform.runtime_of(app))
        else {
            continue;
        };
        if let Some(problem) = check_app(name, app, read, runtime_name, runtime) {
            problems.push(problem);
        }
    }
    problems
}

fn check_app(
    name: &str,
    app: &App,
    read: &Imports,
    runtime_name: &str,
    runtime: &Runtime,
) -> Option<Problem> {
    let mut refusals = Vec::new();
    for (component, component_imports) in &read.components {
        for import in component_imports {
            let Provision::Missing { since } = provision(runtime, import) else {
                continue;
            };
            let elsewhere = match (since, spin_shim_since(import)) {
                (Some(since), _) => format!("; it does from {since} on"),
                (None, Some(spin)) => {
                    format!("; containerd-shim-spin has it from {spin} on")
                }
                (None, None) => String::new(),
            };
            refusals.push(format!(
                "component `{component}` imports `{import}`, which runtime `{runtime_name}` \
                 ({} {}) does not provide{elsewhere}",
                shim_name(runtime),
                runtime.shim.version
            ));
        }
    }
    if refusals.is_empty() {
        return None;
    }
    let (field, what) = match (read.from_source, &app.source, &app.image) {
        (true, Some(source), _) => ("source", format!("built from {source}")),
        (_, _, Some(image)) => ("image", format!("in image {image}")),
        _ => ("source", String::new()),
    };
    Some(Problem {
        pointer: format!("/apps/{}/{field}", pointer_segment(name)),
        message: format!(
            "app `{name}` ({what}) would not run on its runtime: {}",
            refusals.join("; ")
        ),
    })
}

fn shim_name(runtime: &Runtime) -> &'static str {
    if runtime.runtime_type.starts_with("io.containerd.spin.") {
        "containerd-shim-spin"
    } else {
        "spindle's shim"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(kind: &str, version: &str) -> Runtime {
        let mut runtime: Runtime = serde_json::from_value(serde_json::json!({
            "shim": { "version": version, "sha256": "00" },
        }))
        .unwrap();
        runtime.runtime_type = kind.to_owned();
        runtime
    }

    #[test]
    fn each_shim_provides_what_its_version_has() {
        let spindle = runtime("io.containerd.spindle.v1", "0.1.0");
        assert_eq!(
            provision(&spindle, "fermyon:spin/key-value@2.0.0"),
            Provision::Provided
        );
        assert_eq!(
            provision(&spindle, "wasi:keyvalue/store@0.2.0-draft2"),
            Provision::Provided
        );
        assert_eq!(
            provision(&spindle, "spin:key-value/key-value@3.0.0"),
            Provision::Missing { since: None }
        );
        let old_spin = runtime("io.containerd.spin.v2", "0.15.0");
        assert_eq!(
            provision(&old_spin, "wasi:keyvalue/store@0.2.0-draft2"),
            Provision::Missing {
                since: Some("0.17.0")
            }
        );
        assert_eq!(
            provision(&old_spin, "fermyon:spin/mqtt@2.0.0"),
            Provision::Provided
        );
        assert_eq!(
            provision(&old_spin, "example:app/thing@1.0.0"),
            Provision::Unknown
        );
        let other = runtime("io.containerd.wasmtime.v1", "1.0.0");
        assert_eq!(
            provision(&other, "fermyon:spin/mqtt@2.0.0"),
            Provision::Unknown
        );
    }
}
