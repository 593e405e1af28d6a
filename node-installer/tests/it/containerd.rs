//! The installer against a real containerd (Debian's 1.6): it patches the config, restarts
//! containerd only when something changed, and rolls back a config containerd refuses.
//!
//! The test runs its own containerd (own root, state and socket) so that it can restart it: the
//! installer is given a restart command that stops that process by PID and starts it again.
//! With the real shim, a Spin artifact from the test registry runs on what the installer put in
//! place, and keeps serving while a new shim version is installed.

#[path = "../../../cli/tests/it/support/workspace.rs"]
mod workspace;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = Node { dir };
        let config = format!(
            "# a node's containerd, with the admin's comment\nversion = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\n[grpc]\n  address = \"{socket}\"\n\n[ttrpc]\n  address = \"{socket}.ttrpc\"\n",
            root = node.path("root").display(),
            state = node.path("state").display(),
            socket = node.socket().display(),
        );
        std::fs::create_dir_all(node.config().parent().unwrap()).unwrap();
        std::fs::write(node.config(), config).unwrap();
        std::fs::write(
            node.path("restart.sh"),
            format!(
                "#!/bin/sh\n# Stops the test's containerd by PID and starts it again with the config as it is now;\n# a config with the option SimulateCrash stands for one this containerd cannot start with.\nif [ -f {pid} ]; then\n  kill $(cat {pid}) 2>/dev/null\n  while kill -0 $(cat {pid}) 2>/dev/null; do sleep 0.05; done\nfi\ngrep -q SimulateCrash {config} && exit 1\nPATH={bin}:$PATH setsid containerd --config {config} >>{log} 2>&1 < /dev/null &\necho $! > {pid}\n",
                pid = node.path("containerd.pid").display(),
                config = node.config().display(),
                log = node.path("containerd.log").display(),
                bin = node.shim_dir().display(),
            ),
        )
        .unwrap();
        std::fs::write(node.path("shim"), b"#!/bin/sh\necho spindle shim\n").unwrap();
        node
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn host(&self) -> PathBuf {
        self.path("host")
    }

    /// Where the installer puts the shim: containerd's PATH has it first, so `ctr run --runtime
    /// io.containerd.spindle.v1` finds it (CRI uses the config's `runtime_path`).
    fn shim_dir(&self) -> PathBuf {
        self.host().join("opt/spindle/bin")
    }

    fn config(&self) -> PathBuf {
        self.host().join("etc/containerd/config.toml")
    }

    fn socket(&self) -> PathBuf {
        self.path("containerd.sock")
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(self.path("containerd.pid"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn answers(&self) -> bool {
        Command::new("ctr")
            .args(["--address", self.socket().to_str().unwrap(), "version"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn start(&self) {
        assert!(
            Command::new("sh")
                .arg(self.path("restart.sh"))
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("containerd.log")).unwrap_or_default()
    }

    /// Runs the installer; its exit status and JSON report (or stderr).
    fn installer(&self, args: &[&str]) -> (bool, Value, String) {
        let out = self.installer_command(args).output().unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.success(),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The installer for this node, with `args` first.
    fn installer_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spindle-node-installer"));
        command
            .args(args)
            .args([
                "--host-root",
                self.host().to_str().unwrap(),
                "--distro",
                "containerd",
            ])
            .args([
                "--restart-command",
                &format!("sh {}", self.path("restart.sh").display()),
            ])
            .args(["--socket", self.socket().to_str().unwrap()]);
        if !args.contains(&"--timeout") {
            command.args(["--timeout", "10"]);
        }
        command
    }

    fn mode(&self) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(self.config())
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn install(&self, extra: &[&str]) -> (bool, Value, String) {
        let sha = sha256(&self.path("shim"));
        let shim = self.path("shim");
        let mut args = vec![
            "install",
            "--shim-file",
            shim.to_str().unwrap(),
            "--shim-sha256",
            &sha,
        ];
        args.extend_from_slice(extra);
        self.installer(&args)
    }

    /// The config containerd itself reads from the file: its own parser, its own defaults.
    fn dump(&self) -> String {
        let out = Command::new("containerd")
            .args([
                "--config",
                self.config().to_str().unwrap(),
                "config",
                "dump",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.path("containerd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        // Shims outlive containerd; those of this node's socket go too (a failed test leaves
        // containers running), found by their command line and stopped by PID.
        let address = format!("-address\0{}\0", self.socket().display());
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&address) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

fn sha256(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn installs_restarts_only_on_change_rolls_back_and_uninstalls() {
    let node = Node::new();
    node.start();
    let first_pid = node.pid();

    let (ok, report, stderr) = node.install(&[]);
    assert!(ok, "{stderr}");
    assert_eq!(report["configChanged"], true);
    assert_eq!(report["restarted"], true);
    assert_ne!(node.pid(), first_pid, "containerd was restarted");
    assert!(node.answers());
    let dump = node.dump();
    assert!(
        dump.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.spindle]"),
        "{dump}"
    );
    assert!(
        dump.contains("runtime_type = \"io.containerd.spindle.v1\""),
        "{dump}"
    );
    assert!(
        dump.contains("/opt/spindle/bin/containerd-shim-spindle-v1"),
        "{dump}"
    );
    let config = std::fs::read_to_string(node.config()).unwrap();
    assert!(config.starts_with("# a node's containerd, with the admin's comment\n"));
    let shim = node
        .host()
        .join("opt/spindle/bin/containerd-shim-spindle-v1");
    assert_eq!(
        std::fs::read(&shim).unwrap(),
        std::fs::read(node.path("shim")).unwrap()
    );

    // Again: nothing changes, nothing restarts.
    let pid = node.pid();
    let (ok, report, stderr) = node.install(&[]);
    assert!(ok, "{stderr}");
    assert_eq!(report["changed"], false);
    assert_eq!(report["restarted"], false);
    assert_eq!(node.pid(), pid);

    // containerd does not come back with the new config (containerd 1.6 parses every config the
    // installer can write, so the restart script stands in for a containerd that will not start:
    // it stops containerd and refuses to start it while the config has this option). The
    // installer puts the previous config back and containerd runs again.
    let before = std::fs::read_to_string(node.config()).unwrap();
    let (ok, _, stderr) = node.install(&["--options", r#"{"SimulateCrash": true}"#]);
    assert!(!ok, "the install must fail: {stderr}\n{}", node.log());
    assert!(stderr.contains("the previous config is back"), "{stderr}");
    assert_eq!(std::fs::read_to_string(node.config()).unwrap(), before);
    assert!(node.answers(), "containerd runs with the old config");

    let (ok, report, stderr) = node.installer(&["uninstall"]);
    assert!(ok, "{stderr}");
    assert_eq!(report["configChanged"], true);
    assert!(!node.dump().contains("runtimes.spindle"));
    assert!(!shim.exists());
    assert!(node.answers());
}

/// Reads an environment variable naming a test server.
fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test needs the test environment (scripts/test)")
    })
}

/// Serves `bytes` at any path over HTTP on loopback, for `--shim-url`; returns the URL.
fn serve_once_per_request(bytes: Vec<u8>) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/containerd-shim-spindle-v1",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.read(&mut [0u8; 4096]);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(&bytes);
        }
    });
    url
}

/// One GET: the status and whether the body holds "Hello, world", or what went wrong.
fn get(address: &str, path: &str) -> Result<(u16, bool), String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let status = raw
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not a response: {raw:?}"))?;
    Ok((status, raw.contains("Hello, world")))
}

#[test]
fn a_downloaded_shim_runs_a_spin_artifact_and_an_upgrade_does_not_interrupt_it() {
    let (registry, ctr17) = (
        required_env("SPINDLE_TEST_REGISTRY"),
        required_env("SPINDLE_TEST_CTR"),
    );
    let shim = std::fs::read(workspace::binary("containerd-shim-spindle-v1")).unwrap();
    let node = Node::new();
    node.start();
    let socket = node.socket();
    let ctr = |binary: &str, args: &[&str]| {
        let out = Command::new(binary)
            .args(["--address", socket.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // A download that does not match its sha256 is refused before anything changes.
    let url = serve_once_per_request(shim.clone());
    let pid = node.pid();
    let (ok, _, stderr) = node.installer(&[
        "install",
        "--shim-url",
        &url,
        "--shim-sha256",
        &"0".repeat(64),
    ]);
    assert!(!ok && stderr.contains("refusing to install it"), "{stderr}");
    assert!(!node.shim_dir().join("containerd-shim-spindle-v1").exists());
    assert_eq!(node.pid(), pid, "nothing restarted");
    let leftovers: Vec<_> = std::fs::read_dir(node.shim_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "the download is removed: {leftovers:?}"
    );

    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&shim))
    };
    let (ok, report, stderr) =
        node.installer(&["install", "--shim-url", &url, "--shim-sha256", &sha]);
    assert!(ok, "{stderr}");
    assert_eq!(report["restarted"], true);
    assert!(
        node.dump()
            .contains("runtime_type = \"io.containerd.spindle.v1\"")
    );

    // A Spin artifact, pushed to the test registry and fetched into this containerd, runs on the
    // installed shim (detached with --null-io: nobody would read its log FIFOs, and a full one
    // blocks the writer).
    let image = format!(
        "{registry}/spindle-test/node-installer-{}:v1",
        std::process::id()
    );
    let apps = workspace::test_apps();
    let push = Command::new(workspace::binary("spindle"))
        .args(["push", apps.to_str().unwrap(), &image, "--insecure"])
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    ctr("ctr", &["content", "fetch", "--plain-http", &image]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    // Starts the artifact as container `id` on `runtime` (a runtime type, or a shim's path) and
    // waits until it answers.
    let serve = |id: &str, runtime: &str| {
        ctr(
            &ctr17,
            &[
                "run",
                "--detach",
                "--null-io",
                "--net-host",
                "--runtime",
                runtime,
                "--env",
                &format!("SPIN_HTTP_LISTEN_ADDR={address}"),
                "--env",
                "SPIN_VARIABLE_SECRET_TOKEN=t",
                &image,
                id,
                "/",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&address, "/variables/message").is_err() {
            assert!(
                Instant::now() < deadline,
                "container {id} does not answer: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let id = format!("upgrade-{}", std::process::id());
    serve(&id, "io.containerd.spindle.v1");
    assert_eq!(get(&address, "/variables/message"), Ok((200, true)));

    // A new shim version (other bytes: trailing data an ELF loader ignores) is installed while
    // requests keep coming: the pointer moves, containerd is not restarted, no request fails.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, address) = (stop.clone(), address.clone());
        std::thread::spawn(move || {
            let (mut served, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match get(&address, "/variables/message") {
                    Ok((200, _)) => served += 1,
                    other => failed.push(other),
                }
            }
            (served, failed)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut upgraded = shim.clone();
    upgraded.extend_from_slice(b"spindle shim v2");
    let upgraded_file = node.path("shim-v2");
    std::fs::write(&upgraded_file, &upgraded).unwrap();
    let pid = node.pid();
    let (ok, report, stderr) = node.installer(&[
        "install",
        "--shim-file",
        upgraded_file.to_str().unwrap(),
        "--shim-sha256",
        &sha256(&upgraded_file),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        (report["shimChanged"].clone(), report["restarted"].clone()),
        (Value::Bool(true), Value::Bool(false))
    );
    assert_eq!(node.pid(), pid);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (served, failed) = load.join().unwrap();
    assert!(
        failed.is_empty(),
        "requests failed during the upgrade: {failed:?}"
    );
    assert!(served > 10, "only {served} requests were served");
    let target = std::fs::read_link(node.shim_dir().join("containerd-shim-spindle-v1")).unwrap();
    assert!(
        target
            .to_string_lossy()
            .ends_with(&sha256(&upgraded_file)[..16]),
        "{target:?}"
    );

    // The next container starts on the new shim.
    let stop_container = |id: &str, signal: &str| {
        ctr("ctr", &["task", "kill", "--signal", signal, id]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("ctr")
            .args(["--address", socket.to_str().unwrap(), "task", "delete", id])
            .output()
            .unwrap()
            .status
            .code()
            != Some(0)
        {
            assert!(Instant::now() < deadline, "task {id} does not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        ctr("ctr", &["container", "rm", id]);
    };
    stop_container(&id, "SIGTERM");
    let next = format!("{id}-next");
    serve(&next, "io.containerd.spindle.v1");
    assert_eq!(get(&address, "/variables/message"), Ok((200, true)));
    stop_container(&next, "SIGTERM");

    // A second runtime on the node, with the first shim's bytes: its own link and config entry.
    // Both serve apps; taking the first off leaves the second's link, file and entry serving.
    let first_file = node.path("shim-v1");
    std::fs::write(&first_file, &shim).unwrap();
    let (ok, report, stderr) = node.installer(&[
        "install",
        "--handler",
        "spin-b",
        "--shim-file",
        first_file.to_str().unwrap(),
        "--shim-sha256",
        &sha,
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(report["configChanged"], true);
    let link = |handler: &str| {
        node.shim_dir()
            .join(format!("containerd-shim-spindle-v1@{handler}"))
    };
    for (handler, container) in [("spindle", "a"), ("spin-b", "b")] {
        let container = format!("{id}-{container}");
        serve(&container, link(handler).to_str().unwrap());
        assert_eq!(get(&address, "/variables/message"), Ok((200, true)));
        stop_container(&container, "SIGTERM");
    }
    let (ok, _, stderr) = node.installer(&["uninstall"]);
    assert!(ok, "{stderr}");
    assert!(!link("spindle").exists());
    let dump = node.dump();
    assert!(!dump.contains("runtimes.spindle]"), "{dump}");
    assert!(dump.contains("runtimes.spin-b]"), "{dump}");
    let container = format!("{id}-b-after");
    serve(&container, link("spin-b").to_str().unwrap());
    assert_eq!(get(&address, "/variables/message"), Ok((200, true)));
    stop_container(&container, "SIGTERM");
}

#[test]
fn the_config_keeps_its_mode_and_a_killed_install_is_undone_by_the_next_installer() {
    use std::os::unix::fs::PermissionsExt as _;
    let node = Node::new();
    // A config that holds registry credentials is readable by root only.
    std::fs::set_permissions(node.config(), std::fs::Permissions::from_mode(0o600)).unwrap();
    node.start();
    let original = std::fs::read_to_string(node.config()).unwrap();
    let marker = node
        .host()
        .join("etc/containerd/config.toml.spindle-unverified");

    // An install whose check never succeeds is killed (SIGKILL) after it patched the config and
    // restarted containerd, before it saw containerd answer.
    let before = node.pid();
    let sha = sha256(&node.path("shim"));
    let mut killed = node
        .installer_command(&[
            "install",
            "--shim-file",
            node.path("shim").to_str().unwrap(),
            "--shim-sha256",
            &sha,
            "--verify-command",
            "false",
            "--timeout",
            "60",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Patched, and containerd restarted with it (its restart done, so that no restart script of
    // the killed installer races the next one's): the installer is in its check.
    while !(marker.exists()
        && std::fs::read_to_string(node.config()).is_ok_and(|c| c.contains("runtimes.spindle"))
        && std::fs::read_to_string(node.path("containerd.pid")).is_ok_and(|p| p.trim() != before)
        && node.answers())
    {
        assert!(
            Instant::now() < deadline,
            "the installer never patched the config"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(marker.exists());
    assert_eq!(node.mode(), 0o600, "the patched config kept its mode");

    // The next installer on the node, whatever it is for, first puts the config back.
    let (ok, report, stderr) = node.installer(&["uninstall", "--handler", "other"]);
    assert!(ok, "{stderr}");
    assert_eq!(report["recovered"], true);
    assert_eq!(std::fs::read_to_string(node.config()).unwrap(), original);
    assert!(!marker.exists());
    assert_eq!(node.mode(), 0o600);
    assert!(node.answers(), "containerd runs with the restored config");

    // A completed install leaves no marker, and the mode as it was.
    let (ok, report, stderr) = node.install(&[]);
    assert!(ok, "{stderr}");
    assert_eq!(report["recovered"], false);
    assert!(!marker.exists());
    assert_eq!(node.mode(), 0o600);
}
