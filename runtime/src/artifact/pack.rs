//! An [`App`] as a Spin OCI artifact. The same app gives the same bytes, so the same digest:
//! nothing time- or machine-dependent goes in (no creation date, no file times or owners).

use std::{collections::BTreeMap, io::Write as _};

use base64::Engine as _;
use serde_json::json;

use super::{
    ARCHIVE_MEDIA_TYPE, Blob, CONFIG_MEDIA_TYPE, DATA_MEDIA_TYPE, LOCKED_APP_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE, MAX_LAYERS, WASM_MEDIA_TYPE, digest,
    locked::{self, LockedApp},
};
use crate::App;

/// Files up to this size go into the locked app instead of a layer of their own (as Spin does).
const INLINE_LIMIT: usize = 128;
/// The label on the config that makes every app's image id its own.
pub const LOCKED_APP_DIGEST_LABEL: &str = "com.fermyon.spin.lockedAppDigest";

/// An artifact ready to push: its manifest, config and layers.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest as it is pushed; its digest is the artifact's.
    pub manifest: Vec<u8>,
    /// The image config: architecture `wasm`, labelled with the locked app's digest.
    pub config: Blob,
    /// In manifest order, the locked app last.
    pub layers: Vec<Blob>,
}

impl Artifact {
    /// `sha256:…` of the manifest: what a pushed reference resolves to.
    pub fn digest(&self) -> String {
        digest(&self.manifest)
    }
}

/// One component file: where the guest sees it and its bytes.
struct PackedFile {
    path: String,
    bytes: Vec<u8>,
}

/// Builds the artifact of `app`, reading its components and files.
pub fn pack(app: &App) -> std::io::Result<Artifact> {
    let mut wasm_layers: Vec<Blob> = Vec::new();
    let mut files: BTreeMap<&str, Vec<PackedFile>> = BTreeMap::new();
    let mut components = Vec::new();
    for (id, spec) in &app.components {
        let wasm = std::fs::read(&spec.source).map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!(
                    "component `{id}`: cannot read {}: {err}",
                    spec.source.display()
                ),
            )
        })?;
        let wasm = Blob::new(WASM_MEDIA_TYPE, wasm);
        let source = locked::Source {
            content_type: "application/wasm".into(),
            content: locked::Content {
                digest: Some(wasm.digest.clone()),
                ..Default::default()
            },
        };
        push_unique(&mut wasm_layers, wasm);

        let mut packed = Vec::new();
        for (host, guest) in &spec.files {
            packed.push(PackedFile {
                path: guest.trim_start_matches('/').to_owned(),
                bytes: std::fs::read(host).map_err(|err| {
                    std::io::Error::new(
                        err.kind(),
                        format!("component `{id}`: cannot read {}: {err}", host.display()),
                    )
                })?,
            });
        }
        packed.sort_by(|a, b| a.path.cmp(&b.path));
        let locked_files = packed
            .iter()
            .map(|file| locked::File {
                content: locked::Content {
                    digest: Some(digest(&file.bytes)),
                    inline: (file.bytes.len() <= INLINE_LIMIT).then(|| {
                        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&file.bytes)
                    }),
                    source: None,
                },
                path: file.path.clone(),
            })
            .collect();
        files.insert(id, packed);

        components.push(locked::Component {
            id: id.clone(),
            metadata: locked::ComponentMetadata {
                allowed_outbound_hosts: spec.allowed_outbound_hosts.clone(),
                key_value_stores: spec.key_value_stores.iter().cloned().collect(),
                databases: spec.sqlite_databases.iter().cloned().collect(),
            },
            source,
            env: spec.environment.clone(),
            files: locked_files,
            config: spec.variables.clone(),
            dependencies: BTreeMap::new(),
        });
    }

    let mut layers = wasm_layers;
    let data_layers = files
        .values()
        .flatten()
        .filter(|file| file.bytes.len() > INLINE_LIMIT)
        .fold(Vec::new(), |mut blobs, file| {
            push_unique(&mut blobs, Blob::new(DATA_MEDIA_TYPE, file.bytes.clone()));
            blobs
        });
    if layers.len() + data_layers.len() <= MAX_LAYERS {
        layers.extend(data_layers);
    } else {
        for component_files in files.values() {
            let large: Vec<&PackedFile> = component_files
                .iter()
                .filter(|file| file.bytes.len() > INLINE_LIMIT)
                .collect();
            if !large.is_empty() {
                push_unique(&mut layers, Blob::new(ARCHIVE_MEDIA_TYPE, archive(&large)?));
            }
        }
    }

    let (other_triggers, mut trigger_settings) = crate::trigger::locked::to_locked(&app.triggers);
    if app.base != "/" {
        trigger_settings.insert("http".to_owned(), json!({ "base": app.base }));
    }
    let mut triggers = triggers(app);
    triggers.extend(other_triggers);
    let locked = LockedApp {
        spin_lock_version: 0,
        metadata: locked::Metadata {
            name: app.name.clone(),
            version: None,
            triggers: trigger_settings,
        },
        variables: app
            .variables
            .iter()
            .map(|(name, variable)| {
                (
                    name.clone(),
                    locked::Variable {
                        default: variable.default.clone(),
                        secret: variable.secret,
                    },
                )
            })
            .collect(),
        triggers,
        components,
        ..Default::default()
    };
    let locked = Blob::new(
        LOCKED_APP_MEDIA_TYPE,
        serde_json::to_vec(&locked).expect("the locked app serializes"),
    );
    let config = Blob::new(
        CONFIG_MEDIA_TYPE,
        serde_json::to_vec(&json!({
            "architecture": "wasm",
            "os": "wasip1",
            "config": { "Labels": { LOCKED_APP_DIGEST_LABEL: locked.digest } },
            "rootfs": { "type": "layers", "diff_ids": [] },
        }))
        .expect("the config serializes"),
    );
    layers.push(locked);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        "annotations": { "org.opencontainers.image.title": app.name },
    }))
    .expect("the manifest serializes");
    Ok(Artifact {
        manifest,
        config,
        layers,
    })
}

/// One HTTP trigger per route, in the manifest's order, and a private one for each HTTP component
/// without a route (reachable by local service chaining only).
fn triggers(app: &App) -> Vec<locked::Trigger> {
    let mut triggers = Vec::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut trigger = |component: &str, route: serde_json::Value| {
        let count = ids.entry(component.to_owned()).or_default();
        *count += 1;
        let id = match *count {
            1 => format!("{component}-http-trigger"),
            n => format!("{component}-http-trigger{n}"),
        };
        locked::Trigger {
            id,
            trigger_type: "http".into(),
            trigger_config: json!({ "component": component, "route": route }),
        }
    };
    for (pattern, component) in &app.routes {
        triggers.push(trigger(component, json!(pattern.raw())));
    }
    for id in app.components.keys() {
        let http = app.component_kind(id) == crate::trigger::ComponentKind::Http;
        if http && !app.routes.iter().any(|(_, component)| component == id) {
            triggers.push(trigger(id, json!({ "private": true })));
        }
    }
    triggers
}

fn push_unique(blobs: &mut Vec<Blob>, blob: Blob) {
    if !blobs.iter().any(|b| b.digest == blob.digest) {
        blobs.push(blob);
    }
}

/// A gzipped tar of `files` at `./path`, with fixed times, owners and modes.
fn archive(files: &[&PackedFile]) -> std::io::Result<Vec<u8>> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gzip);
    for file in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(file.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(
            &mut header,
            format!("./{}", file.path),
            file.bytes.as_slice(),
        )?;
    }
    let mut gzip = tar.into_inner()?;
    gzip.flush()?;
    gzip.finish()
}
