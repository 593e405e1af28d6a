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
    git, http,
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
