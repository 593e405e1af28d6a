//! One app's latency while another app in the same `spindle up` process is attacked: the example
//! repository's `greeter` is measured at concurrency 1, calm and during each attack on `hello`.
//! The goal (issue 21): p99 under attack within 2x of the calm p99.

use std::{
    io::Write,
    net::TcpStream,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use load::{Stats, load};
use report::{Section, time};
use test_support::up::{Up, example_repository};

#[path = "support/load.rs"]
mod load;
#[path = "support/report.rs"]
mod report;
#[path = "../tests/it/support/mod.rs"]
mod test_support;

const LOAD: Duration = Duration::from_secs(5);

/// Something done to `hello` while `greeter` is measured; it lasts until the value is dropped.
struct Attack {
    stop: Arc<AtomicBool>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Attack {
    /// Runs `attack` in a thread until the attack is dropped; it gets the flag to check.
    fn start(attack: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> Attack {
        let stop = Arc::new(AtomicBool::new(false));
        let worker = std::thread::spawn({
            let stop = stop.clone();
            move || attack(stop)
        });
        // Let the attack reach its full size before measuring.
        std::thread::sleep(Duration::from_secs(1));
        Attack {
            stop,
            worker: Some(worker),
        }
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.worker.take().map(|w| w.join());
    }
}

/// `count` connections that each send `head`, then `trickle` every 100 ms until stopped.
fn hold(address: String, count: usize, head: &'static [u8], trickle: &'static [u8]) -> Attack {
    Attack::start(move |stop| {
        let mut held: Vec<TcpStream> = (0..count)
            .filter_map(|_| TcpStream::connect(&address).ok())
            .collect();
        assert_eq!(
            held.len(),
            count,
            "the attack could not open its connections"
        );
        for stream in &mut held {
            let _ = stream.write_all(head);
        }
        while !stop.load(Ordering::Relaxed) {
            if !trickle.is_empty() {
                for stream in &mut held {
                    let _ = stream.write_all(trickle);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

fn main() {
    let dir = example_repository();
    let up = Up::start(dir.path());
    let hello = up.address("hello");
    let greeter = up.address("greeter");
    up.wait_for("ready: 3 app(s)");
    load(&greeter, 1, Duration::from_secs(1));

    let calm = load(&greeter, 1, LOAD);
    let mut measured: Vec<(&str, Stats)> = Vec::new();
    {
        let _attack = hold(
            hello.clone(),
            1000,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
            b"",
        );
        measured.push((
            "1,000 requests whose bodies never come",
            load(&greeter, 1, LOAD),
        ));
    }
    {
        let _attack = hold(hello.clone(), 500, b"GET / HTTP/1.1\r\n", b"X");
        measured.push((
            "500 clients trickling their headers (slowloris)",
            load(&greeter, 1, LOAD),
        ));
    }
    {
        let _attack = hold(hello.clone(), 2000, b"", b"");
        measured.push((
            "2,000 idle connections (over the 1,024 cap)",
            load(&greeter, 1, LOAD),
        ));
    }
    {
        let address = hello.clone();
        let _attack = Attack::start(move |stop| {
            while !stop.load(Ordering::Relaxed) {
                load(&address, 32, Duration::from_secs(1));
            }
        });
        measured.push((
            "32 connections sending requests as fast as answered",
            load(&greeter, 1, LOAD),
        ));
    }

    let mut section = Section::new(
        "attack",
        "Under attack",
        "cargo bench --bench attack",
        "`spindle up` serving the example repository's 3 apps in one process; `greeter` gets GETs \
         on one keep-alive connection for 5 s, calm and while `hello`, in the same process, is \
         attacked. The attacker and the load generator run on the same cores as the server.",
    );
    let mut rows = vec![[
        "calm".to_owned(),
        format!("{:.0}", calm.per_second),
        format!("{} / {}", time(calm.p50), time(calm.p99)),
        "1.00x".to_owned(),
    ]];
    let mut worst: f64 = 1.0;
    for (attack, stats) in &measured {
        let ratio = stats.p99.as_secs_f64() / calm.p99.as_secs_f64();
        worst = worst.max(ratio);
        rows.push([
            (*attack).to_owned(),
            format!("{:.0}", stats.per_second),
            format!("{} / {}", time(stats.p50), time(stats.p99)),
            format!("{ratio:.2}x"),
        ]);
    }
    section.table(
        [
            "attack on `hello`",
            "`greeter` requests/s",
            "`greeter` p50 / p99",
            "p99 / calm p99",
        ],
        &rows,
    );
    section.note(format!(
        "Target (p99 under attack within 2x of calm): {}, worst {worst:.2}x.",
        if worst <= 2.0 { "met" } else { "missed" }
    ));
    section.write();
}
