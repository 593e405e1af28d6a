//! `spindle up` on a Git copy of the example repository, for the `up` test and benchmark.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tempfile::TempDir;

use super::{example_apps, git, http};

/// A Git repository holding a copy of the example repository with its apps built (the Wasm files
/// untracked, where the manifests point), one commit on `main`.
pub fn example_repository() -> TempDir {
    let built = example_apps();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    copy_tree(&built.join(".."), repo);
    let wasm = repo.join("apps/target/wasm32-wasip2/release");
    std::fs::create_dir_all(&wasm).unwrap();
    for app in ["hello", "counter", "greeter"] {
        std::fs::copy(
            built.join(format!("target/wasm32-wasip2/release/{app}.wasm")),
            wasm.join(format!("{app}.wasm")),
        )
        .unwrap();
    }
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", "example"]);
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".spindle" || name == "golden" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            if name == "target" {
                continue;
            }
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `spindle up` with its output collected line by line.
pub struct Up {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Up {
    pub fn start(repo: &Path) -> Up {
        let mut child = super::spindle_command()
            .args([
                "up",
                repo.to_str().unwrap(),
                "--env",
                "production",
                "--listen",
                "127.0.0.1:0",
            ])
            .env("SPINDLE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Up { child, lines }
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line containing `text`.
    pub fn wait_for(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "no `{text}` in:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address an app was started on.
    pub fn address(&self, app: &str) -> String {
        let line = self.wait_for(&format!("started  {app} "));
        line.split("http://")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `address` until the body contains `text`; how long it took.
pub fn live_within(address: &str, text: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if http(address, "GET", "/", "").body.contains(text) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "`{text}` not served by {address} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
