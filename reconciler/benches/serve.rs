//! spindle's runtime against `wasmtime serve` on the same hello component (the example
//! repository's `hello`, a Rust spin-sdk 5.2 guest).
//!
//! `scripts/bench-runtime` installs wasmtime-cli 48.0.8 and runs this; without it the wasmtime
//! rows are left out. Measures requests/s and p50/p99 latency at concurrency 1 and 32, the time
//! from process start to the first response (compile cache empty, then filled), and memory: the
//! serving process's RSS, and the growth of one process's RSS with 1 and with 50 apps loaded.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

mod support;

use support::{hello, workspace};

const LOAD: Duration = Duration::from_secs(5);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One GET on an open connection; true for a 200.
fn get(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    stream.write_all(b"GET /bench HTTP/1.1\r\nHost: bench\r\n\r\n")?;
    buffer.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let complete = if head.contains("transfer-encoding: chunked") {
                buffer.ends_with(b"0\r\n\r\n")
            } else {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                buffer.len() >= end + 4 + length
            };
            if complete {
                return Ok(head.starts_with("http/1.1 200"));
            }
        }
    }
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

struct Stats {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `concurrency` keep-alive connections sending GETs for `LOAD`.
fn load(port: u16, concurrency: usize) -> Stats {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
                stream.set_nodelay(true).unwrap();
                let mut buffer = Vec::new();
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    assert!(
                        get(&mut stream, &mut buffer).expect("answers"),
                        "a request failed"
                    );
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(LOAD);
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    all.sort();
    Stats {
        per_second: all.len() as f64 / LOAD.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spindle(app: &Path, port: u16, cache: &Path) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_spindle"))
            .arg("run")
            .arg(app)
            .args(["--ephemeral", "--listen", &format!("127.0.0.1:{port}")])
            .env("SPINDLE_CACHE", cache)
            .env("SPINDLE_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spindle runs"),
    )
}

fn report(name: &str, port: u16, pid: u32) {
    for concurrency in [1, 32] {
        let stats = load(port, concurrency);
        println!(
            "{name:<16} c={concurrency:<3} {:>9.0} req/s   p50 {:>8.2?}   p99 {:>8.2?}",
            stats.per_second, stats.p50, stats.p99
        );
    }
    println!("{name:<16} RSS after load: {} MiB", rss_kib(pid) / 1024);
}

fn main() {
    let app = hello();
    let wasm = app.join("../target/wasm32-wasip2/release/hello.wasm");
    let cache = tempfile::tempdir().expect("temp dir");

    for label in ["cold (empty compile cache)", "warm (compile cache filled)"] {
        let port = free_port();
        let started = Instant::now();
        let _server = spindle(&app, port, cache.path());
        println!(
            "spindle start to first response, {label}: {:.1?}",
            first_response(port, started)
        );
    }

    let port = free_port();
    let server = spindle(&app, port, cache.path());
    first_response(port, Instant::now());
    report("spindle run", port, server.0.id());
    drop(server);

    let wasmtime = workspace().join("target/bench-tools/bin/wasmtime");
    if wasmtime.exists() {
        let port = free_port();
        let started = Instant::now();
        let server = Server(
            Command::new(&wasmtime)
                .args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{port}")])
                .arg(&wasm)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("wasmtime runs"),
        );
        println!(
            "wasmtime serve start to first response: {:.1?}",
            first_response(port, started)
        );
        report("wasmtime serve", port, server.0.id());
    } else {
        println!(
            "(wasmtime serve not measured: run scripts/bench-runtime to install wasmtime-cli 48.0.8)"
        );
    }

    // Memory per app: one process, one engine, N apps prepared to serve.
    let shared = spindle_shim::ServingEngine::new(256 << 20).expect("engine");
    let options = spindle_shim::Options {
        cache_dir: Some(cache.path().join("components")),
        ..spindle_shim::Options::default()
    };
    let me = std::process::id();
    let before = rss_kib(me);
    let mut loaded = Vec::new();
    for count in 1..=50 {
        let app = spindle_shim::App::load(&app).expect("loads");
        loaded.push(spindle_shim::Runtime::on(&shared, app, options.clone()).expect("prepares"));
        if count == 1 || count == 50 {
            println!(
                "RSS growth with {count:>2} app(s) loaded: {} MiB",
                (rss_kib(me) - before) / 1024
            );
        }
    }
}
