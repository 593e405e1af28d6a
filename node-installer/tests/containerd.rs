//! The installer against a real containerd (Debian's 1.6): it patches the config, restarts
//! containerd only when something changed, and rolls back a config containerd refuses.
//!
//! The test runs its own containerd (own root, state and socket) so that it can restart it: the
//! installer is given a restart command that stops that process by PID and starts it again.

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
                "#!/bin/sh\n# Stops the test's containerd by PID and starts it again with the config as it is now;\n# a config with the option SimulateCrash stands for one this containerd cannot start with.\nif [ -f {pid} ]; then\n  kill $(cat {pid}) 2>/dev/null\n  while kill -0 $(cat {pid}) 2>/dev/null; do sleep 0.05; done\nfi\ngrep -q SimulateCrash {config} && exit 1\nsetsid containerd --config {config} >>{log} 2>&1 < /dev/null &\necho $! > {pid}\n",
                pid = node.path("containerd.pid").display(),
                config = node.config().display(),
                log = node.path("containerd.log").display(),
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
        let out = Command::new(env!("CARGO_BIN_EXE_spindle-node-installer"))
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
            .args([
                "--socket",
                self.socket().to_str().unwrap(),
                "--timeout",
                "10",
            ])
            .output()
            .unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.success(),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
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
