//! `spindle up` on a Git copy of the example repository: every app answers, and commits switch
//! exactly the apps they change, without failing a request.

mod support;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use support::{example_apps, git, http};

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
struct Up {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Up {
    fn start(repo: &Path) -> Up {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spindle-cache");
        let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args([
                "up",
                repo.to_str().unwrap(),
                "--env",
                "production",
                "--listen",
                "127.0.0.1:0",
            ])
            .env("SPINDLE_CACHE", cache)
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

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line containing `text`.
    fn wait_for(&self, text: &str) -> String {
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
    fn address(&self, app: &str) -> String {
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
fn live_within(address: &str, text: &str, limit: Duration) -> Duration {
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

#[test]
fn commits_switch_only_what_they_change_without_failing_a_request() {
    let built = example_apps();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    copy_tree(&built.join(".."), repo);
    // The Wasm files are build output: bring them along untracked, where the manifests point.
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

    let up = Up::start(repo);
    let (hello, greeter, counter) = (
        up.address("hello"),
        up.address("greeter"),
        up.address("counter"),
    );
    up.wait_for("ready: 3 app(s)");
    assert!(
        http(&hello, "GET", "/x", "")
            .body
            .starts_with("Hello from spindle!")
    );
    assert!(http(&greeter, "GET", "/", "").body.starts_with("Good day!"));
    assert_eq!(http(&counter, "GET", "/", "").status, 200);

    // Requests run all along; none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = [hello.clone(), greeter.clone()]
        .into_iter()
        .map(|address| {
            let (stop, failures, served) = (stop.clone(), failures.clone(), served.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok =
                        std::panic::catch_unwind(|| http(&address, "GET", "/", "").status == 200)
                            .unwrap_or(false);
                    if ok {
                        served.fetch_add(1, Ordering::Relaxed)
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed)
                    };
                }
            })
        })
        .collect();

    let production = repo.join("environments/production.ncl");
    let original = std::fs::read_to_string(&production).unwrap();

    // A new variable value: live within 2 s, and only greeter switches.
    std::fs::write(&production, original.replace("Good day", "Good evening")).unwrap();
    git(repo, &["commit", "-qam", "evening"]);
    let took = live_within(&greeter, "Good evening!", Duration::from_secs(2));
    eprintln!("variable change live after {took:?}");
    up.wait_for("switched greeter");
    assert!(!up.output().contains("switched hello"), "{}", up.output());
    assert!(
        up.output().contains("-          value: Good day"),
        "the diff is printed:\n{}",
        up.output()
    );

    // A new app.
    let with_new = original
        .replace("Good day", "Good evening")
        .replace("counter = { namespace = \"web\", replicas = 2 },", "counter = { namespace = \"web\", replicas = 2 },\n    hello-again = { image = \"registry.example.com/spindle/hello:0.1.0\", source = \"apps/hello/spin.toml\" },");
    std::fs::write(&production, &with_new).unwrap();
    git(repo, &["commit", "-qam", "another app"]);
    let again = up.address("hello-again");
    assert!(
        http(&again, "GET", "/a", "")
            .body
            .starts_with("Hello from spindle!")
    );

    // A broken commit changes nothing.
    std::fs::write(
        &production,
        with_new.replace("replicas = 2 },", "replicas = \"two\" },"),
    )
    .unwrap();
    git(repo, &["commit", "-qam", "broken"]);
    up.wait_for("is invalid; the running apps stay as they are");
    assert!(
        up.output().contains("environments/production.ncl:"),
        "{}",
        up.output()
    );
    assert!(
        http(&greeter, "GET", "/", "")
            .body
            .starts_with("Good evening!")
    );

    // A removed app stops; the others go on.
    let removed = with_new
        .lines()
        .filter(|l| !l.contains("hello-again"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&production, removed).unwrap();
    git(repo, &["commit", "-qam", "remove an app"]);
    up.wait_for("stopped hello-again");
    assert!(
        std::net::TcpStream::connect(&again).is_err(),
        "the removed app no longer listens"
    );

    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.join().unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed during the switches\n{}",
        up.output()
    );
    assert!(served.load(Ordering::Relaxed) > 50, "the load ran");
}
