//! Messages per second handled by a Redis-triggered and an MQTT-triggered app (QoS 0 and 1), and
//! how long one message takes from publish to handled, beside an HTTP request to the same app.
//! `spindle run tests/apps/triggers.toml` against the test environment's Redis and Mosquitto;
//! each handler records its message in the app's key-value store (a SQLite write), as the
//! trigger tests check.

use std::{
    io::Write as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use report::{Section, time};
use test_support::{Served, http, required_env, test_apps, unique};

#[path = "support/report.rs"]
mod report;
#[path = "../tests/it/support/mod.rs"]
mod test_support;

/// Messages per throughput run.
const MESSAGES: usize = 2000;
/// Messages sent one at a time for the latency figures.
const ONE_BY_ONE: usize = 200;

/// What the app's trigger `id` has handled and failed, from its info endpoint.
fn handled(address: &str, id: &str) -> u64 {
    let info = http(address, "GET", "/.well-known/spin/info", "");
    let info: serde_json::Value = serde_json::from_str(&info.body).expect("info is JSON");
    info["triggers"][id]["handled"].as_u64().unwrap_or(0)
        + info["triggers"][id]["failed"].as_u64().unwrap_or(0)
}

fn wait_handled(address: &str, id: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while handled(address, id) < count {
        assert!(
            Instant::now() < deadline,
            "{id} handled {} of {count}",
            handled(address, id)
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Sends `lines` through `publisher`'s stdin (one command or message per line).
fn publish(mut publisher: Command, lines: &str) {
    let mut child = publisher
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the publisher runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn redis_cli(redis: &str) -> Command {
    let (host, port) = redis.rsplit_once(':').unwrap();
    let mut command = Command::new("redis-cli");
    command.args(["-h", host, "-p", port]);
    command
}

fn mosquitto_pub(mqtt: &str, topic: &str, qos: u8) -> Command {
    let (host, port) = mqtt.rsplit_once(':').unwrap();
    let mut command = Command::new("mosquitto_pub");
    command.args(["-h", host, "-p", port, "-t", topic, "-q", &qos.to_string()]);
    command
}

/// Throughput: `MESSAGES` published at once, until all are handled.
fn throughput(address: &str, id: &str, publish_all: impl FnOnce(&str)) -> f64 {
    let before = handled(address, id);
    let tag = unique("m");
    let started = Instant::now();
    publish_all(&tag);
    wait_handled(address, id, before + MESSAGES as u64);
    MESSAGES as f64 / started.elapsed().as_secs_f64()
}

/// Publish-to-handled time of `ONE_BY_ONE` messages sent one at a time: p50 and p99.
fn latency(address: &str, id: &str, mut publish_one: impl FnMut(&str)) -> (Duration, Duration) {
    let mut samples = Vec::new();
    for n in 0..ONE_BY_ONE {
        let before = handled(address, id);
        let started = Instant::now();
        publish_one(&format!("one-{n}-{}", unique("l")));
        wait_handled(address, id, before + 1);
        samples.push(started.elapsed());
    }
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn main() {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let mqtt = required_env("SPINDLE_TEST_MQTT");
    let state = tempfile::tempdir().unwrap();
    let manifest = test_apps().join("triggers.toml");
    let channel = unique("bench");
    let topics = unique("bench");
    let served = Served::start(
        &[
            manifest.to_str().unwrap(),
            "--state-dir",
            state.path().to_str().unwrap(),
        ],
        &[
            ("SPIN_VARIABLE_REDIS_HOST", redis.as_str()),
            ("SPIN_VARIABLE_MQTT_HOST", mqtt.as_str()),
            ("SPIN_VARIABLE_CHANNEL", channel.as_str()),
            ("SPIN_VARIABLE_TOPICS", topics.as_str()),
            ("SPINDLE_LOG", "warn"),
        ],
    );
    let address = served.address.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(&address, "GET", "/.well-known/spin/health", "").status != 200 {
        assert!(Instant::now() < deadline, "the triggers never subscribed");
        std::thread::sleep(Duration::from_millis(50));
    }

    let lines = |each: &dyn Fn(usize) -> String| -> String {
        (0..MESSAGES).map(|n| each(n) + "\n").collect()
    };
    let redis_rate = throughput(&address, "redis-0", |tag| {
        publish(
            redis_cli(&redis),
            &lines(&|n| format!("PUBLISH {channel} {tag}-{n}")),
        )
    });
    let mut rows = vec![["Redis".to_owned(), format!("{redis_rate:.0}"), {
        let (p50, p99) = latency(&address, "redis-0", |message| {
            let out = redis_cli(&redis)
                .args(["PUBLISH", &channel, message])
                .output()
                .unwrap();
            assert!(out.status.success());
        });
        format!("{} / {}", time(p50), time(p99))
    }]];
    for (qos, id) in [(0u8, "mqtt-0"), (1, "mqtt-1")] {
        let topic = format!("{topics}/qos{qos}");
        let rate = throughput(&address, id, |tag| {
            let mut publisher = mosquitto_pub(&mqtt, &topic, qos);
            publisher.arg("-l");
            publish(publisher, &lines(&|n| format!("{tag}-{n}")))
        });
        let (p50, p99) = latency(&address, id, |message| {
            let out = mosquitto_pub(&mqtt, &topic, qos)
                .args(["-m", message])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(out.status.success());
        });
        rows.push([
            format!("MQTT QoS {qos}"),
            format!("{rate:.0}"),
            format!("{} / {}", time(p50), time(p99)),
        ]);
    }
    // The HTTP path on the same app: an instance per request, one key-value read.
    let mut samples: Vec<Duration> = (0..ONE_BY_ONE)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(http(&address, "GET", "/ledger?key=none", "").status, 200);
            started.elapsed()
        })
        .collect();
    samples.sort();
    let (http_p50, http_p99) = (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    );

    let mut section = Section::new(
        "triggers",
        "Message triggers",
        "cargo bench --bench triggers",
        &format!(
            "`spindle run tests/apps/triggers.toml` (release) against the test environment's Redis \
             and Mosquitto on the same machine. Throughput: {MESSAGES} messages published at once \
             (`redis-cli` pipelined, `mosquitto_pub -l`) until the app's info endpoint counts them \
             all handled; each handler is a fresh instance that writes the message to the app's \
             key-value store (SQLite). Latency: {ONE_BY_ONE} messages one at a time, from the \
             publisher's start to the handler counted (a new `redis-cli`/`mosquitto_pub` process \
             each, ~1 ms of it)."
        ),
    );
    section.table(
        ["trigger", "messages/s", "publish to handled p50 / p99"],
        &rows,
    );
    section.note(format!(
        "The HTTP path on the same app (an instance per request and one key-value read, over a \
         connection per request, no new process): {} / {} p50 / p99. What a message adds is the \
         publisher process, the broker hop and the polling of the info endpoint; the instance \
         costs the same, as handlers and requests share `InstancePre`s.",
        time(http_p50),
        time(http_p99)
    ));
    section.note(
        "Throughput is bounded by the handlers' key-value writes: each is a SQLite transaction \
         on disk, one at a time per store (about 1 ms each), so the three triggers reach about \
         the same rate.",
    );
    section.write();
}
