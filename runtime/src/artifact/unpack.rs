//! Layers of a Spin artifact back into an [`App`]: components and files written under a folder,
//! named by digest, and the locked app's triggers, variables and capabilities checked as
//! `spin.toml`'s are.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io::Read as _,
    path::{Component as PathComponent, Path},
};

use base64::Engine as _;

use super::{
    ARCHIVE_MEDIA_TYPE, ArtifactError, DATA_MEDIA_TYPE, LOCKED_APP_MEDIA_TYPE, MAX_ARTIFACT_LAYERS,
    MAX_LOCKED_APP_BYTES, PLAIN_WASM_MEDIA_TYPE, digest, is_wasm_layer,
    locked::{self, LOCK_VERSION, LockedApp},
};
use crate::{App, app::ComponentSpec, manifest, routes::RoutePattern};

/// One layer of an artifact.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// The layer's media type, as the manifest gives it.
    pub media_type: &'a str,
    /// The digest the manifest gives it.
    pub digest: &'a str,
    /// The layer's content.
    pub bytes: &'a [u8],
    /// Wasm already compiled by this runtime's engine (containerd's cache), not Wasm.
    pub precompiled: bool,
}

/// Writes the app in `layers` under `dir` and returns it, ready for [`crate::Runtime`].
pub fn unpack(layers: &[Layer], dir: &Path) -> Result<App, ArtifactError> {
    if layers.len() > MAX_ARTIFACT_LAYERS {
        return Err(ArtifactError::NotAnApp(format!(
            "{} layers, more than the {MAX_ARTIFACT_LAYERS} an artifact has",
            layers.len(),
        )));
    }
    for layer in layers.iter().filter(|layer| !layer.precompiled) {
        let actual = digest(layer.bytes);
        if actual != layer.digest {
            return Err(ArtifactError::Corrupt {
                digest: layer.digest.to_owned(),
                actual,
            });
        }
    }
    let locked = match layers
        .iter()
        .rev()
        .find(|layer| layer.media_type == LOCKED_APP_MEDIA_TYPE)
    {
        Some(layer) if layer.bytes.len() > MAX_LOCKED_APP_BYTES => {
            return Err(ArtifactError::LockedApp(format!(
                "it is {} bytes, more than the {} MiB a locked app may be",
                layer.bytes.len(),
                MAX_LOCKED_APP_BYTES >> 20
            )));
        }
        Some(layer) => serde_json::from_slice::<LockedApp>(layer.bytes)
            .map_err(|err| ArtifactError::LockedApp(err.to_string()))?,
        None => match layers {
            [single] if is_wasm_layer(single.media_type) => single_component(single),
            _ => {
                return Err(ArtifactError::NotAnApp(
                    layers
                        .iter()
                        .map(|layer| layer.media_type)
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
        },
    };
    check_understood(&locked)?;
    let content = Content::index(layers)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("locked-app.json"),
        serde_json::to_vec(&locked).expect("the locked app serializes"),
    )?;
    resolve(locked, &content, dir)
}

/// A `wkg`-style package: one component on every path, as `spin up` runs it.
fn single_component(layer: &Layer) -> LockedApp {
    let id = "http-trigger1-component".to_owned();
    LockedApp {
        triggers: vec![locked::Trigger {
            id: "http-trigger1".into(),
            trigger_type: "http".into(),
            trigger_config: serde_json::json!({ "component": id, "route": "/..." }),
        }],
        components: vec![locked::Component {
            id,
            source: locked::Source {
                content_type: PLAIN_WASM_MEDIA_TYPE.into(),
                content: locked::Content {
                    digest: Some(layer.digest.to_owned()),
                    ..Default::default()
                },
            },
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn check_understood(locked: &LockedApp) -> Result<(), ArtifactError> {
    if locked.spin_lock_version > LOCK_VERSION {
        return Err(ArtifactError::LockedApp(format!(
            "spin_lock_version {} is newer than spindle reads ({LOCK_VERSION})",
            locked.spin_lock_version
        )));
    }
    if let Some(unknown) = locked
        .must_understand
        .iter()
        .find(|what| what.as_str() != "host_requirements")
    {
        return Err(ArtifactError::LockedApp(format!(
            "it requires `{unknown}`, which spindle does not understand"
        )));
    }
    if let Some((name, _)) = locked
        .host_requirements
        .iter()
        .find(|(name, _)| name.as_str() != "local_service_chaining")
    {
        return Err(ArtifactError::LockedApp(format!(
            "it requires host feature `{name}`, which spindle does not have"
        )));
    }
    Ok(())
}

/// The artifact's content by digest: its Wasm and data layers, and the files of its archives.
struct Content<'a> {
    by_digest: HashMap<String, (std::borrow::Cow<'a, [u8]>, bool)>,
}

impl<'a> Content<'a> {
    fn index(layers: &[Layer<'a>]) -> Result<Content<'a>, ArtifactError> {
        let mut by_digest = HashMap::new();
        let mut archive_budget = MAX_ARCHIVE_BYTES;
        for layer in layers {
            if layer.media_type == ARCHIVE_MEDIA_TYPE {
                for bytes in archive_files(layer, &mut archive_budget)? {
                    by_digest.insert(digest(&bytes), (bytes.into(), false));
                }
            } else if is_wasm_layer(layer.media_type) || layer.media_type == DATA_MEDIA_TYPE {
                by_digest.insert(
                    layer.digest.to_owned(),
                    (layer.bytes.into(), layer.precompiled),
                );
            }
        }
        Ok(Content { by_digest })
    }

    /// The bytes `content` names (inline first, then by digest), and whether they are compiled.
    fn get(
        &self,
        content: &locked::Content,
        what: impl Fn() -> String,
    ) -> Result<(std::borrow::Cow<'_, [u8]>, bool), ArtifactError> {
        if let Some(inline) = &content.inline {
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(inline.trim_end_matches('='))
                .map_err(|err| {
                    ArtifactError::LockedApp(format!("{}: inline content: {err}", what()))
                })?;
            return Ok((bytes.into(), false));
        }
        let Some(digest) = &content.digest else {
            return Err(ArtifactError::LockedApp(format!(
                "{} has no digest{}",
                what(),
                content
                    .source
                    .as_ref()
                    .map(|source| format!(
                        " (only a source, {source}, which spindle does not fetch)"
                    ))
                    .unwrap_or_default()
            )));
        };
        let (bytes, precompiled) =
            self.by_digest
                .get(digest)
                .ok_or_else(|| ArtifactError::Missing {
                    digest: digest.clone(),
                    what: what(),
                })?;
        Ok((std::borrow::Cow::Borrowed(bytes.as_ref()), *precompiled))
    }
}

/// The most an artifact's archive layers may hold together once decompressed: a small gzip can
/// expand a thousandfold (a gzip bomb), and unpacking holds the files in memory.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

/// The regular files of an archive layer. Every byte decompressed (headers, padding and the
/// entries it skips too) is taken from the `budget` that the artifact's archives share, and the
/// layer is refused once the budget is spent.
fn archive_files(layer: &Layer, budget: &mut u64) -> Result<Vec<Vec<u8>>, ArtifactError> {
    let fail = |err: std::io::Error| ArtifactError::Archive {
        digest: layer.digest.to_owned(),
        message: err.to_string(),
    };
    let decompressed = Budgeted {
        inner: flate2::read::GzDecoder::new(layer.bytes),
        budget,
    };
    let mut archive = tar::Archive::new(decompressed);
    let mut files = Vec::new();
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        if entry.header().entry_type().is_file() {
            // The header's size is the archive's word: grow as the bytes really come.
            let size = entry.header().size().map_err(fail)?;
            let mut bytes = Vec::with_capacity(size.min(1 << 20) as usize);
            entry.read_to_end(&mut bytes).map_err(fail)?;
            files.push(bytes);
        }
    }
    Ok(files)
}

/// A reader that takes each byte it reads from a budget, and fails once the budget is spent
/// and more bytes come.
struct Budgeted<'b, R> {
    inner: R,
    budget: &'b mut u64,
}

impl<R: std::io::Read> std::io::Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = (*self.budget).min(buf.len() as u64) as usize;
        if room == 0 && !buf.is_empty() {
            // A budget spent exactly is fine when nothing more comes.
            return match self.inner.read(&mut [0u8; 1])? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "the artifact's archives unpack to more than {} MiB",
                    MAX_ARCHIVE_BYTES >> 20
                ))),
            };
        }
        let read = self.inner.read(&mut buf[..room])?;
        *self.budget -= read as u64;
        Ok(read)
    }
}

fn resolve(locked: LockedApp, content: &Content, dir: &Path) -> Result<App, ArtifactError> {
    let invalid = ArtifactError::LockedApp;
    let base = locked
        .metadata
        .triggers
        .get("http")
        .and_then(|http| http.get("base"))
        .and_then(|base| base.as_str())
        .unwrap_or("/")
        .to_owned();
    let variables = locked
        .variables
        .into_iter()
        .map(|(name, variable)| {
            (
                name,
                manifest::Variable {
                    required: variable.default.is_none(),
                    default: variable.default,
                    secret: variable.secret,
                },
            )
        })
        .collect();

    let (wasm_dir, files_dir) = (dir.join("wasm"), dir.join("files"));
    std::fs::create_dir_all(&wasm_dir)?;
    std::fs::create_dir_all(&files_dir)?;
    let mut components = BTreeMap::new();
    for component in locked.components {
        let id = component.id;
        if !component.dependencies.is_empty() {
            return Err(invalid(format!(
                "component `{id}` has dependencies; compose them into the component before pushing (`spin registry push` does)"
            )));
        }
        let (wasm, precompiled) =
            content.get(&component.source.content, || format!("component `{id}`"))?;
        let source = wasm_dir.join(format!(
            "{}.{}",
            digest(&wasm).trim_start_matches("sha256:"),
            if precompiled { "cwasm" } else { "wasm" }
        ));
        write_once(&source, &wasm)?;
        let mut files = Vec::new();
        for file in component.files {
            let guest = guest_path(&file.path).ok_or_else(|| {
                invalid(format!(
                    "component `{id}`: file path `{}` leaves the component's root",
                    file.path
                ))
            })?;
            let (bytes, _) = content.get(&file.content, || {
                format!("file `{}` of component `{id}`", file.path)
            })?;
            let host = files_dir.join(digest(&bytes).trim_start_matches("sha256:"));
            write_once(&host, &bytes)?;
            files.push((host, guest));
        }
        components.insert(
            id.clone(),
            ComponentSpec {
                id,
                source,
                precompiled,
                files,
                environment: component.env,
                allowed_outbound_hosts: component.metadata.allowed_outbound_hosts,
                key_value_stores: component.metadata.key_value_stores.into_iter().collect(),
                sqlite_databases: component.metadata.databases.into_iter().collect(),
                variables: component.config,
                build: None,
            },
        );
    }

    let mut routes = Vec::new();
    let mut triggers = Vec::new();
    let mut served = BTreeSet::new();
    for trigger in locked.triggers {
        if trigger.trigger_type != "http" {
            let trigger = crate::trigger::locked::from_locked(&trigger, &locked.metadata.triggers)
                .map_err(invalid)?;
            if !components.contains_key(&trigger.component) {
                return Err(invalid(format!(
                    "trigger `{}` names component `{}`, which the app does not have",
                    trigger.id, trigger.component
                )));
            }
            triggers.push(trigger);
            continue;
        }
        let config = &trigger.trigger_config;
        let Some(component) = config.get("component").and_then(|c| c.as_str()) else {
            return Err(invalid(format!(
                "trigger `{}` names no component",
                trigger.id
            )));
        };
        if !components.contains_key(component) {
            return Err(invalid(format!(
                "trigger `{}` names component `{component}`, which the app does not have",
                trigger.id
            )));
        }
        match config.get("route") {
            Some(serde_json::Value::String(route)) => {
                let pattern = RoutePattern::parse_with_base(&base, route)
                    .map_err(|err| invalid(format!("trigger `{}`: {err}", trigger.id)))?;
                if !served.insert(pattern.to_string()) {
                    return Err(invalid(format!("route `{pattern}` is served twice")));
                }
                routes.push((pattern, component.to_owned()));
            }
            Some(serde_json::Value::Object(private))
                if private.get("private") == Some(&serde_json::Value::Bool(true)) => {}
            _ => {
                return Err(invalid(format!(
                    "trigger `{}` has no route (a path or {{ \"private\": true }})",
                    trigger.id
                )));
            }
        }
    }
    Ok(App {
        name: locked.metadata.name,
        dir: dir.to_path_buf(),
        manifest_path: dir.join("locked-app.json"),
        base,
        variables,
        components,
        routes,
        triggers,
    })
}

/// `static/a.txt` as the guest sees it, `/static/a.txt`; `None` for paths that would escape.
fn guest_path(path: &str) -> Option<String> {
    let relative = Path::new(path.trim_start_matches('/'));
    relative
        .components()
        .all(|part| matches!(part, PathComponent::Normal(_)))
        .then(|| format!("/{}", relative.display()))
}

/// Content-addressed files are written once: a second app in the same folder reuses them.
fn write_once(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    crate::atomic_file::write(path, bytes)
}

#[cfg(test)]
mod bounds {
    use super::*;

    /// A gzipped tar of one entry of `kind` holding 4 MiB of zeros.
    fn gzipped_zeros(kind: tar::EntryType) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let zeros = vec![0u8; 4 << 20];
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(zeros.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "zeros", zeros.as_slice())
            .unwrap();
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn archives_that_unpack_past_their_shared_budget_are_refused() {
        let gz = gzipped_zeros(tar::EntryType::Regular);
        assert!(
            gz.len() < 64 << 10,
            "4 MiB of zeros compress to {} bytes",
            gz.len()
        );
        let layer = Layer {
            media_type: "application/vnd.wasm.content.bundle.v1.tar+gzip",
            digest: "sha256:bomb",
            bytes: &gz,
            precompiled: false,
        };
        // Layers share one budget: the second bomb finds what the first left.
        let mut budget = 6 << 20;
        assert_eq!(
            archive_files(&layer, &mut budget).unwrap()[0].len(),
            4 << 20
        );
        // The file's bytes, and the tar headers around them.
        assert!(
            budget < 2 << 20 && budget > (2 << 20) - (16 << 10),
            "{budget}"
        );
        let err = archive_files(&layer, &mut budget).unwrap_err().to_string();
        assert!(err.contains("unpack to more than 1024 MiB"), "{err}");
    }

    #[test]
    fn entries_that_are_not_files_spend_the_budget_too() {
        let gz = gzipped_zeros(tar::EntryType::Fifo);
        let layer = Layer {
            media_type: "application/vnd.wasm.content.bundle.v1.tar+gzip",
            digest: "sha256:skipped",
            bytes: &gz,
            precompiled: false,
        };
        let mut budget = 1 << 20;
        let err = archive_files(&layer, &mut budget).unwrap_err().to_string();
        assert!(err.contains("unpack to more than 1024 MiB"), "{err}");
        let mut budget = 8 << 20;
        assert!(archive_files(&layer, &mut budget).unwrap().is_empty());
    }

    #[test]
    fn a_locked_app_past_its_bound_is_refused_before_it_is_parsed() {
        let huge = vec![b' '; MAX_LOCKED_APP_BYTES + 1];
        let layer = Layer {
            media_type: LOCKED_APP_MEDIA_TYPE,
            digest: &digest(&huge),
            bytes: &huge,
            precompiled: false,
        };
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(&[layer], dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("more than the 32 MiB a locked app may be"),
            "{err}"
        );
    }
}
