//! Container start to first response through containerd and `containerd-shim-spindle-v1`, with
//! the component compiled on this start (a component digest containerd has not seen) and with it
//! precompiled (the same image again), against the test containerd and registry of
//! `scripts/testenv` (`scripts/benchmarks` builds the shim and starts them).
//!
//! Timed from spawning `ctr run --detach` to the first 200 answered on loopback: ctr itself,
//! container and task creation, the shim's start, loading the app and the first request.

mod support;

use std::{
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use support::{
    hello,
    report::{Section, faster, time},
    workspace,
};

const ROUNDS: usize = 7;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/benchmarks (it starts the test environment)")
    })
}

fn ctr(binary: &str) -> Command {
    let mut command = Command::new(binary);
    command.args(["--address", &env("SPINDLE_TEST_CONTAINERD")]);
    command
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `hello` with a custom section naming `round`: the same component, a digest of its own.
fn variant(wasm: &[u8], round: &str, dir: &Path) {
    let name = b"spindle-bench";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(round.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0);
    out.push(section.len() as u8);
    out.extend(section);
    std::fs::write(dir.join("hello.wasm"), out).unwrap();
    std::fs::write(
        dir.join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"hello\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n\
         [component.hello]\nsource = \"hello.wasm\"\n",
    )
    .unwrap();
}

fn first_response(address: &str, started: Instant) -> Duration {
    let deadline = started + Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.1 200") {
                return started.elapsed();
            }
        }
        assert!(Instant::now() < deadline, "no response within 30 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Starts `image`, waits for its first response, stops it; returns the time to that response.
fn start(ctr17: &str, image: &str, id: &str) -> Duration {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let started = Instant::now();
    run(ctr(ctr17).args([
        "run",
        "--detach",
        "--null-io",
        "--net-host",
        "--runtime",
        "io.containerd.spindle.v1",
        "--env",
        &format!("SPIN_HTTP_LISTEN_ADDR={address}"),
        image,
        id,
        "/",
    ]));
    let elapsed = first_response(&address, started);
    run(ctr("ctr").args(["task", "kill", id]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctr("ctr")
        .args(["task", "delete", id])
        .output()
        .unwrap()
        .status
        .code()
        != Some(0)
    {
        assert!(Instant::now() < deadline, "task {id} does not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    run(ctr("ctr").args(["container", "rm", id]));
    elapsed
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let (registry, ctr17) = (env("SPINDLE_TEST_REGISTRY"), env("SPINDLE_TEST_CTR"));
    let spindle = PathBuf::from(env!("CARGO_BIN_EXE_spindle"));
    let shim = spindle.with_file_name("containerd-shim-spindle-v1");
    assert!(
        shim.exists(),
        "{} is not built: run scripts/benchmarks",
        shim.display()
    );
    let shims = PathBuf::from(env("SPINDLE_TEST_CONTAINERD_SHIMS"));
    std::fs::copy(&shim, shims.join(".shim.tmp")).unwrap();
    std::fs::rename(
        shims.join(".shim.tmp"),
        shims.join("containerd-shim-spindle-v1"),
    )
    .unwrap();
    hello();
    let wasm = std::fs::read(
        workspace().join("examples/gitops-repo/apps/target/wasm32-wasip2/release/hello.wasm"),
    )
    .expect("the hello guest is built");

    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let run_id = std::process::id();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("{run_id}-{round}");
        variant(&wasm, &tag, dir.path());
        let image = format!("{registry}/spindle-bench/hello:{tag}");
        run(Command::new(&spindle).args([
            "push",
            dir.path().to_str().unwrap(),
            &image,
            "--insecure",
        ]));
        run(ctr("ctr").args(["content", "fetch", "--plain-http", &image]));
        cold.push(start(&ctr17, &image, &format!("bench-{tag}-cold")));
        warm.push(start(&ctr17, &image, &format!("bench-{tag}-warm")));
    }
    let show = |samples: &[Duration]| {
        samples
            .iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (compiled, precompiled) = (median(cold.clone()), median(warm.clone()));
    let mut section = Section::new(
        "shim_start",
        "containerd shim",
        "cargo bench --bench shim_start",
        &format!(
            "From spawning `ctr run --detach` to the first 200 on loopback, through the test \
             environment's containerd and `containerd-shim-spindle-v1`, for the example \
             repository's `hello` app: ctr itself, container and task creation, the shim's start, \
             loading the app, the first request. Each round pushes a variant of the component (a \
             custom section makes its digest new), so the first start compiles it; the second \
             start of the same image loads the compiled code runwasi keeps in containerd's \
             content store. {ROUNDS} rounds."
        ),
    );
    section.table(
        ["start", "median", "rounds (ms)"],
        &[
            [
                "component compiled on this start".to_owned(),
                time(compiled),
                show(&cold),
            ],
            [
                "precompiled (second start)".to_owned(),
                time(precompiled),
                show(&warm),
            ],
        ],
    );
    let spinkube = Duration::from_millis(1100);
    section.note(format!(
        "SpinKube's shim measured about 1.1 s per start before runwasi 0.6 (published): \
         spindle's is {} when it compiles and {} precompiled.",
        faster(compiled, spinkube),
        faster(precompiled, spinkube)
    ));
    section.write();
}
