//! Attacks on the runtime over real HTTP with real guests (`tests/apps`' `misbehave` and `sqlite`,
//! the example repository's apps under `spindle up`), each next to a client that behaves and is
//! still answered while the attack goes on. docs/runtime.md's limits table says what each attacker
//! sees; the status codes asserted here are those.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use crate::{
    run::serve,
    support::{
        http, parse_response,
        up::{Up, example_repository},
    },
};

/// A connection that sent a request head promising a body that never comes.
fn stalled_body(address: &str, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("connects");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
    )
    .expect("writes");
    stream
}

/// What the server has sent on `stream` so far, without waiting.
fn sent_so_far(stream: &mut TcpStream) -> String {
    stream.set_nonblocking(true).unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    stream.set_nonblocking(false).unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

/// User and system CPU time a process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
    // After the command name: state is field 3 of stat(5), utime 14 and stime 15.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// One GET on a keep-alive connection.
fn get_on(stream: &mut TcpStream, path: &str) -> crate::support::HttpResponse {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("writes");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).expect("reads");
        assert!(n > 0, "the server closed the connection");
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                return parse_response(&text);
            }
        }
    }
}

#[test]
fn a_flood_on_one_app_under_up_leaves_the_other_apps_answering() {
    let dir = example_repository();
    let up = Up::start(dir.path());
    let hello = up.address("hello");
    let greeter = up.address("greeter");
    up.wait_for("ready: 3 app(s)");

    // 1,000 requests to hello whose bodies never come, and 200 clients trickling their headers
    // a byte at a time (slowloris).
    let mut stalled: Vec<TcpStream> = (0..1000).map(|_| stalled_body(&hello, "/")).collect();
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = TcpStream::connect(&hello).expect("connects");
            stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        for stream in &mut slow {
            let _ = stream.write_all(b"X");
        }
        let answer = http(&greeter, "GET", "/", "");
        assert_eq!(answer.status, 200, "greeter during the flood: {answer:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // hello holds its share of requests in flight (250) and tells the rest to come back.
    let told: Vec<String> = stalled
        .iter_mut()
        .map(sent_so_far)
        .filter(|s| !s.is_empty())
        .collect();
    assert!(
        told.len() >= 700,
        "only {} of 1,000 stalled requests were answered",
        told.len()
    );
    for answer in &told {
        let answer = answer.to_ascii_lowercase();
        assert!(
            answer.starts_with("http/1.1 503") && answer.contains("retry-after:"),
            "{answer}"
        );
    }

    // The trickling clients are cut off at the header read timeout (10 s).
    for stream in &mut slow {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut rest = Vec::new();
        let closed = stream.read_to_end(&mut rest).is_ok();
        assert!(
            closed,
            "a slowloris client was still connected 15 s after its first byte"
        );
    }
    drop(stalled);
    assert_eq!(http(&greeter, "GET", "/", "").status, 200);
}

#[test]
fn a_guest_sleeping_past_its_deadline_gets_504_while_others_answer() {
    let (served, _state) = serve(&[]);
    let address = served.address.clone();
    let sleeper = std::thread::spawn(move || http(&address, "GET", "/misbehave/sleep", ""));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        http(&served.address, "GET", "/misbehave/fine", "").status,
        200
    );
    assert_eq!(sleeper.join().unwrap().status, 504);
}

#[test]
fn output_without_newlines_is_cut_into_bounded_lines() {
    let (served, _state) = serve(&[]);
    let shout = http(&served.address, "GET", "/misbehave/shout", "");
    assert_eq!(shout.body, "shouted", "{shout:?}");
    let started = Instant::now();
    let lines = loop {
        let stdout = served.stdout();
        // Only whole lines: the last one may still be being written.
        let whole = stdout.rfind('\n').map_or("", |end| &stdout[..end]);
        let lines: Vec<String> = whole
            .lines()
            .filter(|l| l.starts_with("[misbehave] aaa"))
            .map(str::to_owned)
            .collect();
        if lines.len() >= 256 || started.elapsed() > Duration::from_secs(10) {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // 4 MiB without a newline is 256 lines of 16 KiB, each marked as cut.
    assert_eq!(lines.len(), 256);
    for line in &lines {
        assert!(
            line.ends_with(" [line cut at 16 KiB]"),
            "{}",
            &line[line.len() - 40..]
        );
        assert!(line.len() < (16 << 10) + 64, "{} bytes", line.len());
    }
}

#[test]
fn running_out_of_file_descriptors_backs_off_and_recovers() {
    let (served, _state) = serve(&[]);
    let pid = served.pid();
    let mut kept = TcpStream::connect(&served.address).unwrap();
    assert_eq!(get_on(&mut kept, "/misbehave/fine").status, 200);

    // Leave spindle a few descriptors more than it has open, then connect far more clients
    // than that: its accepts fail with EMFILE.
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = open + 4;
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let flood: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&served.address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // The accept loop waits between failures instead of spinning a core ...
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    assert!(
        used < 50,
        "spindle used {used} ticks of CPU in 2 s while out of descriptors"
    );
    // ... a connection it already had still answers ...
    assert_eq!(get_on(&mut kept, "/misbehave/fine").status, 200);

    // ... and once the flood is gone, new clients are served again.
    drop(flood);
    let started = Instant::now();
    loop {
        let mut stream = TcpStream::connect(&served.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        if stream
            .write_all(b"GET /misbehave/fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .is_ok()
        {
            let mut raw = String::new();
            if stream.read_to_string(&mut raw).is_ok() && raw.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "spindle did not serve again after the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_misbehaving_guest_fails_its_own_request_only() {
    let (served, _state) = serve(&["--instance-memory", "64"]);
    let address = served.address.clone();
    let looping = std::thread::spawn(move || http(&address, "GET", "/misbehave/loop", ""));
    // While one request spins, others are served.
    assert_eq!(
        http(&served.address, "GET", "/misbehave/ok", "").body,
        "fine"
    );
    assert_eq!(
        http(&served.address, "GET", "/misbehave/trap", "").status,
        500
    );
    assert_eq!(
        http(&served.address, "GET", "/misbehave/alloc", "").status,
        500
    );
    assert_eq!(looping.join().unwrap().status, 504);
    assert_eq!(
        http(&served.address, "GET", "/misbehave/ok", "").body,
        "fine"
    );
    let log = served.stderr();
    assert!(
        log.contains("[misbehave] ") && log.contains("this guest traps on purpose"),
        "{log}"
    );
}

#[test]
fn an_instance_never_sees_what_an_earlier_request_left_in_memory() {
    // Pooled memories are reset by hand up to 2 MiB and returned to the kernel past it: each
    // request of the same component, one after another and side by side, finds both zeroed.
    let (served, _state) = serve(&[]);
    for _ in 0..3 {
        let seen = http(&served.address, "GET", "/misbehave/remember", "");
        assert_eq!(seen.body, "first 0 last 0", "{seen:?}");
    }
    let side_by_side: Vec<_> = (0..8)
        .map(|_| {
            let address = served.address.clone();
            std::thread::spawn(move || http(&address, "GET", "/misbehave/remember", "").body)
        })
        .collect();
    for seen in side_by_side {
        assert_eq!(seen.join().unwrap(), "first 0 last 0");
    }
}

#[test]
fn hostile_sql_fails_its_own_request_and_leaves_the_database_usable() {
    let (served, state) = serve(&[]);
    let address = served.address.clone();
    let outside = state.path().join("outside.db");
    for attack in [
        format!("ATTACH '{}' AS other", outside.display()),
        format!("VACUUM INTO '{}'", outside.display()),
        "PRAGMA writable_schema = ON".to_owned(),
    ] {
        let answer = http(&address, "POST", "/sqlite", &attack);
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            answer.body.starts_with("error: "),
            "{attack}: {}",
            answer.body
        );
    }
    assert!(
        !outside.exists(),
        "a guest wrote a database outside its state"
    );

    // A query that never ends is stopped at the request's deadline (2 s here) ...
    let runaway = std::thread::spawn({
        let address = address.clone();
        move || {
            http(
                &address,
                "POST",
                "/sqlite",
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                 SELECT count(*) FROM n",
            )
        }
    });
    // ... while other components keep answering ...
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http(&address, "GET", "/misbehave/fine", "").status, 200);
    let stopped = runaway.join().unwrap();
    assert!(
        stopped.status == 504 || stopped.body.contains("deadline"),
        "{stopped:?}"
    );
    // ... and the database is not left locked.
    let after = http(&address, "GET", "/sqlite?after", "");
    assert_eq!(after.status, 200, "{after:?}");
    assert!(after.body.contains("after"), "{after:?}");
}

#[test]
fn a_stalled_request_body_ends_at_the_deadline_without_holding_up_others() {
    let (served, _state) = serve(&[]);
    let started = Instant::now();
    // Headers promise a body that never comes: the guest waits on host I/O, which the epoch
    // deadline alone would never stop.
    let mut stalled = TcpStream::connect(&served.address).unwrap();
    stalled
        .write_all(b"POST /misbehave/wait HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        .unwrap();
    assert_eq!(
        http(&served.address, "GET", "/misbehave/fine", "").status,
        200
    );
    let mut answer = String::new();
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn oversized_bodies_get_413_and_requests_beyond_the_apps_share_get_503() {
    let (served, _state) = serve(&["--max-in-flight", "1"]);
    let mut big = TcpStream::connect(&served.address).unwrap();
    big.write_all(
        b"POST /misbehave/fine HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n",
    )
    .unwrap();
    let mut answer = [0u8; 64];
    let read = big.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // One request holds the app's only slot (its body never comes) ...
    let mut holder = TcpStream::connect(&served.address).unwrap();
    holder
        .write_all(b"POST /misbehave/wait HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // ... so the next is told to come back, while Spin's health probe still answers.
    let busy = http(&served.address, "GET", "/misbehave/fine", "");
    assert_eq!(busy.status, 503, "{busy:?}");
    assert_eq!(
        http(&served.address, "GET", "/.well-known/spin/health", "").status,
        200
    );
    // Once the holder's deadline passed, the slot is free again.
    let mut rest = String::new();
    holder
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = holder.read_to_string(&mut rest);
    assert_eq!(
        http(&served.address, "GET", "/misbehave/fine", "").status,
        200
    );
}
