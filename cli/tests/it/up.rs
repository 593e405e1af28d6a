//! `spindle up` on a Git copy of the example repository: every app answers, and commits switch
//! exactly the apps they change, without failing a request.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::support::{
    git, http, required_env, test_apps, unique,
    up::{Up, example_repository, live_within},
};

#[test]
fn commits_switch_only_what_they_change_without_failing_a_request() {
    let dir = example_repository();
    let repo = dir.path();
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

    // A new variable value: only greeter switches. (benches/up.rs measures how soon.)
    std::fs::write(&production, original.replace("Good day", "Good evening")).unwrap();
    git(repo, &["commit", "-qam", "evening"]);
    live_within(&greeter, "Good evening!", Duration::from_secs(30));
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

/// A Redis worker in the example repository: its handler records each message in the app's
/// key-value store (`GET /ledger?key=KEY` reads one), and `generation` is a variable to change.
fn add_worker(repo: &std::path::Path, redis: &str, channel: &str) {
    let worker = repo.join("worker");
    std::fs::create_dir_all(&worker).unwrap();
    for guest in ["redis_handler", "ledger_http"] {
        std::fs::copy(
            test_apps().join(format!("target/wasm32-wasip2/release/{guest}.wasm")),
            worker.join(format!("{guest}.wasm")),
        )
        .unwrap();
    }
    std::fs::write(
        worker.join("spin.toml"),
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"worker\"\n\
             [application.trigger.redis]\naddress = \"redis://{redis}\"\n\
             [variables]\ngeneration = {{ default = \"1\" }}\n\
             [[trigger.http]]\nroute = \"/ledger\"\ncomponent = \"ledger\"\n\
             [[trigger.redis]]\nchannel = \"{channel}\"\ncomponent = \"on-redis\"\n\
             [component.ledger]\nsource = \"ledger_http.wasm\"\nkey_value_stores = [\"default\"]\n\
             [component.on-redis]\nsource = \"redis_handler.wasm\"\nkey_value_stores = [\"default\"]\n"
        ),
    )
    .unwrap();
    let production = repo.join("environments/production.ncl");
    let text = std::fs::read_to_string(&production).unwrap().replace(
        "    counter = { namespace = \"web\", replicas = 2 },",
        "    counter = { namespace = \"web\", replicas = 2 },\n    \
         worker = { namespace = \"web\", source = \"worker/spin.toml\", variables.generation = \"1\" },",
    );
    std::fs::write(&production, text).unwrap();
}

/// How many times the worker recorded `message` from Redis.
fn recorded(address: &str, message: &str) -> u64 {
    let line = http(address, "GET", &format!("/ledger?key=redis:{message}"), "").body;
    line.trim()
        .rsplit_once('=')
        .and_then(|(_, count)| count.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_changed_trigger_app_is_swapped_without_losing_the_message_it_was_handling() {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let channel = unique("swap");
    let dir = example_repository();
    let repo = dir.path();
    add_worker(repo, &redis, &channel);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", "a worker"]);
    let up = Up::start(repo);
    let worker = up.address("worker");
    up.wait_for("ready: 4 app(s)");
    let publish = |message: &str| {
        let (host, port) = redis.rsplit_once(':').unwrap();
        let out = std::process::Command::new("redis-cli")
            .args(["-h", host, "-p", port, "PUBLISH", &channel, message])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while http(&worker, "GET", "/.well-known/spin/health", "").status != 200 {
        assert!(std::time::Instant::now() < deadline, "{}", up.output());
        std::thread::sleep(Duration::from_millis(50));
    }

    // A handler that takes 3 s is running when the commit that changes the app comes in.
    assert_eq!(publish("slow:3000"), "1");
    std::thread::sleep(Duration::from_millis(300));
    let production = repo.join("environments/production.ncl");
    let text = std::fs::read_to_string(&production).unwrap();
    std::fs::write(
        &production,
        text.replace(
            "variables.generation = \"1\"",
            "variables.generation = \"2\"",
        ),
    )
    .unwrap();
    git(repo, &["commit", "-qam", "generation 2"]);
    up.wait_for("switched worker");
    assert_eq!(
        recorded(&worker, "slow:3000"),
        0,
        "the handler was still running at the switch"
    );

    // The old version's handler finishes, once; the new version handles what comes next.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while recorded(&worker, "slow:3000") == 0 {
        assert!(std::time::Instant::now() < deadline, "{}", up.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    while http(&worker, "GET", "/.well-known/spin/health", "").status != 200 {
        assert!(std::time::Instant::now() < deadline, "{}", up.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(publish("after"), "1", "one subscriber after the switch");
    while recorded(&worker, "after") == 0 {
        assert!(std::time::Instant::now() < deadline, "{}", up.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(recorded(&worker, "slow:3000"), 1);
    assert_eq!(recorded(&worker, "after"), 1);
}

#[test]
fn a_commit_whose_app_would_not_run_here_is_not_served_and_says_why() {
    let dir = example_repository();
    let repo = dir.path();
    let up = Up::start(repo);
    let hello = up.address("hello");
    up.wait_for("ready: 3 app(s)");

    // `services` calls Spin's LLM, which spindle's runtime does not serve.
    let broker = repo.join("broker");
    std::fs::create_dir_all(&broker).unwrap();
    std::fs::copy(
        test_apps().join("target/wasm32-wasip2/release/services.wasm"),
        broker.join("services.wasm"),
    )
    .unwrap();
    std::fs::write(
        broker.join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"broker\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"services\"\n\
         [component.services]\nsource = \"services.wasm\"\n",
    )
    .unwrap();
    let production = repo.join("environments/production.ncl");
    let text = std::fs::read_to_string(&production).unwrap().replace(
        "    counter = { namespace = \"web\", replicas = 2 },",
        "    counter = { namespace = \"web\", replicas = 2 },\n    \
         broker = { namespace = \"web\", source = \"broker/spin.toml\" },",
    );
    std::fs::write(&production, text).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", "a broker"]);
    up.wait_for("imports `fermyon:spin/llm@2.0.0`");
    assert!(!up.output().contains("started  broker"), "{}", up.output());
    assert!(
        up.output().contains("environments/production.ncl:"),
        "{}",
        up.output()
    );
    assert!(http(&hello, "GET", "/", "").body.starts_with("Hello"));
}
