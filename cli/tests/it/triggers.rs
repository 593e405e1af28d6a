//! Redis, MQTT, cron and command triggers under `spindle run`, with real guests (`tests/apps`:
//! spin-sdk's `#[redis_component]`, and bindings generated from the MQTT and cron plugins' WIT)
//! against the real Redis and Mosquitto of `scripts/testenv`, or servers a test starts and stops
//! itself to play an outage. Handlers record what they handle in the app's key-value store;
//! `GET /ledger` reads it back over HTTP, from the same app.

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::{Served, free_port, http, required_env, spindle_command, test_apps, unique};

/// Serves `tests/apps/triggers.toml` with its Redis channel and MQTT topics unique to the test.
struct TriggerApp {
    served: Served,
    channel: String,
    topics: String,
    _state: tempfile::TempDir,
}

fn serve_triggers(redis: &str, mqtt: &str) -> TriggerApp {
    let state = tempfile::tempdir().unwrap();
    let manifest = test_apps().join("triggers.toml");
    let channel = unique("channel");
    let topics = unique("topics");
    let served = Served::start(
        &[
            manifest.to_str().unwrap(),
            "--state-dir",
            state.path().to_str().unwrap(),
            "--request-timeout",
            "5",
        ],
        &[
            ("SPIN_VARIABLE_REDIS_HOST", redis),
            ("SPIN_VARIABLE_MQTT_HOST", mqtt),
            ("SPIN_VARIABLE_CHANNEL", &channel),
            ("SPIN_VARIABLE_TOPICS", &topics),
        ],
    );
    TriggerApp {
        served,
        channel,
        topics,
        _state: state,
    }
}

/// What the app's handlers recorded: `KIND:PAYLOAD` to how many times.
fn ledger(address: &str) -> BTreeMap<String, u64> {
    let answer = http(address, "GET", "/ledger", "");
    assert_eq!(answer.status, 200, "{answer:?}");
    answer
        .body
        .lines()
        .filter_map(|line| line.rsplit_once('='))
        .map(|(key, count)| (key.to_owned(), count.parse().unwrap()))
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn healthy(address: &str) -> bool {
    http(address, "GET", "/.well-known/spin/health", "").status == 200
}

/// `PUBLISH channel message` on the Redis at `address`; how many subscribers received it.
fn publish_redis(address: &str, channel: &str, message: &str) -> u64 {
    let (host, port) = address.rsplit_once(':').unwrap();
    let out = Command::new("redis-cli")
        .args(["-h", host, "-p", port, "PUBLISH", channel, message])
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn publish_mqtt(address: &str, topic: &str, qos: u8, message: &str, auth: Option<(&str, &str)>) {
    let (host, port) = address.rsplit_once(':').unwrap();
    let mut publish = Command::new("mosquitto_pub");
    publish.args([
        "-h",
        host,
        "-p",
        port,
        "-t",
        topic,
        "-q",
        &qos.to_string(),
        "-m",
        message,
    ]);
    if let Some((user, password)) = auth {
        publish.args(["-u", user, "-P", password]);
    }
    let out = publish.output().expect("mosquitto_pub runs");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn redis_messages_are_handled_once_each_and_a_failing_handler_does_not_stop_the_next() {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let mqtt = required_env("SPINDLE_TEST_MQTT");
    let app = serve_triggers(&redis, &mqtt);
    let address = &app.served.address;
    wait_for(
        "every trigger to subscribe",
        Duration::from_secs(20),
        || healthy(address),
    );

    let mut expected = BTreeMap::new();
    for n in 0..20 {
        let message = match n {
            5 => "trap".to_owned(),
            10 => "fail".to_owned(),
            n => format!("m{n}"),
        };
        assert_eq!(
            publish_redis(&redis, &app.channel, &message),
            1,
            "one subscriber"
        );
        if !["trap", "fail"].contains(&message.as_str()) {
            expected.insert(format!("redis:{message}"), 1);
        }
    }
    wait_for("18 messages to be handled", Duration::from_secs(20), || {
        ledger(address).len() >= expected.len()
    });
    // A little longer: a message handled twice would show now.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ledger(address), expected, "each message exactly once");

    let info = http(address, "GET", "/.well-known/spin/info", "");
    let info: serde_json::Value = serde_json::from_str(&info.body).unwrap();
    assert_eq!(info["triggers"]["redis-0"]["handled"], 18, "{info}");
    assert_eq!(info["triggers"]["redis-0"]["failed"], 2, "{info}");
    let log = app.served.stderr();
    assert!(log.contains("the guest trapped"), "{log}");
    assert!(log.contains("the handler returned an error"), "{log}");
}

#[test]
fn mqtt_messages_are_handled_at_each_qos() {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let mqtt = required_env("SPINDLE_TEST_MQTT");
    let app = serve_triggers(&redis, &mqtt);
    let address = &app.served.address;
    wait_for(
        "every trigger to subscribe",
        Duration::from_secs(20),
        || healthy(address),
    );
    let mut expected = BTreeMap::new();
    for qos in 0..=2u8 {
        let topic = format!("{}/qos{qos}", app.topics);
        for n in 0..5 {
            let message = if n == 2 {
                "trap".to_owned()
            } else {
                format!("m{n}")
            };
            publish_mqtt(&mqtt, &topic, qos, &message, None);
            if message != "trap" {
                expected.insert(format!("mqtt:{topic}:{message}"), 1);
            }
        }
    }
    wait_for("12 messages to be handled", Duration::from_secs(20), || {
        ledger(address).len() >= expected.len()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ledger(address), expected, "each message exactly once");
}

#[test]
fn an_mqtt_broker_that_asks_for_a_password_gets_the_manifests() {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let mqtt = required_env("SPINDLE_TEST_MQTT_AUTH");
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(test_apps().join("triggers.toml"))
        .unwrap()
        .replace("username = \"\"", "username = \"{{ mqtt_user }}\"")
        .replace("password = \"\"", "password = \"{{ mqtt_password }}\"")
        .replace(
            "[variables]",
            "[variables]\nmqtt_user = { default = \"spindle\" }\nmqtt_password = { required = true, secret = true }",
        )
        .replace("target/", &format!("{}/target/", test_apps().display()));
    let manifest_path = dir.path().join("spin.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let topics = unique("auth");
    let served = Served::start(
        &[manifest_path.to_str().unwrap(), "--ephemeral"],
        &[
            ("SPIN_VARIABLE_REDIS_HOST", redis.as_str()),
            ("SPIN_VARIABLE_MQTT_HOST", mqtt.as_str()),
            ("SPIN_VARIABLE_TOPICS", topics.as_str()),
            ("SPIN_VARIABLE_MQTT_PASSWORD", "s3cret"),
        ],
    );
    wait_for(
        "the authenticated subscriptions",
        Duration::from_secs(20),
        || healthy(&served.address),
    );
    publish_mqtt(
        &mqtt,
        &format!("{topics}/qos1"),
        1,
        "hello",
        Some(("spindle", "s3cret")),
    );
    wait_for("the message", Duration::from_secs(20), || {
        ledger(&served.address).contains_key(&format!("mqtt:{topics}/qos1:hello"))
    });
    assert!(
        !served.stderr().contains("s3cret"),
        "the password is not logged"
    );
}

/// A broker of the test's own (Redis or Mosquitto) on `port` of 127.0.0.1, stopped by PID when
/// dropped.
struct OwnServer(Child);

impl OwnServer {
    fn redis(port: u16) -> OwnServer {
        Self::redis_with(port, &[])
    }

    fn redis_with(port: u16, extra: &[&str]) -> OwnServer {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra);
        Self::start(command, port)
    }

    /// Mosquitto 2 without a configuration file: loopback only, anonymous clients.
    fn mosquitto(port: u16) -> OwnServer {
        let mut command = Command::new("/usr/sbin/mosquitto");
        command.args(["-p", &port.to_string()]);
        Self::start(command, port)
    }

    fn start(mut command: Command, port: u16) -> OwnServer {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let server = OwnServer(child);
        wait_for("the server to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        server
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_redis_restart_is_survived_and_health_says_when_the_trigger_is_not_subscribed() {
    required_env("SPINDLE_TEST_REDIS");
    let mqtt = required_env("SPINDLE_TEST_MQTT");
    let port = free_port();
    let redis_address = format!("127.0.0.1:{port}");
    let redis = OwnServer::redis(port);
    let app = serve_triggers(&redis_address, &mqtt);
    let address = &app.served.address;
    wait_for("the subscription", Duration::from_secs(20), || {
        healthy(address)
    });
    assert_eq!(publish_redis(&redis_address, &app.channel, "before"), 1);
    wait_for("the first message", Duration::from_secs(10), || {
        ledger(address).contains_key("redis:before")
    });

    drop(redis);
    wait_for(
        "health to say the trigger is down",
        Duration::from_secs(10),
        || {
            let health = http(address, "GET", "/.well-known/spin/health", "");
            health.status == 503 && health.body.contains("redis-0")
        },
    );
    // Down for a while: reconnection backs off instead of spinning.
    std::thread::sleep(Duration::from_secs(2));
    let _redis = OwnServer::redis(port);
    wait_for(
        "the trigger to subscribe again",
        Duration::from_secs(30),
        || healthy(address),
    );
    assert_eq!(publish_redis(&redis_address, &app.channel, "after"), 1);
    wait_for(
        "the message after the restart",
        Duration::from_secs(10),
        || ledger(address).contains_key("redis:after"),
    );
    let log = app.served.stderr();
    let retries = log.matches("cannot subscribe to").count();
    assert!(
        (1..=8).contains(&retries),
        "a few retries with backoff over ~2 s, not a busy loop: {retries}\n{log}"
    );
}

#[test]
fn an_mqtt_broker_restart_is_survived_and_health_says_when_the_trigger_is_not_subscribed() {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let port = free_port();
    let broker_address = format!("127.0.0.1:{port}");
    let broker = OwnServer::mosquitto(port);
    let app = serve_triggers(&redis, &broker_address);
    let address = &app.served.address;
    wait_for("the subscriptions", Duration::from_secs(20), || {
        healthy(address)
    });
    let topic = format!("{}/qos1", app.topics);
    publish_mqtt(&broker_address, &topic, 1, "before", None);
    wait_for("the first message", Duration::from_secs(10), || {
        ledger(address).contains_key(&format!("mqtt:{topic}:before"))
    });

    drop(broker);
    wait_for(
        "health to say the triggers are down",
        Duration::from_secs(20),
        || {
            let health = http(address, "GET", "/.well-known/spin/health", "");
            health.status == 503 && health.body.contains("mqtt-1")
        },
    );
    // Down for a while: reconnection backs off instead of spinning.
    std::thread::sleep(Duration::from_secs(2));
    let _broker = OwnServer::mosquitto(port);
    wait_for(
        "the triggers to subscribe again",
        Duration::from_secs(30),
        || healthy(address),
    );
    publish_mqtt(&broker_address, &topic, 1, "after", None);
    wait_for(
        "the message after the restart",
        Duration::from_secs(10),
        || ledger(address).contains_key(&format!("mqtt:{topic}:after")),
    );
    let log = app.served.stderr();
    // Three MQTT triggers, each retrying on its own.
    let retries = log.matches("the connection to").count();
    assert!(
        (3..=30).contains(&retries),
        "a few retries per trigger with backoff over ~2 s, not a busy loop: {retries}\n{log}"
    );
}

#[test]
fn sigterm_lets_a_running_handler_finish() {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let mqtt = required_env("SPINDLE_TEST_MQTT");
    let state = tempfile::tempdir().unwrap();
    let manifest = test_apps().join("triggers.toml");
    let channel = unique("channel");
    let topics = unique("topics");
    let env = [
        ("SPIN_VARIABLE_REDIS_HOST", redis.as_str()),
        ("SPIN_VARIABLE_MQTT_HOST", mqtt.as_str()),
        ("SPIN_VARIABLE_CHANNEL", channel.as_str()),
        ("SPIN_VARIABLE_TOPICS", topics.as_str()),
    ];
    let args = [
        manifest.to_str().unwrap(),
        "--state-dir",
        state.path().to_str().unwrap(),
    ];
    let served = Served::start(&args, &env);
    wait_for("the subscription", Duration::from_secs(20), || {
        healthy(&served.address)
    });
    assert_eq!(publish_redis(&redis, &channel, "slow:1500"), 1);
    std::thread::sleep(Duration::from_millis(500));
    let status = served.stop();
    assert!(status.success(), "{status:?}");

    // The handler's effect outlived the stop: the store on disk has it.
    let again = Served::start(&args, &env);
    assert_eq!(
        ledger(&again.address).get("redis:slow:1500"),
        Some(&1),
        "the handler that was running when SIGTERM came finished"
    );
}

#[test]
fn a_cron_trigger_fires_every_second_and_once_per_tick() {
    let state = tempfile::tempdir().unwrap();
    let manifest = test_apps().join("cron.toml");
    let served = Served::start(
        &[
            manifest.to_str().unwrap(),
            "--state-dir",
            state.path().to_str().unwrap(),
        ],
        &[],
    );
    std::thread::sleep(Duration::from_millis(4500));
    let ticks = ledger(&served.address);
    let stamps: Vec<u64> = ticks
        .keys()
        .map(|key| key.strip_prefix("cron:").unwrap().parse().unwrap())
        .collect();
    assert!(stamps.len() >= 3, "{ticks:?}");
    assert!(
        stamps.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "one tick per second, none skipped: {ticks:?}"
    );
    assert!(
        ticks.values().all(|count| *count == 1),
        "no tick twice: {ticks:?}"
    );
}

/// `spindle run` on the command app, with `env` (`KEY=VALUE`) for its component.
fn run_command(env: &[&str]) -> std::process::Output {
    let mut command = spindle_command();
    command.args(["run", test_apps().join("command.toml").to_str().unwrap()]);
    for entry in env {
        command.args(["-e", entry]);
    }
    command.output().expect("spindle runs")
}

#[test]
fn a_command_app_runs_once_and_exits_with_its_status() {
    let ok = run_command(&[]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        stdout.contains("command ran with [\"command\"]"),
        "{stdout}"
    );

    // WASI 0.2's `exit` carries success or failure only: any non-zero status is 1.
    let failed = run_command(&["EXIT_STATUS=3"]);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(
        !String::from_utf8_lossy(&failed.stderr).contains("trapped"),
        "an exit is not a trap: {failed:?}"
    );
    let trapped = run_command(&["TRAP=1"]);
    assert_eq!(trapped.status.code(), Some(1), "{trapped:?}");
    assert!(
        String::from_utf8_lossy(&trapped.stderr).contains("the command trapped"),
        "{trapped:?}"
    );
}

/// `spindle run` on a manifest in a folder of its own, whose sources are the built test apps.
fn run_manifest(manifest: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spin.toml");
    std::fs::write(
        &path,
        manifest.replace("target/", &format!("{}/target/", test_apps().display())),
    )
    .unwrap();
    let output = spindle_command()
        .args(["run", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .expect("spindle runs");
    assert!(!output.status.success(), "{output:?}");
    output
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn trigger_mistakes_are_refused_with_their_line() {
    let head = "spin_manifest_version = 2\n[application]\nname = \"bad\"\n";
    let sqs = run_manifest(&format!(
        "{head}[[trigger.sqs]]\nqueue_url = \"x\"\ncomponent = \"c\"\n[component.c]\nsource = \"target/wasm32-wasip2/release/command.wasm\"\n"
    ));
    let err = stderr_of(&sqs);
    assert!(
        err.contains("spin.toml:4:") && err.contains("trigger type `sqs` is not supported"),
        "{err}"
    );

    let cron = run_manifest(&format!(
        "{head}[[trigger.cron]]\ncron_expression = \"* * * * *\"\ncomponent = \"c\"\n[component.c]\nsource = \"target/wasm32-wasip2/release/cron_handler.wasm\"\n"
    ));
    let err = stderr_of(&cron);
    assert!(
        err.contains("spin.toml:5:19") && err.contains("has 5 fields"),
        "{err}"
    );

    let qos = run_manifest(&format!(
        "{head}[application.trigger.mqtt]\naddress = \"mqtt://127.0.0.1:1\"\n[[trigger.mqtt]]\ntopic = \"t\"\nqos = \"3\"\ncomponent = \"c\"\n[component.c]\nsource = \"target/wasm32-wasip2/release/mqtt_handler.wasm\"\n"
    ));
    let err = stderr_of(&qos);
    assert!(
        err.contains("spin.toml:8:7") && err.contains("qos `3`"),
        "{err}"
    );

    // A component built for HTTP cannot handle Redis messages: said when the app starts.
    let wrong = run_manifest(&format!(
        "{head}[application.trigger.redis]\naddress = \"redis://127.0.0.1:1\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"c\"\n[component.c]\nsource = \"target/wasm32-wasip2/release/headers.wasm\"\n"
    ));
    let err = stderr_of(&wrong);
    assert!(
        err.contains("does not export fermyon:spin/inbound-redis"),
        "{err}"
    );

    let mixed = run_manifest(&format!(
        "{head}[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n[[trigger.command]]\ncomponent = \"c\"\n[component.web]\nsource = \"target/wasm32-wasip2/release/headers.wasm\"\n[component.c]\nsource = \"target/wasm32-wasip2/release/command.wasm\"\n"
    ));
    let err = stderr_of(&mixed);
    assert!(
        err.contains("a command app has exactly one trigger"),
        "{err}"
    );
}

#[test]
fn a_redis_that_asks_for_a_password_gets_it_from_the_address_and_a_refusal_is_logged_with_its_reason()
 {
    required_env("SPINDLE_TEST_REDIS");
    let mqtt = required_env("SPINDLE_TEST_MQTT");
    let port = free_port();
    let _redis = OwnServer::redis_with(port, &["--requirepass", "s3cret"]);

    // No password: the server's own refusal is logged, and health says the trigger is down.
    let without = serve_triggers(&format!("127.0.0.1:{port}"), &mqtt);
    wait_for("the refusal to be logged", Duration::from_secs(20), || {
        without.served.stderr().contains("NOAUTH")
    });
    assert_eq!(
        http(
            &without.served.address,
            "GET",
            "/.well-known/spin/health",
            ""
        )
        .status,
        503
    );

    // The password in the address: subscribed, and the password is not logged.
    let with = serve_triggers(&format!(":s3cret@127.0.0.1:{port}"), &mqtt);
    wait_for("the subscription", Duration::from_secs(20), || {
        healthy(&with.served.address)
    });
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-a", "s3cret", "--no-auth-warning"])
        .args(["PUBLISH", &with.channel, "authenticated"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    wait_for("the message", Duration::from_secs(10), || {
        ledger(&with.served.address).contains_key("redis:authenticated")
    });
    assert!(
        !with.served.stderr().contains("s3cret"),
        "{}",
        with.served.stderr()
    );
}

#[test]
fn a_burst_of_qos_1_messages_is_all_handled_as_acknowledgements_keep_the_brokers_window_open() {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let mqtt = required_env("SPINDLE_TEST_MQTT");
    let app = serve_triggers(&redis, &mqtt);
    let address = &app.served.address;
    wait_for(
        "every trigger to subscribe",
        Duration::from_secs(20),
        || healthy(address),
    );
    // Far more than Mosquitto's in-flight window (20): a lost acknowledgement would stall it.
    let (host, port) = mqtt.rsplit_once(':').unwrap();
    let mut publisher = Command::new("mosquitto_pub")
        .args(["-h", host, "-p", port, "-q", "1", "-l"])
        .args(["-t", &format!("{}/qos1", app.topics)])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: String = (0..500).map(|n| format!("burst-{n}\n")).collect();
    std::io::Write::write_all(&mut publisher.stdin.take().unwrap(), lines.as_bytes()).unwrap();
    assert!(publisher.wait().unwrap().success());
    wait_for(
        "500 messages to be handled",
        Duration::from_secs(60),
        || {
            let info = http(address, "GET", "/.well-known/spin/info", "");
            let info: serde_json::Value = serde_json::from_str(&info.body).unwrap();
            info["triggers"]["mqtt-1"]["handled"] == 500
        },
    );
}
