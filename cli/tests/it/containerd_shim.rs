//! `containerd-shim-spindle-v1` under real containerd 1.6 (from `scripts/testenv`): apps pushed
//! with `spindle push` to the real registry, fetched into containerd with `ctr content fetch`, and
//! run with `ctr run --runtime io.containerd.spindle.v1`, answering HTTP on loopback.
//!
//! containerd 1.6's own `ctr run` cannot run a Spin artifact (its client-side unpack rejects
//! non-tar layers), so containers are started with containerd 1.7's `ctr` (`SPINDLE_TEST_CTR`),
//! talking to the 1.6 daemon.

use std::{
    io::{Read as _, Write as _},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::support::{
    HttpResponse, binary, collect, core_modules, free_port, http, http_with_headers,
    otlp::{Collector, Value, hex},
    required_env, spindle, test_apps, unique,
};

const RUNTIME: &str = "io.containerd.spindle.v1";

/// Puts the workspace's shim on containerd's PATH, by rename: a shim of an earlier run may still
/// be executing.
fn install_shim() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let shims = PathBuf::from(required_env("SPINDLE_TEST_CONTAINERD_SHIMS"));
        let temp = shims.join(format!(
            ".containerd-shim-spindle-v1.{}",
            std::process::id()
        ));
        std::fs::copy(binary("containerd-shim-spindle-v1"), &temp).expect("shim copies");
        std::fs::rename(&temp, shims.join("containerd-shim-spindle-v1")).expect("shim installs");
    });
}

/// `ctr` of containerd 1.6 (`Ctr::V16`, the daemon's own) or 1.7 against the test containerd.
enum Ctr {
    V16,
    V17,
}

impl Ctr {
    fn command(&self) -> Command {
        let binary = match self {
            Ctr::V16 => "ctr".to_owned(),
            Ctr::V17 => required_env("SPINDLE_TEST_CTR"),
        };
        let mut command = Command::new(binary);
        command.args(["--address", &required_env("SPINDLE_TEST_CONTAINERD")]);
        command
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = self.command().args(args).output().expect("ctr runs");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// Pushes the app at `app` as a new tag; returns `REFERENCE@DIGEST`.
fn push(app: &Path) -> String {
    let reference = format!(
        "{}/spindle-test/{}:v1",
        required_env("SPINDLE_TEST_REGISTRY"),
        unique("app")
    );
    let out = spindle(&["push", app.to_str().unwrap(), &reference, "--insecure"]);
    assert_eq!(out.code, 0, "push: {}", out.stderr);
    let pushed = out.stdout.trim().to_owned();
    assert!(pushed.starts_with(&reference), "{pushed}");
    let (fetched, output) = Ctr::V16.run(&["content", "fetch", "--plain-http", &reference]);
    assert!(fetched, "ctr content fetch: {output}");
    reference
}

/// `wasm` with a custom section carrying `text` appended: the same component, other bytes.
fn with_custom_section(wasm: &[u8], text: &str) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"spindle-test";
    let mut content = Vec::new();
    leb128(name.len(), &mut content);
    content.extend_from_slice(name);
    content.extend_from_slice(text.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // a custom section
    leb128(content.len(), &mut out);
    out.extend(content);
    out
}

/// A one-component app of its own (a unique name, so a unique digest) around `wasm`.
fn single_component_app(wasm: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.wasm"), wasm).unwrap();
    std::fs::write(
        dir.path().join("spin.toml"),
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"{}\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"app\"\n\
             [component.app]\nsource = \"app.wasm\"\n",
            unique("single")
        ),
    )
    .unwrap();
    dir
}

/// One container starts at a time, until it serves or exits: runwasi 1.0.1 names the lease of
/// every precompile on a node alike, so two first starts at once make the later one lose its
/// Wasm layers (containerd's log: `lease "precompile-runwasi.io/precompiled/…": already
/// exists`). docs/containerd-shim.md has more on it.
static STARTING: Mutex<()> = Mutex::new(());

/// `ctr run` of an image in the foreground: the container's stdout and stderr are collected.
struct Container {
    id: String,
    address: String,
    child: Option<Child>,
    output: Arc<Mutex<String>>,
    starting: Option<std::sync::MutexGuard<'static, ()>>,
}

impl Container {
    fn start(image: &str, env: &[(&str, &str)]) -> Container {
        install_shim();
        let starting = STARTING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = unique("ctr");
        let address = format!("127.0.0.1:{}", free_port());
        let mut command = Ctr::V17.command();
        command.args(["run", "--rm", "--net-host", "--runtime", RUNTIME]);
        command.args(["--env", &format!("SPIN_HTTP_LISTEN_ADDR={address}")]);
        for (key, value) in env {
            command.args(["--env", &format!("{key}={value}")]);
        }
        // SpinKube's convention: the image has no entrypoint, so the command is `/`.
        command.args([image, &id, "/"]);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctr runs");
        let output = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), output.clone());
        collect(child.stderr.take().unwrap(), output.clone());
        Container {
            id,
            address,
            child: Some(child),
            output,
            starting: Some(starting),
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the app answers `path`; panics with the container's log if it exits first.
    fn wait_serving(&mut self, path: &str) -> HttpResponse {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(&self.address).is_ok() {
                self.starting = None;
                return http(&self.address, "GET", path, "");
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "the container exited ({status}) before serving:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the container did not serve within 30 s:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the container to exit on its own; returns its exit code and log.
    fn wait_exit(mut self) -> (i32, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.starting = None;
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the container did not exit:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        (status.code().unwrap_or(-1), self.output())
    }

    /// SIGTERM, as the kubelet stops a pod; returns the exit code and log.
    fn terminate(self) -> (i32, String) {
        let (killed, output) = Ctr::V16.run(&["task", "kill", &self.id]);
        assert!(killed, "ctr task kill: {output}");
        self.wait_exit()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Ctr::V16.run(&["task", "kill", "--signal", "SIGKILL", &self.id]);
            let _ = child.wait();
            let _ = Ctr::V16.run(&["container", "rm", &self.id]);
        }
    }
}

/// containerd still answers and has no task left for the containers it ran.
fn assert_containerd_healthy(ids: &[&str]) {
    let (ok, version) = Ctr::V16.run(&["version"]);
    assert!(ok, "containerd does not answer: {version}");
    let (ok, tasks) = Ctr::V16.run(&["task", "ls"]);
    assert!(ok, "{tasks}");
    for id in ids {
        assert!(!tasks.contains(id), "task {id} is left behind:\n{tasks}");
    }
}

#[test]
fn a_pushed_app_runs_under_containerd_and_drains_on_sigterm() {
    let image = push(test_apps());
    let mut container = Container::start(&image, &[("SPIN_VARIABLE_SECRET_TOKEN", "s3cret")]);
    let first = container.wait_serving("/variables/message");
    assert_eq!(
        (first.status, first.body.as_str()),
        (200, "Hello, world"),
        "{}",
        container.output()
    );
    let user = http(&container.address, "GET", "/users/42", "");
    assert!(
        user.body.contains("spin-path-match-user-id: 42"),
        "{user:?}"
    );
    assert_eq!(
        http(&container.address, "GET", "/kv/count", "").body,
        "count: 1"
    );
    assert_eq!(
        http(&container.address, "GET", "/kv/count", "").body,
        "count: 2"
    );

    // A request in flight when SIGTERM comes is answered before the container exits.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let (arrived, arrival) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = upstream.accept().unwrap();
        let _ = stream.read(&mut [0u8; 4096]);
        arrived.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow");
    });
    let address = container.address.clone();
    let in_flight = std::thread::spawn(move || {
        http(
            &address,
            "GET",
            &format!("/outbound?http://127.0.0.1:{port}/"),
            "",
        )
    });
    arrival
        .recv_timeout(Duration::from_secs(10))
        .expect("the guest calls the upstream");
    let id = container.id.clone();
    let (code, log) = container.terminate();
    assert_eq!(in_flight.join().unwrap().body, "status 200: slow");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("serving on http://"), "{log}");
    assert!(
        log.contains("stopped: in-flight requests and messages finished"),
        "{log}"
    );
    // Requests are logged on the container's own output, where `kubectl logs` reads them.
    assert!(log.contains("path=/variables/message status=200"), "{log}");
    assert_containerd_healthy(&[&id]);
}

/// The digest of `image`'s one component layer in the test containerd's store, and of the
/// compiled code runwasi keeps for it (its label `runwasi.io/precompiled/spindle/<key>=<digest>`).
/// Found by the image's repository: tests run in parallel, and other images are compiled meanwhile.
fn compiled_layer(image: &str) -> (String, String) {
    let socket = required_env("SPINDLE_TEST_CONTAINERD");
    let listed = Command::new("ctr")
        .args(["--address", &socket, "content", "ls"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let repository = image
        .split_once('/')
        .and_then(|(_, path)| path.rsplit_once(':'))
        .map(|(repository, _)| repository)
        .unwrap();
    listed
        .lines()
        .filter(|line| line.split([',', '\t', '=']).any(|part| part == repository))
        .find_map(|line| {
            let layer = line.split_whitespace().next()?;
            let blob = line
                .split([',', '\t'])
                .find_map(|label| label.strip_prefix("runwasi.io/precompiled/spindle/"))?
                .split_once("=sha256:")?
                .1;
            Some((layer.to_owned(), blob.to_owned()))
        })
        .unwrap_or_else(|| panic!("no compiled content for {image} in:\n{listed}"))
}

#[test]
fn components_are_compiled_once_and_reused_from_containerds_store() {
    // Compiled code is kept per component digest: a component no earlier test has run.
    let headers = std::fs::read(test_apps().join("target/wasm32-wasip2/release/headers.wasm"))
        .expect("the headers guest is built");
    let app = single_component_app(&with_custom_section(&headers, &unique("fresh")));
    let image = push(app.path());
    let log = PathBuf::from(required_env("SPINDLE_TEST_CONTAINERD_LOG"));
    let mut first = Container::start(&image, &[]);
    assert_eq!(first.wait_serving("/anything").status, 200);
    let (code, first_log) = first.terminate();
    assert_eq!(code, 0, "{first_log}");
    let (layer, _) = compiled_layer(&image);
    // The shim logs each compile with the layer's digest.
    let compiled = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .matches(&format!("precompiled component {layer}"))
            .count()
    };
    assert_eq!(compiled(), 1, "the first start compiles the component");
    assert!(first_log.contains("precompiled=1"), "{first_log}");

    let mut second = Container::start(&image, &[]);
    assert_eq!(second.wait_serving("/anything").status, 200);
    let (code, second_log) = second.terminate();
    assert_eq!(code, 0, "{second_log}");
    assert_eq!(compiled(), 1, "the second start compiles nothing");
    assert!(second_log.contains("precompiled=1"), "{second_log}");
}

#[test]
fn compiled_code_changed_in_containerds_store_is_refused() {
    // The example's `hello`, which no other test here starts: its compiled code is shared by
    // every image holding it (containerd stores it by digest), and this test changes it.
    let hello = std::fs::read(
        crate::support::example_apps().join("target/wasm32-wasip2/release/hello.wasm"),
    )
    .expect("the hello guest is built");
    let app = single_component_app(&with_custom_section(&hello, &unique("sealed")));
    let image = push(app.path());
    let mut first = Container::start(&image, &[]);
    assert_eq!(first.wait_serving("/").status, 200);
    let (code, first_log) = first.terminate();
    assert_eq!(code, 0, "{first_log}");
    assert!(first_log.contains("precompiled=1"), "{first_log}");

    // Native code in containerd's store that this node's shim did not seal (here: its bytes
    // changed in place, as anyone who can write the store could) is refused, never run.
    let socket = PathBuf::from(required_env("SPINDLE_TEST_CONTAINERD"));
    let (_, blob) = compiled_layer(&image);
    let path = socket
        .parent()
        .unwrap()
        .join("root/io.containerd.content.v1.content/blobs/sha256")
        .join(&blob);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let second = Container::start(&image, &[]);
    let (code, second_log) = second.wait_exit();
    // Put the byte back before asserting: later runs (and benches) use this compiled code.
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert_ne!(code, 0, "{second_log}");
    assert!(
        second_log.contains("is not code this node's spindle compiled"),
        "{second_log}"
    );
}

#[test]
fn a_missing_variable_fails_the_start_with_its_name() {
    let image = push(test_apps());
    let container = Container::start(&image, &[]);
    let id = container.id.clone();
    let (code, log) = container.wait_exit();
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("the app cannot start"), "{log}");
    assert!(log.contains("secret_token"), "{log}");
    assert_containerd_healthy(&[&id]);
}

#[test]
fn a_corrupt_component_fails_the_start_clearly() {
    let garbage = format!("\0asm\x0d\0\x01\0 this is not a component {}", unique("x"));
    let app = single_component_app(garbage.as_bytes());
    let image = push(app.path());
    let container = Container::start(&image, &[]);
    let id = container.id.clone();
    let (code, log) = container.wait_exit();
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("component `app`") && log.contains("is not a valid Wasm component"),
        "{log}"
    );
    assert_containerd_healthy(&[&id]);

    // containerd runs the next container as before.
    let image = push(test_apps());
    let mut healthy = Container::start(&image, &[("SPIN_VARIABLE_SECRET_TOKEN", "x")]);
    assert_eq!(healthy.wait_serving("/variables/message").status, 200);
}

#[test]
fn a_pushed_core_module_is_adapted_and_precompiled_by_the_shim() {
    // `spindle push` packs the module as it is (as `spin registry push` does); the shim makes it
    // a component when it compiles the layer.
    let wasm = std::fs::read(core_modules().join("headers.wasm")).unwrap();
    assert!(wasm.starts_with(b"\0asm\x01\0\0\0"), "not a core module");
    let app = single_component_app(&wasm);
    let image = push(app.path());
    let mut container = Container::start(&image, &[]);
    let echoed = container.wait_serving("/core?x=1");
    assert_eq!(echoed.status, 200, "{echoed:?}");
    assert!(
        echoed.body.contains("spin-path-info: /core"),
        "{}",
        echoed.body
    );
    let (code, log) = container.terminate();
    assert_eq!(code, 0, "{log}");
    // Compiled ahead of the start, as components are: runwasi labels the layer.
    let (layer, compiled) = compiled_layer(&image);
    assert_ne!(layer, compiled);
}

#[test]
fn a_trapping_guest_fails_one_request_and_the_container_serves_on() {
    let image = push(test_apps());
    let mut container = Container::start(&image, &[("SPIN_VARIABLE_SECRET_TOKEN", "x")]);
    container.wait_serving("/variables/message");
    let trapped = http(&container.address, "GET", "/misbehave/trap", "");
    assert_eq!(trapped.status, 500, "{trapped:?}");
    let after = http(&container.address, "GET", "/misbehave/fine", "");
    assert_eq!((after.status, after.body.as_str()), (200, "fine"));
    let (code, log) = container.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("this guest traps on purpose"), "{log}");
    assert!(log.contains("wasm trap"), "{log}");
}

#[test]
fn request_spans_go_to_the_otlp_endpoint_the_pod_names() {
    let collector = Collector::start();
    let image = push(test_apps());
    let mut container = Container::start(
        &image,
        &[
            ("SPIN_VARIABLE_SECRET_TOKEN", "x"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_SERVICE_NAME", "traced-app"),
            // Nothing is sent before SIGTERM: the spans arrive through the flush at the stop.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    );
    container.wait_serving("/variables/message");
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{caller_trace}-00f067aa0ba902b7-01");
    let answered = http_with_headers(
        &container.address,
        "GET",
        "/users/7",
        &[("traceparent", &traceparent)],
        "",
    );
    assert_eq!(answered.status, 200, "{}", container.output());
    assert_eq!(
        http(&container.address, "GET", "/misbehave/trap", "").status,
        500
    );
    let (code, log) = container.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("exporting traces to"), "{log}");

    let received = collector.wait_for(|r| hex(&r.span.trace_id) == caller_trace);
    let span = &received.span;
    assert_eq!(received.service, "traced-app");
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(span.name, "GET /users/:user_id");
    assert_eq!(span.kind, 2, "a server span");
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.clone())
    };
    assert_eq!(
        attribute("url.path"),
        Some(Value::StringValue("/users/7".into()))
    );
    assert_eq!(
        attribute("http.response.status_code"),
        Some(Value::IntValue(200))
    );
    assert_eq!(
        attribute("spin.component"),
        Some(Value::StringValue("headers".into()))
    );
    // The guest (which echoes its request headers) was handed this span as its parent.
    let forwarded = format!("traceparent: 00-{caller_trace}-{}-01", hex(&span.span_id));
    assert!(answered.body.contains(&forwarded), "{}", answered.body);
    // A trap is an error span.
    let trapped = collector.wait_for(|r| r.span.name == "GET /misbehave/...");
    assert_eq!(
        trapped.span.status.as_ref().map(|s| s.code),
        Some(2),
        "{trapped:?}"
    );
}

/// An OCI image archive of one uncompressed layer holding `files` (name, bytes), named `name`.
fn image_archive(files: &[(&str, &[u8])], name: &str, dir: &Path) -> PathBuf {
    use sha2::Digest as _;
    let root = dir.join("rootfs");
    let blobs = dir.join("layout/blobs/sha256");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&blobs).unwrap();
    for (file, bytes) in files {
        std::fs::write(root.join(file), bytes).unwrap();
    }
    let layer = dir.join("layer.tar");
    let status = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&layer)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let blob = |bytes: &[u8]| {
        let digest = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::write(blobs.join(&digest), bytes).unwrap();
        (format!("sha256:{digest}"), bytes.len())
    };
    let (layer, layer_size) = blob(&std::fs::read(&layer).unwrap());
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    });
    let (config, config_size) = blob(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
    });
    let (manifest, manifest_size) = blob(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest, "size": manifest_size,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name},
        }],
    });
    std::fs::write(dir.join("layout/index.json"), index.to_string()).unwrap();
    std::fs::write(
        dir.join("layout/oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.join("layout"))
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .unwrap();
    assert!(status.success());
    archive
}

#[test]
fn an_image_with_a_spin_toml_among_its_files_runs_too() {
    // SpinKube's older image style: an ordinary image whose files are the app.
    let headers = std::fs::read(test_apps().join("target/wasm32-wasip2/release/headers.wasm"))
        .expect("the headers guest is built");
    let manifest = "spin_manifest_version = 2\n[application]\nname = \"files-app\"\n\
                    [[trigger.http]]\nroute = \"/...\"\ncomponent = \"app\"\n\
                    [component.app]\nsource = \"app.wasm\"\n";
    let dir = tempfile::tempdir().unwrap();
    let name = format!("spindle.test/{}:v1", unique("files-app"));
    let archive = image_archive(
        &[("spin.toml", manifest.as_bytes()), ("app.wasm", &headers)],
        &name,
        dir.path(),
    );
    let (imported, output) = Ctr::V16.run(&["image", "import", archive.to_str().unwrap()]);
    assert!(imported, "ctr image import: {output}");
    let mut container = Container::start(&name, &[]);
    let answer = container.wait_serving("/users/7");
    assert_eq!(answer.status, 200, "{}", container.output());
    assert!(answer.body.contains("spin-full-url"), "{answer:?}");
    let (code, log) = container.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("precompiled=0"),
        "read from the image's files: {log}"
    );
}

#[test]
fn a_redis_triggered_app_handles_messages_under_containerd_and_says_when_it_is_ready() {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let mqtt = required_env("SPINDLE_TEST_MQTT");
    let image = push(&test_apps().join("triggers.toml"));
    let channel = unique("channel");
    let mut container = Container::start(
        &image,
        &[
            ("SPIN_VARIABLE_REDIS_HOST", redis.as_str()),
            ("SPIN_VARIABLE_MQTT_HOST", mqtt.as_str()),
            ("SPIN_VARIABLE_CHANNEL", channel.as_str()),
        ],
    );
    container.wait_serving("/.well-known/spin/info");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(&container.address, "GET", "/.well-known/spin/health", "").status != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready:\n{}",
            container.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (host, port) = redis.rsplit_once(':').unwrap();
    let published = Command::new("redis-cli")
        .args([
            "-h",
            host,
            "-p",
            port,
            "PUBLISH",
            &channel,
            "from-containerd",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&published.stdout).trim(), "1");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ledger = http(&container.address, "GET", "/ledger", "");
        if ledger.body.contains("redis:from-containerd=1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ledger:?}\n{}",
            container.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, log) = container.terminate();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_command_app_is_a_container_that_exits_with_the_commands_status() {
    let ok = Container::start(&push(&test_apps().join("command.toml")), &[]);
    let (code, log) = ok.wait_exit();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("command ran with [\"command\"]"), "{log}");
    let failing = Container::start(&push(&test_apps().join("command-fails.toml")), &[]);
    let (code, log) = failing.wait_exit();
    assert_eq!(code, 1, "{log}");
}
