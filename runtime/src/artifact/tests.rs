use std::path::Path;

use super::*;
use crate::App;

/// An app in `dir`: two components (one private), variables, files small and large, a base.
fn sample(dir: &Path, large_files: usize) -> App {
    std::fs::write(dir.join("api.wasm"), b"\0asm api component").unwrap();
    std::fs::write(dir.join("worker.wasm"), b"\0asm worker component").unwrap();
    std::fs::create_dir_all(dir.join("static/deep")).unwrap();
    std::fs::write(dir.join("static/small.txt"), "tiny").unwrap();
    std::fs::write(dir.join("static/deep/large.txt"), "x".repeat(1000)).unwrap();
    for n in 0..large_files {
        std::fs::write(
            dir.join(format!("static/file-{n}.txt")),
            format!("{n:0>200}"),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("spin.toml"),
        r#"spin_manifest_version = 2
[application]
name = "shop"
[application.trigger.http]
base = "/api"
[variables]
token = { required = true, secret = true }
greeting = { default = "hi" }
[[trigger.http]]
route = "/items/..."
component = "api"
[[trigger.http]]
route = "/health"
component = "api"
[[trigger.http]]
route = { private = true }
component = "worker"
[component.api]
source = "api.wasm"
files = [{ source = "static", destination = "/assets" }]
allowed_outbound_hosts = ["https://{{ greeting }}.example.com", "http://worker.spin.internal"]
key_value_stores = ["default"]
sqlite_databases = ["default"]
environment = { MODE = "prod" }
[component.api.variables]
message = "{{ greeting }}!"
[component.worker]
source = "worker.wasm"
"#,
    )
    .unwrap();
    App::load(dir).unwrap()
}

fn layer(blob: &Blob) -> Layer<'_> {
    Layer {
        media_type: &blob.media_type,
        digest: &blob.digest,
        bytes: &blob.bytes,
        precompiled: false,
    }
}

fn media_types(artifact: &Artifact) -> Vec<&str> {
    artifact
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect()
}

fn layers(artifact: &Artifact) -> Vec<Layer<'_>> {
    artifact.layers.iter().map(layer).collect()
}

/// A component's files as the guest sees them: path and content.
fn guest_files(app: &App, id: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = app.components[id]
        .files
        .iter()
        .map(|(host, guest)| (guest.clone(), std::fs::read_to_string(host).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn an_app_survives_packing_and_unpacking() {
    let dir = tempfile::tempdir().unwrap();
    let app = sample(dir.path(), 0);
    let artifact = pack(&app).unwrap();
    let out = tempfile::tempdir().unwrap();
    let back = unpack(&layers(&artifact), out.path()).unwrap();

    assert_eq!(back.name, "shop");
    assert_eq!(back.base, "/api");
    let routes = |app: &App| -> Vec<(String, String)> {
        app.routes
            .iter()
            .map(|(pattern, id)| (pattern.to_string(), id.clone()))
            .collect()
    };
    assert_eq!(routes(&back), routes(&app));
    assert_eq!(
        back.components.keys().collect::<Vec<_>>(),
        ["api", "worker"]
    );
    for (id, original) in &app.components {
        let unpacked = &back.components[id];
        assert_eq!(
            std::fs::read(&unpacked.source).unwrap(),
            std::fs::read(&original.source).unwrap()
        );
        assert!(!unpacked.precompiled);
        assert_eq!(unpacked.environment, original.environment);
        assert_eq!(
            unpacked.allowed_outbound_hosts,
            original.allowed_outbound_hosts
        );
        assert_eq!(unpacked.key_value_stores, original.key_value_stores);
        assert_eq!(unpacked.sqlite_databases, original.sqlite_databases);
        assert_eq!(unpacked.variables, original.variables);
        assert_eq!(guest_files(&back, id), guest_files(&app, id));
    }
    assert_eq!(guest_files(&back, "api").len(), 2);
    assert!(back.variables["token"].required && back.variables["token"].secret);
    assert_eq!(back.variables["greeting"].default.as_deref(), Some("hi"));
    assert!(!back.variables["greeting"].required);
}

#[test]
fn the_layout_is_spins() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = pack(&sample(dir.path(), 0)).unwrap();
    let types = media_types(&artifact);
    // Two components, one large file (the small one is inline), the locked app last.
    assert_eq!(
        types,
        [
            WASM_MEDIA_TYPE,
            WASM_MEDIA_TYPE,
            DATA_MEDIA_TYPE,
            LOCKED_APP_MEDIA_TYPE
        ]
    );
    let config: serde_json::Value = serde_json::from_slice(&artifact.config.bytes).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(
        config["config"]["Labels"][pack::LOCKED_APP_DIGEST_LABEL],
        artifact.layers.last().unwrap().digest.as_str()
    );
    let manifest: serde_json::Value = serde_json::from_slice(&artifact.manifest).unwrap();
    assert_eq!(
        manifest["config"]["digest"],
        artifact.config.digest.as_str()
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 4);

    let locked: serde_json::Value =
        serde_json::from_slice(&artifact.layers.last().unwrap().bytes).unwrap();
    let api = &locked["components"][0];
    assert_eq!(api["id"], "api");
    assert_eq!(api["source"]["digest"], artifact.layers[0].digest.as_str());
    assert_eq!(api["metadata"]["databases"][0], "default");
    let small = api["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "assets/small.txt")
        .unwrap();
    assert_eq!(small["inline"], "dGlueQ");
    assert_eq!(
        locked["triggers"][2]["trigger_config"]["route"]["private"],
        true
    );
}

#[test]
fn the_same_app_gives_the_same_digest_wherever_it_is_packed() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = pack(&sample(a.path(), 3)).unwrap();
    let again = pack(&sample(a.path(), 3)).unwrap();
    let elsewhere = pack(&sample(b.path(), 3)).unwrap();
    assert_eq!(first.manifest, again.manifest);
    assert_eq!(first.digest(), elsewhere.digest());
    std::fs::write(a.path().join("static/small.txt"), "changed").unwrap();
    assert_ne!(
        pack(&App::load(a.path()).unwrap()).unwrap().digest(),
        first.digest()
    );
}

#[test]
fn many_files_go_into_an_archive_layer_per_component() {
    let dir = tempfile::tempdir().unwrap();
    let app = sample(dir.path(), 600);
    let artifact = pack(&app).unwrap();
    let types = media_types(&artifact);
    assert_eq!(
        types,
        [
            WASM_MEDIA_TYPE,
            WASM_MEDIA_TYPE,
            ARCHIVE_MEDIA_TYPE,
            LOCKED_APP_MEDIA_TYPE
        ]
    );
    let out = tempfile::tempdir().unwrap();
    let back = unpack(&layers(&artifact), out.path()).unwrap();
    assert_eq!(guest_files(&back, "api"), guest_files(&app, "api"));
    assert_eq!(guest_files(&back, "api").len(), 602);
}

#[test]
fn a_layer_whose_content_does_not_match_its_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut artifact = pack(&sample(dir.path(), 0)).unwrap();
    artifact.layers[0].bytes.push(0);
    let out = tempfile::tempdir().unwrap();
    let err = unpack(&layers(&artifact), out.path()).unwrap_err();
    assert!(
        matches!(&err, ArtifactError::Corrupt { digest, .. } if *digest == artifact.layers[0].digest),
        "{err}"
    );
}

#[test]
fn content_the_locked_app_names_must_be_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut artifact = pack(&sample(dir.path(), 0)).unwrap();
    artifact.layers.remove(2); // the large file
    let out = tempfile::tempdir().unwrap();
    let err = unpack(&layers(&artifact), out.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("(file `assets/deep/large.txt` of component `api`)"),
        "{err}"
    );
}

#[test]
fn a_lone_wasm_layer_is_a_one_component_app() {
    let wasm = Blob::new(PLAIN_WASM_MEDIA_TYPE, b"\0asm plain".to_vec());
    let out = tempfile::tempdir().unwrap();
    let app = unpack(&[layer(&wasm)], out.path()).unwrap();
    assert_eq!(app.routes.len(), 1);
    assert_eq!(app.routes[0].0.to_string(), "/...");
    assert_eq!(
        std::fs::read(&app.components[&app.routes[0].1].source).unwrap(),
        wasm.bytes
    );
}

#[test]
fn what_spindle_cannot_serve_is_named() {
    let refuse = |locked: serde_json::Value| {
        let blob = Blob::new(LOCKED_APP_MEDIA_TYPE, serde_json::to_vec(&locked).unwrap());
        let out = tempfile::tempdir().unwrap();
        unpack(&[layer(&blob)], out.path()).unwrap_err().to_string()
    };
    let sqs = refuse(serde_json::json!({
        "triggers": [{"id": "t", "trigger_type": "sqs", "trigger_config": {}}],
        "components": [],
    }));
    assert!(sqs.contains("trigger type `sqs` is not supported"), "{sqs}");
    let redis = refuse(serde_json::json!({
        "triggers": [{"id": "t", "trigger_type": "redis", "trigger_config": {"channel": "c"}}],
        "components": [],
    }));
    assert!(
        redis.contains("trigger `t` has no Redis address"),
        "{redis}"
    );
    let stranger = refuse(serde_json::json!({
        "triggers": [{"id": "t", "trigger_type": "command", "trigger_config": {"component": "x"}}],
        "components": [],
    }));
    assert!(
        stranger.contains("names component `x`, which the app does not have"),
        "{stranger}"
    );
    let future = refuse(serde_json::json!({
        "spin_lock_version": 1, "must_understand": ["time_travel"],
        "triggers": [], "components": [],
    }));
    assert!(future.contains("`time_travel`"), "{future}");
    let unfetched = refuse(serde_json::json!({
        "triggers": [],
        "components": [{"id": "a", "source": {"content_type": "application/wasm", "source": "file:///app.wasm"}}],
    }));
    assert!(unfetched.contains("file:///app.wasm"), "{unfetched}");
}
