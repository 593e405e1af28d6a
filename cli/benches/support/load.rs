//! A keep-alive HTTP load generator for the serving benchmarks.

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// One GET on an open connection; true for a 200.
pub fn get(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
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

/// Throughput and latency of a load.
pub struct Stats {
    /// Requests answered per second.
    pub per_second: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// `concurrency` keep-alive connections sending GETs to `address` for `duration`.
pub fn load(address: &str, concurrency: usize, duration: Duration) -> Stats {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let stop = stop.clone();
            let address = address.to_owned();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&address).expect("connects");
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
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    all.sort();
    Stats {
        per_second: all.len() as f64 / duration.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}
