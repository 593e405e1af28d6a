//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

pub mod hostile_registry;
pub mod otlp;
pub mod up;
mod workspace;

#[allow(unused_imports)]
pub use workspace::{
    bare_modules, binary, core_modules, example_apps, js_app, python_app, test_apps,
};

/// The example repository, relative to the reconciler crate (the tests' working directory).
pub const EXAMPLE: &str = "../examples/gitops-repo";

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts that stderr contains `text`, showing stderr when it does not.
    pub fn assert_stderr_contains(&self, text: &str) {
        assert!(
            self.stderr.contains(text),
            "want `{text}` in stderr:\n{}",
            self.stderr
        );
    }
}

/// Runs the `spindle` binary with a compile cache shared by all tests.
pub fn spindle(args: &[&str]) -> Output {
    spindle_in(Path::new("."), args)
}

/// Runs the `spindle` binary in `dir`.
pub fn spindle_in(dir: &Path, args: &[&str]) -> Output {
    spindle_command()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("spindle runs")
        .into()
}

/// The `spindle` binary, with the compile cache every test shares and no environment chosen by
/// the caller's shell.
pub fn spindle_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
    command
        .env(
            "SPINDLE_CACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("spindle-cache"),
        )
        .env_remove("SPINDLE_ENV");
    command
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A throwaway repository folder.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        Repo {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }
}

/// Runs git in `dir` as a fixed author at a fixed time, so commit ids are the same on every run.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=spindle", "-c", "user.email=ci@spindle.dev"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// A Git repository whose commits replace `environments/prod.ncl`.
pub struct GitRepo(pub Repo);

impl GitRepo {
    pub fn new() -> Self {
        let repo = GitRepo(Repo::new());
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn git(&self, args: &[&str]) {
        git(self.0.path(), args);
    }

    /// Commits `environment` as `environments/prod.ncl`; returns the commit id.
    pub fn commit(&self, environment: &str, message: &str) -> String {
        self.0.write("environments/prod.ncl", environment);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-qm", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        let out = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(self.0.path())
            .output()
            .expect("git runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// A name of its own for each call, so that runs (and tests) against long-lived test servers do
/// not meet each other's objects.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
            % 1_000_000
    )
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads an environment variable naming a test server; fails with a clear message when absent.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the test environment. Run `scripts/test` \
             (or `scripts/testenv start` and `source target/testenv/env`)"
        )
    })
}

/// A client for the test apiserver named by `KUBECONFIG`.
pub async fn kube_client() -> kube::Client {
    use kube::config::{Config, KubeConfigOptions, Kubeconfig};
    let path = required_env("KUBECONFIG");
    let kubeconfig = Kubeconfig::read_from(&path).expect("kubeconfig reads");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client builds")
}

/// Appends what `pipe` says to `sink`, on a thread of its own, until it closes.
pub fn collect(
    mut pipe: impl std::io::Read + Send + 'static,
    sink: std::sync::Arc<std::sync::Mutex<String>>,
) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
}

/// A `spindle run` in the background, stopped (SIGTERM) when dropped.
pub struct Served {
    child: std::process::Child,
    pub address: String,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    /// Starts `spindle run ARGS --listen 127.0.0.1:0` and waits until it serves.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Served {
        use std::io::{BufRead, BufReader};
        let mut child = spindle_command()
            .arg("run")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spindle runs");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        collect(pipe, stderr.clone());
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("reads stdout");
        let rest = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        collect(stdout, rest.clone());
        let address = first
            .trim()
            .rsplit("http://")
            .next()
            .filter(|_| first.starts_with("Serving"))
            .unwrap_or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(200));
                panic!(
                    "spindle run did not start: {first}\n{}",
                    stderr.lock().unwrap()
                )
            })
            .to_owned();
        Served {
            child,
            address,
            stdout: rest,
            stderr,
        }
    }

    /// The process's ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What spindle printed on stdout after its `Serving` line (guests' stdout goes there).
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("spindle exits")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read off the wire.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// One HTTP/1.1 request on a new connection (`Connection: close`).
pub fn http(address: &str, method: &str, path: &str, body: &str) -> HttpResponse {
    http_with_headers(address, method, path, &[], body)
}

/// [`http`] with extra request headers.
pub fn http_with_headers(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connects");
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("writes");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reads");
    parse_response(&String::from_utf8_lossy(&raw))
}

/// Parses one response (chunked or with a length).
pub fn parse_response(raw: &str) -> HttpResponse {
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size.min(rest.len())]);
        body = rest.get(size + 2..).unwrap_or("");
    }
    out
}

/// Compares `actual` with the reviewed golden file `tests/golden/NAME`; with
/// `SPINDLE_UPDATE_GOLDEN=1`, writes it instead, for review before it is committed.
pub fn assert_golden(name: &str, actual: &str) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    if std::env::var_os("SPINDLE_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|err| panic!("{}: {err}", golden.display()));
    assert!(
        expected == actual,
        "output differs from {} (rerun with SPINDLE_UPDATE_GOLDEN=1 and review):\n{}",
        golden.display(),
        similar::TextDiff::from_lines(&expected, actual).unified_diff()
    );
}

/// What a reader of a Markdown comment sees of its text: spindle writes what a repository
/// controls as character references (`&#96;`, `&lt;`, ...), which a forge shows as the characters.
pub fn as_shown(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|&end| end <= 8);
        let decoded = end.and_then(|end| match &rest[1..end] {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            code => code
                .strip_prefix('#')?
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32),
        });
        match (decoded, end) {
            (Some(c), Some(end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
