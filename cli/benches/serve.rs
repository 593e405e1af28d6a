//! spindle's runtime against `wasmtime serve` on the same hello component (the example
//! repository's `hello`, a Rust spin-sdk 5.2 guest).
//!
//! `scripts/benchmarks` installs wasmtime-cli 48.0.8 into `target/bench-tools` (or
//! `SPINDLE_BENCH_WASMTIME` names one); without it the wasmtime column says "not measured".
//! Measures requests/s and p50/p99 latency at concurrency 1 and 32, with our own load generator
//! and with `wrk` (Debian's, so the figures do not rest on one client), the time from process start
//! to the first response (compile cache empty, then filled), and memory: the serving process's
//! RSS, and the growth of one process's RSS with 1 and with 50 apps loaded.

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod support;

use support::{
    hello,
    load::{Stats, get, load},
    report::{Section, time, verdict},
    workspace,
};

const LOAD: Duration = Duration::from_secs(5);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `port` answers a 200; the time it took since `started`.
fn first_response(port: u16, started: Instant) -> Duration {
    let mut buffer = Vec::new();
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port))
            && get(&mut stream, &mut buffer).unwrap_or(false)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server never answered"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The same load from `wrk`; `None` when it is not installed or fails.
fn wrk(port: u16, concurrency: usize) -> Option<Stats> {
    let output = Command::new("wrk")
        .args(["--threads", if concurrency == 1 { "1" } else { "2" }])
        .args(["--connections", &concurrency.to_string()])
        .args(["--duration", &format!("{}s", LOAD.as_secs()), "--latency"])
        .arg(format!("http://127.0.0.1:{port}/bench"))
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(str::trim)
    };
    Some(Stats {
        per_second: field("Requests/sec:")?.parse().ok()?,
        p50: wrk_time(field("50%")?)?,
        p99: wrk_time(field("99%")?)?,
    })
}

/// A latency as `wrk` prints it: `85.00us`, `1.20ms`, `2.01s`.
fn wrk_time(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text.strip_suffix('s')?, 1.0)
    };
    Some(Duration::from_secs_f64(number.parse::<f64>().ok()? * scale))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn spawn(command: &mut Command, port: u16) -> Server {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Requests/s and latencies at concurrency 1 and 32, then the server's RSS.
struct Measured {
    start_empty_cache: Duration,
    start_filled_cache: Duration,
    loads: [Stats; 2],
    wrk: [Option<Stats>; 2],
    rss_mib: u64,
}

fn measure(start: impl Fn() -> Server) -> Measured {
    let mut starts = [Duration::ZERO; 2];
    for took in &mut starts {
        let started = Instant::now();
        let server = start();
        *took = first_response(server.port, started);
    }
    let server = start();
    first_response(server.port, Instant::now());
    let address = format!("127.0.0.1:{}", server.port);
    let loads = [load(&address, 1, LOAD), load(&address, 32, LOAD)];
    let wrk = [wrk(server.port, 1), wrk(server.port, 32)];
    Measured {
        start_empty_cache: starts[0],
        start_filled_cache: starts[1],
        loads,
        wrk,
        rss_mib: rss_kib(server.child.id()) / 1024,
    }
}

fn main() {
    let app = hello();
    let wasm = app.join("../target/wasm32-wasip2/release/hello.wasm");
    let caches = tempfile::tempdir().expect("temp dir");
    let spindle_cache = caches.path().join("spindle");
    let spindle = measure(|| {
        let port = free_port();
        Server::spawn(
            Command::new(env!("CARGO_BIN_EXE_spindle"))
                .arg("run")
                .arg(&app)
                .args(["--ephemeral", "--listen", &format!("127.0.0.1:{port}")])
                .env("SPINDLE_CACHE", &spindle_cache)
                .env("SPINDLE_LOG", "error"),
            port,
        )
    });

    let wasmtime_binary = std::env::var_os("SPINDLE_BENCH_WASMTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/bench-tools/bin/wasmtime"));
    let wasmtime = wasmtime_binary.exists().then(|| {
        let config = caches.path().join("wasmtime.toml");
        std::fs::write(
            &config,
            format!(
                "[cache]\ndirectory = \"{}\"\n",
                caches.path().join("wasmtime").display()
            ),
        )
        .unwrap();
        measure(|| {
            let port = free_port();
            Server::spawn(
                Command::new(&wasmtime_binary)
                    .args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{port}")])
                    .arg(format!("-Ccache-config={}", config.display()))
                    .arg(&wasm),
                port,
            )
        })
    });

    // Memory per app: one process, one engine, N apps prepared to serve.
    let shared = spindle_runtime::ServingEngine::new(256 << 20).expect("engine");
    let options = spindle_runtime::Options {
        cache_dir: Some(spindle_cache.join("components")),
        ..spindle_runtime::Options::default()
    };
    let me = std::process::id();
    let before = rss_kib(me);
    let mut loaded = Vec::new();
    let mut growth = Vec::new();
    for count in 1..=50 {
        let app = spindle_runtime::App::load(&app).expect("loads");
        loaded.push(spindle_runtime::Runtime::on(&shared, app, options.clone()).expect("prepares"));
        if count == 1 || count == 50 {
            growth.push(rss_kib(me).saturating_sub(before) / 1024);
        }
    }

    let mut section = Section::new(
        "serve",
        "Runtime",
        "cargo bench --bench serve",
        "The example repository's `hello` (a Rust spin-sdk 5.2 guest), served by `spindle run` \
         and by `wasmtime serve -Scli` from wasmtime-cli 48.0.8, both release builds, in the same \
         run. Keep-alive connections sending GETs for 5 s, from our own load generator and from \
         `wrk` (Debian's); the load generator runs on the same cores as the server.",
    );
    let column = |pick: &dyn Fn(&Measured) -> String| {
        [
            pick(&spindle),
            wasmtime.as_ref().map_or("not measured".to_owned(), pick),
        ]
    };
    let row = |what: &str, pick: &dyn Fn(&Measured) -> String| {
        let [a, b] = column(pick);
        [what.to_owned(), a, b]
    };
    let mut rows = Vec::new();
    for (i, concurrency) in [1, 32].into_iter().enumerate() {
        rows.push(row(&format!("c={concurrency} requests/s"), &|m| {
            format!("{:.0}", m.loads[i].per_second)
        }));
        rows.push(row(&format!("c={concurrency} p50 / p99"), &|m| {
            format!("{} / {}", time(m.loads[i].p50), time(m.loads[i].p99))
        }));
    }
    for (i, concurrency) in [1, 32].into_iter().enumerate() {
        rows.push(row(&format!("wrk c={concurrency} requests/s"), &|m| {
            m.wrk[i]
                .as_ref()
                .map_or("no wrk".to_owned(), |s| format!("{:.0}", s.per_second))
        }));
        rows.push(row(&format!("wrk c={concurrency} p50 / p99"), &|m| {
            m.wrk[i].as_ref().map_or("no wrk".to_owned(), |s| {
                format!("{} / {}", time(s.p50), time(s.p99))
            })
        }));
    }
    rows.push(row(
        "process start to first response, compile cache empty",
        &|m| time(m.start_empty_cache),
    ));
    rows.push(row(
        "process start to first response, compile cache filled",
        &|m| time(m.start_filled_cache),
    ));
    rows.push(row("RSS of the serving process after the load", &|m| {
        format!("{} MiB", m.rss_mib)
    }));
    section.table(["", "spindle run", "wasmtime serve"], &rows);
    if let Some(wasmtime) = &wasmtime {
        let met: Vec<String> = [0, 1]
            .iter()
            .map(|&i| {
                let (ours, theirs) = (spindle.loads[i].per_second, wasmtime.loads[i].per_second);
                format!(
                    "{} at c={} ({:.2}x)",
                    if ours >= theirs { "met" } else { "missed" },
                    [1, 32][i],
                    ours / theirs
                )
            })
            .collect();
        section.note(format!(
            "Throughput target (at least `wasmtime serve`'s): {}.",
            met.join(", ")
        ));
        if let (Some(ours), Some(theirs)) = (&spindle.wrk[0], &wasmtime.wrk[0]) {
            section.note(format!(
                "Tail latency target (p99 at c=1 under `wrk` no worse than `wasmtime serve`'s): \
                 {}, {} against {}.",
                if ours.p99 <= theirs.p99 {
                    "met"
                } else {
                    "missed"
                },
                time(ours.p99),
                time(theirs.p99)
            ));
        }
    }
    section.note(format!(
        "Cached cold start target (under 50 ms): {}, {}.",
        verdict(spindle.start_filled_cache, Duration::from_millis(50)),
        time(spindle.start_filled_cache)
    ));
    section.note(format!(
        "Memory per app: one process, one engine, N copies of the app prepared to serve \
         (components loaded from the compile cache, pre-instantiated, stores opened): RSS grows \
         {} MiB for 1 app and {} MiB for 50 apps.",
        growth[0], growth[1]
    ));
    section.write();
}
