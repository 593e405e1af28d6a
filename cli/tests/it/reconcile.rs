//! `spindle apply` and `spindle reconcile` against the real test apiserver + controller-manager,
//! with real Git repositories: create, change, rename, delete, broken revisions, drift, mass
//! prunes, a crash half-way, webhooks and pushes.

use std::{
    collections::BTreeSet,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::{
    GitRepo, Output, free_port, http, kube_client, required_env, spindle, spindle_command, unique,
};
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use spindle_reconciler::cluster::Cluster;
use spindle_render::Object;

const SHIM_SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// An environment with `apps` (`name = { ... }` lines) in `namespace`, and one runtime.
/// An environment of `apps` in `namespace`, with a node runtime of its own (`spin-NAMESPACE`):
/// a RuntimeClass is cluster-wide, and each test's reconciler is its own instance, which may not
/// take another's.
fn environment(namespace: &str, apps: &[String]) -> String {
    let apps: Vec<String> = apps
        .iter()
        .map(|app| app.replace("NS", namespace))
        .collect();
    format!(
        "{{\n  apps = {{\n{}\n  }},\n  runtimes.spin-{namespace} = {{\n    shim = {{ version = \"1.0.0\", url = \"https://example.com/shim\", sha256 = \"{SHIM_SHA}\" }},\n    nodeSelector.wasm = \"yes\",\n  }},\n}}\n",
        apps.join("\n")
    )
}

fn app(name: &str, greeting: &str) -> String {
    format!(
        "    {name} = {{ namespace = \"NS\", image = \"ghcr.io/acme/{name}:1\", variables.greeting = \"{greeting}\" }},"
    )
}

/// An app with a runtime config, so that it also gets a Secret.
fn db_app(name: &str) -> String {
    format!(
        "    {name} = {{ namespace = \"NS\", image = \"ghcr.io/acme/{name}:1\", runtimeConfig.sqliteDatabases.default = {{ type = 'libsql, url = \"https://db.acme\", token = \"t0ken\" }} }},"
    )
}

/// `spindle apply` of the repository's HEAD as reconciler `instance` (with its ServiceAccount),
/// without waiting for pods (the test cluster has no kubelet).
/// The node policy the tests' reconciler is given: shims from `https://example.com/`.
const NODE_POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/fixtures/node-policy.yaml"
);

/// `spindle apply` of `repo` as the reconciler's ServiceAccount, with [`NODE_POLICY`].
fn apply(repo: &GitRepo, instance: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "apply",
        repo.0.path_str(),
        "--instance",
        instance,
        "--health-timeout",
        "0",
        "--node-policy",
        NODE_POLICY,
    ];
    args.extend_from_slice(extra);
    as_reconciler(&args)
}

fn assert_ok(out: &Output) {
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
}

/// Reads and changes objects of the test cluster.
struct Live {
    runtime: tokio::runtime::Runtime,
    cluster: Cluster,
}

/// A namespace of a test's own, deleted (with everything in it) when the test ends.
struct TestNamespace<'a>(&'a Live, String);

impl std::ops::Deref for TestNamespace<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.1
    }
}

impl Drop for TestNamespace<'_> {
    fn drop(&mut self) {
        let api = self.0.api("v1", "Namespace", "");
        let _ = self
            .0
            .runtime
            .block_on(api.delete(&self.1, &Default::default()));
    }
}

impl Live {
    fn namespace(&self, prefix: &str) -> TestNamespace<'_> {
        TestNamespace(self, unique(prefix))
    }

    fn new() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let cluster =
            runtime.block_on(async { Cluster::connect(kube_client().await).await.unwrap() });
        Live { runtime, cluster }
    }

    fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> kube::Api<kube::api::DynamicObject> {
        let mut probe = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "-"}});
        if kind != "Namespace" {
            probe["metadata"]["namespace"] = json!(namespace);
        }
        self.cluster.api(&Object::new(probe)).unwrap()
    }

    fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let api = self.api(api_version, kind, namespace);
        self.runtime
            .block_on(api.get_opt(name))
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap())
    }

    fn deployment(&self, namespace: &str, name: &str) -> Option<Value> {
        self.get("apps/v1", "Deployment", namespace, name)
    }

    /// Names of the objects of `kind` in `namespace` that carry spindle's label.
    fn names(&self, api_version: &str, kind: &str, namespace: &str) -> BTreeSet<String> {
        let api = self.api(api_version, kind, namespace);
        let params =
            kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=spindle");
        self.runtime
            .block_on(api.list(&params))
            .unwrap()
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect()
    }

    fn create(&self, object: Value) {
        let object = Object::new(object);
        let api = self.cluster.api(&object).unwrap();
        let value: kube::api::DynamicObject = serde_json::from_value(object.into_value()).unwrap();
        self.runtime
            .block_on(api.create(&Default::default(), &value))
            .unwrap();
    }

    /// Sets a Job's condition as the Job controller would when its pod ends. Kubernetes 1.31+
    /// accepts a finished status only whole: the interim condition (`SuccessCriteriaMet`,
    /// `FailureTarget`) beside the final one, no active pods, and a completion time for
    /// `Complete`.
    fn finish_job(&self, namespace: &str, name: &str, condition: &str) {
        let api = self.api("batch/v1", "Job", namespace);
        let (interim, counter) = match condition {
            "Complete" => ("SuccessCriteriaMet", "succeeded"),
            "Failed" => ("FailureTarget", "failed"),
            other => panic!("a Job finishes Complete or Failed, not {other}"),
        };
        let job = self.runtime.block_on(api.get(name)).unwrap();
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let started = job.data["status"]["startTime"]
            .as_str()
            .map_or_else(|| now.clone(), str::to_owned);
        let marked = |kind: &str| {
            json!({"type": kind, "status": "True", "reason": "Test",
                   "message": format!("marked {kind} by the test"), "lastTransitionTime": now})
        };
        let mut status = json!({"status": {
            "conditions": [marked(interim), marked(condition)],
            "startTime": started, "active": 0, "ready": 0, "terminating": 0, counter: 1,
        }});
        if counter == "succeeded" {
            status["status"]["completionTime"] = json!(now);
        }
        self.runtime
            .block_on(api.patch_status(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(status),
            ))
            .unwrap();
    }

    /// Installer Jobs (in spindle-system) for `runtime`, by node.
    fn installer_jobs(&self, runtime: &str) -> Vec<(String, String)> {
        let api = self.api("batch/v1", "Job", "spindle-system");
        let params =
            kube::api::ListParams::default().labels(&format!("spindle.dev/runtime={runtime}"));
        let mut jobs: Vec<(String, String)> = self
            .runtime
            .block_on(api.list(&params))
            .unwrap()
            .items
            .into_iter()
            .map(|job| {
                let node = job.metadata.labels.as_ref().unwrap()["spindle.dev/node"].clone();
                (node, job.metadata.name.unwrap())
            })
            .collect();
        jobs.sort();
        jobs
    }

    fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let api = self.api(api_version, kind, namespace);
        self.runtime
            .block_on(api.delete(name, &Default::default()))
            .unwrap();
    }

    fn patch(&self, api_version: &str, kind: &str, namespace: &str, name: &str, patch: Value) {
        let api = self.api(api_version, kind, namespace);
        self.runtime
            .block_on(api.patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(patch),
            ))
            .unwrap();
    }
}

fn env_value(deployment: &Value, name: &str) -> Option<String> {
    deployment
        .pointer("/spec/template/spec/containers/0/env")?
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?
        .get("value")?
        .as_str()
        .map(str::to_owned)
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer(&format!("/metadata/labels/{}", key.replace('/', "~1")))?
        .as_str()
}

#[test]
fn commits_create_change_rename_and_delete_exactly_their_objects() {
    let live = Live::new();
    let namespace = live.namespace("rc-life");
    let ns: &str = &namespace;
    let repo = GitRepo::new();
    let first = repo.commit(
        &environment(ns, &[app("web", "hi"), app("api", "yo"), db_app("store")]),
        "three apps",
    );
    let out = apply(&repo, ns, &[]);
    assert_ok(&out);
    assert!(
        out.stdout.contains(&format!("applied  Namespace {ns}\n")),
        "{}",
        out.stdout
    );
    let web = live.deployment(ns, "web").expect("web's Deployment");
    assert_eq!(
        env_value(&web, "SPIN_VARIABLE_GREETING").as_deref(),
        Some("hi")
    );
    assert_eq!(label(&web, "spindle.dev/revision"), Some(first.as_str()));
    assert!(live.get("v1", "Service", ns, "web").is_some());
    let secrets = live.names("v1", "Secret", ns);
    assert!(
        secrets
            .iter()
            .any(|s| s.starts_with("store-runtime-config-")),
        "the runtime config Secret: {secrets:?}"
    );
    let api_before = live.deployment(ns, "api").unwrap();

    // A variable changes: web's pod template changes (a rollout), api is not even sent.
    let second = repo.commit(
        &environment(
            ns,
            &[app("web", "hello"), app("api", "yo"), db_app("store")],
        ),
        "greet",
    );
    let out = apply(&repo, ns, &[]);
    assert_ok(&out);
    assert!(
        out.stdout
            .contains(&format!("applied  Deployment {ns}/web\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("1 applied, "),
        "only web changed:\n{}",
        out.stdout
    );
    let web_after = live.deployment(ns, "web").unwrap();
    assert_eq!(
        env_value(&web_after, "SPIN_VARIABLE_GREETING").as_deref(),
        Some("hello")
    );
    assert!(web_after["metadata"]["generation"].as_i64() > web["metadata"]["generation"].as_i64());
    assert_eq!(
        label(&web_after, "spindle.dev/revision"),
        Some(second.as_str())
    );
    let api_after = live.deployment(ns, "api").unwrap();
    assert_eq!(
        label(&api_after, "spindle.dev/revision"),
        Some(first.as_str()),
        "api is not sent again"
    );
    assert_eq!(
        api_after["metadata"]["generation"],
        api_before["metadata"]["generation"]
    );

    // A rename: the new app is created and the old one pruned.
    repo.commit(
        &environment(
            ns,
            &[app("web", "hello"), app("backend", "yo"), db_app("store")],
        ),
        "rename",
    );
    let out = apply(&repo, ns, &[]);
    assert_ok(&out);
    assert!(
        out.stdout
            .contains(&format!("pruned   Deployment {ns}/api\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("pruned   Service {ns}/api\n")),
        "{}",
        out.stdout
    );
    assert!(live.deployment(ns, "backend").is_some());
    assert!(live.deployment(ns, "api").is_none());

    // A deletion prunes exactly that app's objects.
    repo.commit(
        &environment(ns, &[app("web", "hello"), app("backend", "yo")]),
        "no store",
    );
    let out = apply(&repo, ns, &[]);
    assert_ok(&out);
    assert_eq!(
        live.names("apps/v1", "Deployment", ns),
        BTreeSet::from(["backend".into(), "web".into()])
    );
    assert_eq!(
        live.names("v1", "Service", ns),
        BTreeSet::from(["backend".into(), "web".into()])
    );
    assert!(
        live.names("v1", "Secret", ns).is_empty(),
        "the store's Secret is pruned"
    );

    // Nothing changed: nothing is sent.
    let out = apply(&repo, ns, &[]);
    assert_ok(&out);
    assert!(out.stdout.contains(": 0 applied, "), "{}", out.stdout);
}

#[test]
fn a_broken_commit_applies_nothing_and_status_says_why() {
    let live = Live::new();
    let namespace = live.namespace("rc-broken");
    let ns: &str = &namespace;
    let repo = GitRepo::new();
    let good = repo.commit(&environment(ns, &[app("web", "hi")]), "good");
    assert_ok(&apply(&repo, ns, &[]));
    let before = live.deployment(ns, "web").unwrap();

    let broken = environment(ns, &[app("web", "changed")]).replace("image =", "imag =");
    repo.commit(&broken, "typo");
    let out = apply(&repo, ns, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.assert_stderr_contains("environments/prod.ncl:3:");
    out.assert_stderr_contains("was not applied");
    let after = live.deployment(ns, "web").unwrap();
    assert_eq!(
        after["metadata"]["generation"], before["metadata"]["generation"],
        "nothing was applied"
    );
    assert_eq!(label(&after, "spindle.dev/revision"), Some(good.as_str()));
    assert_eq!(
        env_value(&after, "SPIN_VARIABLE_GREETING").as_deref(),
        Some("hi")
    );

    let status = spindle(&["status", "--instance", ns]);
    assert_eq!(status.code, 1, "not ready: {}", status.stdout);
    assert!(
        status.stdout.contains("False  ValidationFailed"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&good[..12]),
        "last applied is the good one: {}",
        status.stdout
    );
    assert!(
        status.stdout.contains("environments/prod.ncl:3:"),
        "{}",
        status.stdout
    );
    let json = spindle(&["status", "--instance", ns, "-o", "json"]);
    let parsed: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed[0]["lastAppliedRevision"], good);
    assert_eq!(
        parsed[0]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Stalled")
            .unwrap()["status"],
        "True"
    );
}

#[test]
fn an_app_that_would_not_run_on_its_runtime_applies_nothing() {
    let registry = required_env("SPINDLE_TEST_REGISTRY");
    let image = crate::check::push_broker_image();
    let live = Live::new();
    let namespace = live.namespace("rc-imports");
    let ns: &str = &namespace;
    let repo = GitRepo::new();
    let broker = format!("    broker = {{ namespace = \"NS\", image = \"{image}\" }},");
    repo.commit(&environment(ns, &[app("web", "hi"), broker]), "a broker");
    let out = apply(&repo, ns, &["--insecure-registry", &registry]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.assert_stderr_contains("environments/prod.ncl:4:");
    out.assert_stderr_contains("app `broker`");
    out.assert_stderr_contains("imports `fermyon:spin/llm@2.0.0`");
    out.assert_stderr_contains("nothing was applied");
    assert!(live.deployment(ns, "web").is_none(), "nothing was applied");
}

#[test]
fn drift_is_put_back_and_reported() {
    let live = Live::new();
    let namespace = live.namespace("rc-drift");
    let ns: &str = &namespace;
    let repo = GitRepo::new();
    repo.commit(&environment(ns, &[app("web", "hi")]), "one");
    assert_ok(&apply(&repo, ns, &[]));

    live.delete("v1", "Service", ns, "web");
    live.patch(
        "apps/v1",
        "Deployment",
        ns,
        "web",
        json!({"spec": {"template": {"spec": {"runtimeClassName": "other"}}}}),
    );
    let out = apply(&repo, ns, &[]);
    assert_ok(&out);
    assert!(
        out.stdout
            .contains(&format!("drifted  Service {ns}/web: deleted")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("drifted  Deployment {ns}/web: spec.template.spec")),
        "{}",
        out.stdout
    );
    assert!(
        live.get("v1", "Service", ns, "web").is_some(),
        "the Service is back"
    );
    let web = live.deployment(ns, "web").unwrap();
    assert_eq!(
        web["spec"]["template"]["spec"]["runtimeClassName"],
        format!("spin-{ns}")
    );

    // Changes to fields spindle does not own are not drift.
    live.patch(
        "apps/v1",
        "Deployment",
        ns,
        "web",
        json!({"metadata": {"annotations": {"team": "payments"}}}),
    );
    let out = apply(&repo, ns, &[]);
    assert!(!out.stdout.contains("drifted"), "{}", out.stdout);
}

#[test]
fn a_mass_prune_is_refused_until_allowed_and_protected_objects_stay() {
    let live = Live::new();
    let namespace = live.namespace("rc-mass");
    let ns: &str = &namespace;
    let repo = GitRepo::new();
    repo.commit(
        &environment(ns, &[app("a", "1"), app("b", "2"), app("c", "3")]),
        "three",
    );
    assert_ok(&apply(&repo, ns, &[]));

    repo.commit(&environment(ns, &[]), "emptied by mistake");
    let out = apply(&repo, ns, &[]);
    assert_eq!(out.code, 1);
    out.assert_stderr_contains("--allow-mass-prune");
    assert_eq!(
        live.names("apps/v1", "Deployment", ns).len(),
        3,
        "nothing pruned"
    );

    live.patch(
        "apps/v1",
        "Deployment",
        ns,
        "b",
        json!({"metadata": {"annotations": {"spindle.dev/prune": "disabled"}}}),
    );
    let out = apply(&repo, ns, &["--allow-mass-prune"]);
    assert_ok(&out);
    assert_eq!(
        live.names("apps/v1", "Deployment", ns),
        BTreeSet::from(["b".into()])
    );
}

#[test]
fn a_reconciler_killed_half_way_converges_without_orphans() {
    let live = Live::new();
    let namespace = live.namespace("rc-crash");
    let ns: &str = &namespace;
    let repo = GitRepo::new();
    let apps: Vec<String> = (0..150).map(|i| app(&format!("app{i:03}"), "hi")).collect();
    repo.commit(&environment(ns, &apps), "many apps");
    let mut child = reconciler_command()
        .args([
            "apply",
            repo.0.path_str(),
            "--instance",
            ns,
            "--health-timeout",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while live.names("apps/v1", "Deployment", ns).is_empty() {
        assert!(Instant::now() < deadline, "the apply never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let applied_before_the_kill = live.names("apps/v1", "Deployment", ns).len();
    assert!(
        applied_before_the_kill < 150,
        "the kill came after the apply had finished"
    );
    let inventory = live
        .get(
            "v1",
            "ConfigMap",
            "spindle-system",
            &format!("spindle-inventory-{ns}"),
        )
        .expect("the inventory was written before applying");
    assert!(
        inventory["data"]["inventory.json"]
            .as_str()
            .unwrap()
            .contains("\"applying\""),
        "it lists the objects being applied"
    );

    // The repository moves on without half of the apps; the next apply must remove whatever the
    // killed one created for them, and create the rest exactly once.
    let kept: Vec<String> = (0..150)
        .step_by(2)
        .map(|i| app(&format!("app{i:03}"), "hi"))
        .collect();
    repo.commit(&environment(ns, &kept), "half");
    let out = apply(&repo, ns, &["--allow-mass-prune"]);
    assert_ok(&out);
    let expected: BTreeSet<String> = (0..150).step_by(2).map(|i| format!("app{i:03}")).collect();
    assert_eq!(
        live.names("apps/v1", "Deployment", ns),
        expected,
        "killed after {applied_before_the_kill} Deployments"
    );
    assert_eq!(live.names("v1", "Service", ns), expected);
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// A repository holding `environment`, and a bare clone of it for a reconciler to follow
/// (pushes into it wake the reconciler at once).
fn followed(environment: &str) -> (GitRepo, tempfile::TempDir) {
    let origin = GitRepo::new();
    origin.commit(environment, "first");
    let bare = tempfile::tempdir().unwrap();
    crate::support::git(
        bare.path(),
        &["clone", "-q", "--bare", origin.0.path_str(), "."],
    );
    (origin, bare)
}

/// Commits `environment` and pushes it into `bare`; returns the commit id.
fn push(origin: &GitRepo, bare: &tempfile::TempDir, environment: &str) -> String {
    let commit = origin.commit(environment, "next");
    origin.git(&["push", "-q", bare.path().to_str().unwrap(), "main"]);
    commit
}

/// `spindle reconcile` following `bare` as instance `ns` (with the reconciler's ServiceAccount),
/// passing hourly unless woken, serving its endpoints on `address`, with `extra` flags; its stderr
/// goes to `log` when given. Killed when dropped.
fn follow(
    bare: &tempfile::TempDir,
    ns: &str,
    address: &str,
    extra: &[&str],
    log: Option<&std::path::Path>,
) -> Reconcile {
    let stderr = match log {
        Some(log) => Stdio::from(std::fs::File::create(log).unwrap()),
        None => Stdio::null(),
    };
    Reconcile(
        reconciler_command()
            .args([
                "reconcile",
                "--repo",
                bare.path().to_str().unwrap(),
                "--instance",
                ns,
            ])
            .args(["--interval", "3600", "--listen", address])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

struct Reconcile(Child);

impl Drop for Reconcile {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pushes_and_signed_webhooks_trigger_reconciles_at_once() {
    let live = Live::new();
    let namespace = live.namespace("rc-watch");
    let ns: &str = &namespace;
    let (origin, bare) = followed(&environment(ns, &[app("web", "one")]));
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "hook-s3cret\n").unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let _reconcile = follow(
        &bare,
        ns,
        &address,
        &[
            "--health-timeout",
            "0",
            "--webhook-secret-file",
            secret.path().to_str().unwrap(),
        ],
        None,
    );
    wait_until("the first reconcile", Duration::from_secs(60), || {
        std::net::TcpStream::connect(&address).is_ok()
            && http(&address, "GET", "/readyz", "").status == 200
    });
    assert_eq!(greeting_of(&live, ns).as_deref(), Some("one"));

    // A push into the repository is applied without waiting for the (hour-long) interval.
    push(&origin, &bare, &environment(ns, &[app("web", "two")]));
    let took = wait_until("the pushed commit", Duration::from_secs(20), || {
        greeting_of(&live, ns).as_deref() == Some("two")
    });
    eprintln!("push to applied: {took:?}");

    // A webhook with a bad signature is refused and triggers nothing; a good one reconciles (and
    // so corrects drift) at once.
    settle(&address);
    live.delete("v1", "Service", ns, "web");
    let body = r#"{"ref":"refs/heads/main"}"#;
    let bad = hook(&address, body, "sha256=0000");
    assert_eq!(bad.status, 401, "{bad:?}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        live.get("v1", "Service", ns, "web").is_none(),
        "a refused hook reconciles nothing"
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hook-s3cret").unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(hook(&address, body, &signature).status, 202);
    wait_until("the webhook's reconcile", Duration::from_secs(20), || {
        live.get("v1", "Service", ns, "web").is_some()
    });

    // The pass's counts are recorded once it has finished.
    wait_until(
        "the metrics of the webhook's pass",
        Duration::from_secs(20),
        || {
            http(&address, "GET", "/metrics", "")
                .body
                .contains("spindle_drift_corrected_total 1\n")
        },
    );
    let metrics = http(&address, "GET", "/metrics", "").body;
    let reconciles: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("spindle_reconciles_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(reconciles >= 3, "{metrics}");
}

/// Waits until the reconciler has been idle for a second.
fn settle(address: &str) {
    let count = || {
        http(address, "GET", "/metrics", "")
            .body
            .lines()
            .find_map(|l| {
                l.strip_prefix("spindle_reconciles_total ")
                    .map(str::to_owned)
            })
            .unwrap()
    };
    let mut last = count();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = count();
        if now == last {
            return;
        }
        last = now;
    }
}

fn hook(address: &str, body: &str, signature: &str) -> crate::support::HttpResponse {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /hook HTTP/1.1\r\nHost: spindle\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    crate::support::parse_response(&raw)
}

#[test]
fn the_install_manifests_are_the_committed_ones_and_the_apiserver_accepts_them() {
    let out = spindle(&["install", "--print"]);
    assert_ok(&out);
    let committed = std::fs::read_to_string("../deploy/spindle.yaml").unwrap();
    if std::env::var_os("SPINDLE_UPDATE_GOLDEN").is_some() {
        std::fs::write("../deploy/spindle.yaml", &out.stdout).unwrap();
    } else {
        assert_eq!(
            out.stdout, committed,
            "deploy/spindle.yaml is stale: run with SPINDLE_UPDATE_GOLDEN=1"
        );
    }
    let live = Live::new();
    for document in out.stdout.split("---\n").filter(|d| !d.trim().is_empty()) {
        let value: Value = serde_yaml::from_str(document).unwrap();
        let object = Object::new(value);
        // The namespace must exist for the dry runs of what goes in it.
        let dry_run = object.kind() != "Namespace";
        live.runtime
            .block_on(live.cluster.apply(&object, dry_run))
            .unwrap_or_else(|err| panic!("{}: {err:#}", object.display_name()));
    }
}

/// Test nodes (no kubelet behind them), deleted when the test ends.
struct Nodes<'a>(&'a Live, Vec<String>);

impl Drop for Nodes<'_> {
    fn drop(&mut self) {
        let api = self.0.api("v1", "Node", "");
        for node in &self.1 {
            let _ = self
                .0
                .runtime
                .block_on(api.delete(node, &Default::default()));
        }
    }
}

#[test]
fn node_runtimes_roll_out_node_by_node_stop_on_failure_and_reinstall_new_shims() {
    let live = Live::new();
    let id = unique("roll");
    let runtime = id.replace('-', "");
    let names: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| format!("{id}-{n}"))
        .collect();
    let nodes = Nodes(&live, names.clone());
    for node in &nodes.1 {
        live.create(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {"rollout-test": id}}}));
    }
    let environment = |sha: char| {
        format!(
            "{{\n  apps = {{}},\n  runtimes.{runtime} = {{\n    shim = {{ version = \"1.0.0\", url = \"https://example.com/shim\", sha256 = \"{}\" }},\n    nodeSelector.rollout-test = \"{id}\",\n    rollout.maxUnavailable = 1,\n  }},\n}}\n",
            sha.to_string().repeat(64)
        )
    };
    let repo = GitRepo::new();
    repo.commit(&environment('a'), "runtime");
    let node = |n: usize| live.get("v1", "Node", "", &names[n]).unwrap();
    let provisioned = |n: usize| {
        let node = node(n);
        (
            label(&node, &format!("runtime.spindle.dev/{runtime}")).map(str::to_owned),
            node.pointer(&format!(
                "/metadata/annotations/runtime.spindle.dev~1{runtime}"
            ))
            .and_then(Value::as_str)
            .map(str::to_owned),
        )
    };

    // The first wave: one node.
    assert_ok(&apply(&repo, &id, &[]));
    let jobs = live.installer_jobs(&runtime);
    assert_eq!(
        jobs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [names[0].as_str()]
    );

    // Its Job completes: the node is marked provisioned, and the next pass moves to the next node.
    live.finish_job("spindle-system", &jobs[0].1, "Complete");
    assert_ok(&apply(&repo, &id, &[]));
    assert_eq!(
        provisioned(0),
        (Some("provisioned".into()), Some("a".repeat(64)))
    );
    assert_ok(&apply(&repo, &id, &[]));
    let jobs = live.installer_jobs(&runtime);
    assert_eq!(
        jobs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [names[1].as_str()],
        "node a's Job is pruned, b's created"
    );

    // b's install fails: the rollout stops there, c is not touched, and the status says why.
    live.finish_job("spindle-system", &jobs[0].1, "Failed");
    apply(&repo, &id, &[]);
    let out = apply(&repo, &id, &[]);
    assert!(
        out.stdout.contains("the node runtime rollout stopped"),
        "{}",
        out.stdout
    );
    assert_eq!(live.installer_jobs(&runtime).len(), 1, "no Job for c");
    assert_eq!(provisioned(2), (None, None));
    let status = spindle(&["status", "--instance", &id]);
    assert!(status.stdout.contains("RolloutFailed"), "{}", status.stdout);

    // A new shim: node a is reinstalled first, though it runs the old one.
    repo.commit(&environment('b'), "new shim");
    assert_ok(&apply(&repo, &id, &[]));
    let jobs = live.installer_jobs(&runtime);
    assert_eq!(
        jobs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [names[0].as_str()]
    );
    let job = live
        .get("batch/v1", "Job", "spindle-system", &jobs[0].1)
        .unwrap();
    assert_eq!(
        job["metadata"]["annotations"]["spindle.dev/shim-sha256"],
        "b".repeat(64)
    );
    assert_eq!(
        provisioned(0).0.as_deref(),
        Some("provisioned"),
        "apps keep node a meanwhile"
    );

    // Node a leaves the selector: the runtime is taken off it, and then its label and annotation.
    let api = live.api("v1", "Node", "");
    let unlabel = json!({"metadata": {"labels": {"rollout-test": null}}});
    live.runtime
        .block_on(api.patch(
            &names[0],
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&unlabel),
        ))
        .unwrap();
    assert_ok(&apply(&repo, &id, &[]));
    let uninstall = live
        .installer_jobs(&runtime)
        .into_iter()
        .find(|(node, job)| node == &names[0] && job.starts_with("uninstall-"))
        .expect("an uninstall Job for node a");
    let job = live
        .get("batch/v1", "Job", "spindle-system", &uninstall.1)
        .unwrap();
    let args = job["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert_eq!(args[0], "uninstall", "{args}");
    assert!(
        !args.to_string().contains("--shim-sha256"),
        "uninstall needs no shim: {args}"
    );
    live.finish_job("spindle-system", &uninstall.1, "Complete");
    assert_ok(&apply(&repo, &id, &[]));
    assert_eq!(
        provisioned(0),
        (None, None),
        "node a is no longer provisioned"
    );
}

#[test]
fn reconcile_follows_the_highest_tag_a_pinned_commit_and_a_sub_path() {
    let live = Live::new();
    let namespace = live.namespace("rc-follow");
    let ns: &str = &namespace;
    let repo = GitRepo::new();
    let commit_in_deploy = |greeting: &str| {
        repo.0.write(
            "deploy/environments/prod.ncl",
            &environment(ns, &[app("web", greeting)]),
        );
        repo.0.write("README.md", greeting);
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-qm", greeting]);
        repo.head()
    };
    let v1_2 = commit_in_deploy("v1.2");
    repo.git(&["tag", "v1.2.0"]);
    commit_in_deploy("v1.10");
    repo.git(&["tag", "v1.10.0"]);
    commit_in_deploy("main");
    let once = |follow: &str| reconcile_once(&repo, follow, ns, &["--path", "deploy"]);
    let greeting = || greeting_of(&live, ns);

    assert_ok(&once("tag:v*"));
    assert_eq!(
        greeting().as_deref(),
        Some("v1.10"),
        "v1.10.0 is higher than v1.2.0"
    );
    assert_ok(&once(&format!("commit:{v1_2}")));
    assert_eq!(greeting().as_deref(), Some("v1.2"));
    assert_ok(&once("main"));
    assert_eq!(greeting().as_deref(), Some("main"));
    let missing = once("tag:v9*");
    assert_eq!(missing.code, 2);
    missing.assert_stderr_contains("has no tag matching `v9*`");
}

#[test]
fn an_empty_webhook_secret_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("webhook-secret");
    std::fs::write(&secret, " \n").unwrap();
    let out = as_reconciler(&[
        "reconcile",
        "--repo",
        dir.path().to_str().unwrap(),
        "--webhook-secret-file",
        secret.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.assert_stderr_contains("is empty, which would let anyone trigger a reconcile");
}

#[test]
fn objects_spindle_did_not_create_are_left_alone_until_their_owner_lets_it_adopt_them() {
    let live = Live::new();
    let ns = live.namespace("owned");
    // Someone else's namespace, with a Deployment named like an app of the repository.
    live.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": *ns}}));
    live.create(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": *ns, "labels": {"team": "b"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"spindle.dev/app": "web"}},
                 "template": {"metadata": {"labels": {"spindle.dev/app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }));
    live.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "theirs", "namespace": *ns}, "data": {"k": "v"}}));
    let repo = GitRepo::new();
    repo.commit(
        &environment(&ns, &[app("web", "hi"), app("api", "hi")]),
        "two apps, one taken",
    );
    let instance = unique("own");

    let out = apply(&repo, &instance, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.assert_stderr_contains(&format!(
        "Deployment {}/web exists and is not spindle's (field managers:",
        &*ns
    ));
    out.assert_stderr_contains(&format!("Namespace {} exists and is not spindle's", &*ns));
    out.assert_stderr_contains(&format!(
        "kubectl annotate deployment -n {} web spindle.dev/adopt=true",
        &*ns
    ));
    // Nothing of the pass was applied: their Deployment is as it was, the other app is absent.
    let web = live.deployment(&ns, "web").unwrap();
    assert_eq!(web["metadata"]["labels"], json!({"team": "b"}));
    assert!(live.deployment(&ns, "api").is_none());
    assert!(live.get("v1", "Service", &ns, "api").is_none());

    // The pull request's live diff says so before anyone applies.
    let diff = spindle(&["diff", repo.0.path_str(), "--live", "--instance", &instance]);
    assert_eq!(diff.code, 1, "{}", diff.stderr);
    assert!(
        diff.stdout.contains(&format!(
            "! conflict: Deployment {}/web exists and is not spindle's",
            &*ns
        )),
        "{}",
        diff.stdout
    );

    // Their owner lets spindle take both over.
    let adopt = json!({"metadata": {"annotations": {"spindle.dev/adopt": "true"}}});
    live.patch("v1", "Namespace", "", &ns, adopt.clone());
    live.patch("apps/v1", "Deployment", &ns, "web", adopt);
    assert_ok(&apply(&repo, &instance, &[]));
    let web = live.deployment(&ns, "web").unwrap();
    assert_eq!(
        web["metadata"]["labels"]["spindle.dev/instance"],
        instance.as_str()
    );
    assert!(live.deployment(&ns, "api").is_some());
    assert!(live.get("v1", "ConfigMap", &ns, "theirs").is_some());
}

#[test]
fn two_instances_in_one_cluster_prune_only_their_own_objects() {
    let live = Live::new();
    let (ns_a, ns_b) = (live.namespace("inst-a"), live.namespace("inst-b"));
    let (repo_a, repo_b) = (GitRepo::new(), GitRepo::new());
    let (instance_a, instance_b) = (unique("a"), unique("b"));
    repo_a.commit(&environment(&ns_a, &[app("web", "a")]), "a");
    repo_b.commit(&environment(&ns_b, &[app("web", "b")]), "b");
    assert_ok(&apply(&repo_a, &instance_a, &[]));
    assert_ok(&apply(&repo_b, &instance_b, &[]));

    // B's repository now claims A's app: the Deployment is A's, so B stops instead of taking it.
    repo_b.commit(
        &environment(&ns_b, &[app("web", "b")]).replace(
            "  apps = {\n",
            &format!(
                "  apps = {{\n    stolen = {{ namespace = \"{}\", image = \"ghcr.io/acme/web:1\" }},\n",
                &*ns_a
            ),
        ),
        "b reaches into a",
    );
    let out = apply(&repo_b, &instance_b, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.assert_stderr_contains(&format!(
        "Namespace {} exists and is spindle instance `{instance_a}`'s",
        &*ns_a
    ));

    // Each instance removing its app prunes its own objects, never the other's.
    repo_b.commit(&environment(&ns_b, &[]), "b empties");
    assert_ok(&apply(&repo_b, &instance_b, &["--allow-mass-prune"]));
    assert!(live.deployment(&ns_b, "web").is_none());
    assert!(live.deployment(&ns_a, "web").is_some(), "B pruned A's app");
    repo_a.commit(&environment(&ns_a, &[]), "a empties");
    assert_ok(&apply(&repo_a, &instance_a, &["--allow-mass-prune"]));
    assert!(live.deployment(&ns_a, "web").is_none());
}

#[test]
fn a_namespace_spindle_created_is_kept_while_someone_elses_objects_live_in_it() {
    let live = Live::new();
    let ns = live.namespace("shared");
    let repo = GitRepo::new();
    let instance = unique("keep");
    repo.commit(&environment(&ns, &[app("web", "hi")]), "one app");
    assert_ok(&apply(&repo, &instance, &[]));
    live.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "theirs", "namespace": *ns}, "data": {"k": "v"}}));

    repo.commit(&environment(&ns, &[]), "the app goes");
    let out = apply(&repo, &instance, &["--allow-mass-prune"]);
    assert_ok(&out);
    // The reconciler's ServiceAccount may not list every kind in the namespace (ConfigMaps
    // among them), so it cannot tell the namespace is empty, and keeps it.
    assert!(
        out.stdout.contains(&format!(
            "kept     Namespace {}: spindle may not list",
            &*ns
        )),
        "{}",
        out.stdout
    );
    assert!(live.deployment(&ns, "web").is_none(), "the app is pruned");
    let namespace = live.get("v1", "Namespace", "", &ns).unwrap();
    assert!(
        namespace["metadata"]["deletionTimestamp"].is_null(),
        "the namespace is kept"
    );
    assert!(live.get("v1", "ConfigMap", &ns, "theirs").is_some());
}

#[test]
fn a_render_that_leaves_the_allowed_namespaces_is_refused_before_anything_is_sent() {
    let live = Live::new();
    let (ns, other) = (live.namespace("allowed"), live.namespace("other"));
    let repo = GitRepo::new();
    let instance = unique("tenant");
    let elsewhere = app("api", "hi").replace("NS", &other);
    repo.commit(
        &environment(&ns, &[app("web", "hi"), elsewhere]),
        "two namespaces",
    );
    let out = apply(&repo, &instance, &["--allowed-namespaces", &ns]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.assert_stderr_contains("environments/prod.ncl:");
    out.assert_stderr_contains(&format!(
        "app `api` may not run in `{}`: this reconciler may only write {}",
        &*other, &*ns
    ));
    assert!(
        live.deployment(&ns, "web").is_none(),
        "nothing of the pass is sent"
    );

    for (namespace, why) in [
        ("default", "give the app a `namespace` of its own"),
        ("spindle-system", "spindle keeps its own state there"),
    ] {
        repo.commit(&environment(namespace, &[app("web", "hi")]), namespace);
        let out = apply(&repo, &instance, &[]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        out.assert_stderr_contains(&format!("app `web` may not run in `{namespace}`: {why}"));
    }
}

/// Applies the objects of `spindle install --print EXTRA...` that `wanted` picks.
fn apply_install(live: &Live, extra: &[&str], wanted: impl Fn(&Object) -> bool) {
    let mut args = vec!["install", "--print"];
    args.extend_from_slice(extra);
    let manifests = spindle(&args);
    assert_ok(&manifests);
    for document in manifests
        .stdout
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
    {
        let object = Object::new(serde_yaml::from_str(document).unwrap());
        if wanted(&object) {
            live.runtime
                .block_on(live.cluster.apply(&object, false))
                .unwrap_or_else(|err| panic!("{}: {err:#}", object.display_name()));
        }
    }
}

/// Applies the shipped manifests but the reconciler's own Deployment and Service: its namespace,
/// ServiceAccount and RBAC.
fn install_rbac(live: &Live) {
    apply_install(live, &[], |object| {
        !matches!(object.kind(), "Deployment" | "Service")
    });
}

/// The roles `spindle install --print --service-account ACCOUNT` adds so that the reconciler may
/// act as ACCOUNT (the shipped ones let it impersonate no one).
fn install_impersonation(live: &Live, account: &str) {
    apply_install(live, &["--service-account", account], |object| {
        object.name().starts_with("spindle-impersonate-")
    });
}

/// Whether the apiserver lets the reconciler's ServiceAccount impersonate `name` (a `users`,
/// `groups` or `serviceaccounts` resource; the last in `namespace`), asked with a
/// SubjectAccessReview.
fn reconciler_may_impersonate(live: &Live, resource: &str, namespace: &str, name: &str) -> bool {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    // A review's metadata must be empty: built typed, not as a rendered object.
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": "system:serviceaccount:spindle-system:spindle",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:spindle-system", "system:authenticated"],
            "resourceAttributes": {"verb": "impersonate", "resource": resource, "namespace": namespace, "name": name},
        },
    }))
    .unwrap();
    let reviews: kube::Api<SubjectAccessReview> = kube::Api::all(live.cluster.client().clone());
    let answer = live
        .runtime
        .block_on(reviews.create(&Default::default(), &review))
        .unwrap();
    answer.status.expect("a review has a status").allowed
}

#[test]
fn the_shipped_reconciler_impersonates_no_one_and_service_account_only_its_account() {
    let live = Live::new();
    install_rbac(&live);
    let tenant = live.namespace("imp");
    live.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": *tenant}}));
    let may = |resource: &str, namespace: &str, name: &str| {
        reconciler_may_impersonate(&live, resource, namespace, name)
    };
    let never = [
        ("users", "", "admin"),
        ("users", "", "system:admin"),
        ("groups", "", "system:masters"),
        ("serviceaccounts", "kube-system", "default"),
        (
            "serviceaccounts",
            "kube-system",
            "clusterrole-aggregation-controller",
        ),
        ("serviceaccounts", &*tenant, "other"),
    ];
    for (resource, namespace, name) in never {
        assert!(
            !may(resource, namespace, name),
            "shipped RBAC: impersonate {resource} {namespace}/{name}"
        );
    }
    assert!(
        !may("serviceaccounts", &tenant, "deployer"),
        "before --service-account"
    );

    install_impersonation(&live, &format!("{}/deployer", &*tenant));
    assert!(may("serviceaccounts", &tenant, "deployer"));
    assert!(may(
        "groups",
        "",
        &format!("system:serviceaccounts:{}", &*tenant)
    ));
    for (resource, namespace, name) in never {
        assert!(
            !may(resource, namespace, name),
            "with --service-account: impersonate {resource} {namespace}/{name}"
        );
    }
    assert!(
        !may("serviceaccounts", "default", "deployer"),
        "the same name elsewhere"
    );
}

/// (resource, verb) pairs an account may use.
type Permissions = BTreeSet<(String, String)>;

/// The permission table of docs/reconciler.md: (resource, verb) pairs granted cluster-wide and
/// those granted in the reconciler's own namespace only.
fn documented_permissions() -> (Permissions, Permissions) {
    let docs = std::fs::read_to_string("../docs/reconciler.md").unwrap();
    let table = docs
        .split("| resource | verbs | scope | why |")
        .nth(1)
        .expect("docs/reconciler.md has the permission table");
    let (mut cluster, mut own) = (BTreeSet::new(), BTreeSet::new());
    for row in table
        .lines()
        .skip(2)
        .take_while(|line| line.trim_start().starts_with('|'))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (resources, verbs, scope) = (cells[1], cells[2], cells[3]);
        let into = match scope {
            "cluster" => &mut cluster,
            "its namespace" => &mut own,
            other => panic!("docs/reconciler.md: unknown scope `{other}` in {row}"),
        };
        for resource in resources.split(", ") {
            for verb in verbs.split(", ") {
                into.insert((resource.to_owned(), verb.to_owned()));
            }
        }
    }
    (cluster, own)
}

/// What the apiserver says the account of `kubeconfig` may do in `namespace`
/// (SelfSubjectRulesReview), as (resource, verb) pairs, leaving out the `impersonate` grants by
/// `resourceNames` that tests of `--service-account` add beside (which
/// `the_shipped_reconciler_impersonates_no_one_and_service_account_only_its_account` covers).
fn reviewed_permissions(kubeconfig: &std::path::Path, namespace: &str) -> Permissions {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use kube::config::{Config, KubeConfigOptions, Kubeconfig};
        let kubeconfig = Kubeconfig::read_from(kubeconfig).unwrap();
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let reviews: kube::Api<k8s_openapi::api::authorization::v1::SelfSubjectRulesReview> =
            kube::Api::all(client);
        let review = serde_json::from_value(json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "metadata": {}, "spec": {"namespace": namespace},
        }))
        .unwrap();
        let answer = reviews.create(&Default::default(), &review).await.unwrap();
        let status = answer.status.expect("a rules review has a status");
        assert!(
            !status.incomplete,
            "the rules review is incomplete: {status:?}"
        );
        let mut granted = BTreeSet::new();
        for rule in status.resource_rules {
            let named = rule
                .resource_names
                .as_ref()
                .is_some_and(|names| !names.is_empty());
            for resource in rule.resources.unwrap_or_default() {
                for verb in rule
                    .verbs
                    .iter()
                    .filter(|verb| !(named && *verb == "impersonate"))
                {
                    granted.insert((resource.clone(), verb.clone()));
                }
            }
        }
        granted
    })
}

#[test]
fn the_shipped_permissions_are_the_documented_ones() {
    let live = Live::new();
    let reconciler = reconciler_kubeconfig();
    // What every ServiceAccount may do (self reviews, discovery, trust bundles, as this
    // Kubernetes release grants them) is not the reconciler's to document.
    let baseline_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("baseline-kubeconfig-{}", std::process::id()));
    token_kubeconfig(&live, "default", &baseline_path);
    let (cluster, own) = documented_permissions();
    assert!(cluster.contains(&("deployments".to_owned(), "patch".to_owned())));
    for (namespace, documented) in [
        ("some-apps-namespace", cluster.clone()),
        ("spindle-system", cluster.union(&own).cloned().collect()),
    ] {
        let baseline = reviewed_permissions(&baseline_path, namespace);
        let granted: BTreeSet<_> = reviewed_permissions(reconciler, namespace)
            .difference(&baseline)
            .cloned()
            .collect();
        assert_eq!(granted, documented, "in {namespace}");
    }
}

/// A kubeconfig at `path` for the test apiserver that authenticates as ServiceAccount
/// `spindle-system/ACCOUNT`, with a token minted by the TokenRequest API (ServiceAccounts have
/// had no token Secrets since Kubernetes 1.24).
fn token_kubeconfig(live: &Live, account: &str, path: &std::path::Path) {
    let accounts = live.api("v1", "ServiceAccount", "spindle-system");
    let request = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 86400},
    });
    // A namespace's `default` account is made by the controller-manager, a moment after it.
    let minted: Value = (0..60)
        .find_map(|_| {
            let minted = live.runtime.block_on(accounts.create_subresource(
                "token",
                account,
                &Default::default(),
                &request,
            ));
            match minted {
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    std::thread::sleep(Duration::from_millis(500));
                    None
                }
                minted => Some(minted),
            }
        })
        .unwrap_or_else(|| panic!("ServiceAccount {account} never appeared"))
        .unwrap_or_else(|err| panic!("a token for ServiceAccount {account}: {err}"));
    let token = minted["status"]["token"]
        .as_str()
        .expect("a TokenRequest answers with a token")
        .to_owned();
    let admin = std::fs::read_to_string(required_env("KUBECONFIG")).unwrap();
    let (start, end) = (
        admin.find("users:").unwrap(),
        admin.find("contexts:").unwrap(),
    );
    let kubeconfig = format!(
        "{}users:\n- name: spindle-testenv-admin\n  user: {{token: {token}}}\n{}",
        &admin[..start],
        &admin[end..]
    );
    std::fs::write(path, kubeconfig).unwrap();
}

/// The kubeconfig every reconciler in these tests runs with: the ServiceAccount of the shipped
/// manifests, so that a permission they lack fails a test. Made once per test run.
fn reconciler_kubeconfig() -> &'static std::path::Path {
    static KUBECONFIG: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    KUBECONFIG.get_or_init(|| {
        let live = Live::new();
        install_rbac(&live);
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("reconciler-kubeconfig-{}", std::process::id()));
        token_kubeconfig(&live, "spindle", &path);
        path
    })
}

/// The `spindle` binary, run as the reconciler's ServiceAccount.
fn reconciler_command() -> Command {
    let mut command = spindle_command();
    command.env("KUBECONFIG", reconciler_kubeconfig());
    command
}

/// `spindle reconcile --once` of `repo` following `follow` as instance `instance`, as the
/// reconciler's ServiceAccount, without waiting for health.
fn reconcile_once(repo: &GitRepo, follow: &str, instance: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "reconcile",
        "--once",
        "--repo",
        repo.0.path_str(),
        "--follow",
        follow,
        "--instance",
        instance,
        "--health-timeout",
        "0",
    ];
    args.extend_from_slice(extra);
    as_reconciler(&args)
}

/// The greeting the `web` app of `namespace` is deployed with.
fn greeting_of(live: &Live, namespace: &str) -> Option<String> {
    env_value(
        &live.deployment(namespace, "web").unwrap(),
        "SPIN_VARIABLE_GREETING",
    )
}

/// Runs `spindle ARGS` as the reconciler's ServiceAccount.
fn as_reconciler(args: &[&str]) -> Output {
    reconciler_command().args(args).output().unwrap().into()
}

#[test]
fn node_runtimes_are_installed_only_within_the_node_policy() {
    let live = Live::new();
    let id = unique("policy");
    let runtime = id.replace('-', "");
    let (control, worker) = (format!("{id}-control"), format!("{id}-worker"));
    let _nodes = Nodes(&live, vec![control.clone(), worker.clone()]);
    live.create(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": control,
        "labels": {"policy-test": id, "node-role.kubernetes.io/control-plane": ""}}}),
    );
    live.create(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": worker,
        "labels": {"policy-test": id}}}),
    );
    let environment = |url: &str| {
        format!(
            "{{\n  apps = {{}},\n  runtimes.{runtime} = {{\n    shim = {{ version = \"1.0.0\", url = \"{url}\", sha256 = \"{SHIM_SHA}\" }},\n    nodeSelector.policy-test = \"{id}\",\n    rollout.maxUnavailable = 2,\n  }},\n}}\n"
        )
    };
    let repo = GitRepo::new();
    repo.commit(&environment("https://example.com/shim"), "a runtime");

    // No policy: the RuntimeClass is applied, nothing is installed, and the status says why.
    let out = as_reconciler(&[
        "apply",
        repo.0.path_str(),
        "--instance",
        &id,
        "--health-timeout",
        "0",
    ]);
    assert_ok(&out);
    assert!(
        live.get("node.k8s.io/v1", "RuntimeClass", "", &runtime)
            .is_some()
    );
    assert_eq!(live.installer_jobs(&runtime), []);
    let status = spindle(&["status", "--instance", &id, "-o", "json"]);
    assert!(
        status.stdout.contains(&format!(
            "node runtimes not installed ({runtime}): this reconciler has no node policy"
        )),
        "{}",
        status.stdout
    );

    // With the policy: a Job for the worker; the control-plane node is skipped.
    assert_ok(&apply(&repo, &id, &[]));
    let jobs = live.installer_jobs(&runtime);
    assert_eq!(
        jobs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [worker.as_str()]
    );

    // A commit that takes the shim from elsewhere is refused at its line; nothing is sent.
    repo.commit(&environment("https://evil.example.net/shim"), "elsewhere");
    let out = apply(&repo, &id, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.assert_stderr_contains("environments/prod.ncl:4:");
    out.assert_stderr_contains("is not allowed by the node policy");
    assert_eq!(live.installer_jobs(&runtime), jobs);
}

#[test]
fn the_shipped_permissions_are_enough_and_a_missing_verb_is_named() {
    let live = Live::new();
    let ns = live.namespace("least");
    let id = unique("rbac");
    let node = format!("{id}-node");
    let _nodes = Nodes(&live, vec![node.clone()]);
    live.create(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node, "labels": {"rbac-test": id}}}));
    let as_sa = |repo: &GitRepo, instance: &str| apply(repo, instance, &[]);
    let runtime = id.replace('-', "");
    let environment = |greeting: &str| {
        format!(
            "{{\n  apps.web = {{ namespace = \"{}\", image = \"ghcr.io/acme/web:1\", variables.greeting = \"{greeting}\" }},\n  runtimes.{runtime} = {{\n    shim = {{ version = \"1.0.0\", url = \"https://example.com/shim\", sha256 = \"{SHIM_SHA}\" }},\n    nodeSelector.rbac-test = \"{id}\",\n  }},\n}}\n",
            &*ns
        )
    };
    let repo = GitRepo::new();
    repo.commit(&environment("hi"), "an app and a runtime");
    let instance = unique("sa");
    // Apps, the RuntimeClass and an installer Job, as the ServiceAccount.
    assert_ok(&as_sa(&repo, &instance));
    assert!(live.deployment(&ns, "web").is_some());
    let jobs = live.installer_jobs(&runtime);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    // The Job completes: the node is labelled provisioned, which needs `patch` on nodes.
    live.finish_job("spindle-system", &jobs[0].1, "Complete");
    assert_ok(&as_sa(&repo, &instance));
    let labelled = live.get("v1", "Node", "", &node).unwrap();
    assert_eq!(
        label(&labelled, &format!("runtime.spindle.dev/{runtime}")),
        Some("provisioned"),
        "{labelled}"
    );

    // A copy of the reconciler's ServiceAccount whose ClusterRole lacks `patch` on Deployments:
    // changing the app fails before anything is sent, naming what is missing (the apiserver
    // answers an access review for each resource and namespace first).
    let reduced = format!("spindle-reduced-{}", std::process::id());
    let role = live
        .get(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "",
            "spindle-reconciler",
        )
        .unwrap();
    let mut rules = role["rules"].as_array().unwrap().clone();
    for rule in &mut rules {
        if rule["apiGroups"] == json!(["apps"]) {
            rule["verbs"] = json!(["get", "list", "create", "delete"]);
        }
    }
    let subject =
        json!([{"kind": "ServiceAccount", "name": reduced, "namespace": "spindle-system"}]);
    let rbac = "rbac.authorization.k8s.io/v1";
    for object in [
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": reduced, "namespace": "spindle-system"}}),
        json!({"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": reduced}, "rules": rules}),
        json!({"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": reduced},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reduced},
               "subjects": subject}),
        json!({"apiVersion": rbac, "kind": "RoleBinding",
               "metadata": {"name": reduced, "namespace": "spindle-system"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "spindle-state"},
               "subjects": subject}),
    ] {
        live.runtime
            .block_on(live.cluster.apply(&Object::new(object), false))
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    token_kubeconfig(&live, &reduced, &kubeconfig);
    repo.commit(
        &environment("changed"),
        "a change the reconciler may not make",
    );
    let denied: Output = spindle_command()
        .args(["apply", repo.0.path_str(), "--instance", &instance])
        .args(["--health-timeout", "0"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap()
        .into();
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(
        denied.stderr.contains(&format!(
            "was not applied: the reconciler may not patch deployments.apps in namespace {}",
            &*ns
        )),
        "{}",
        denied.stderr
    );
    let web = live.deployment(&ns, "web").unwrap();
    assert_eq!(
        env_value(&web, "SPIN_VARIABLE_GREETING").as_deref(),
        Some("hi"),
        "nothing of the pass is sent"
    );
}

#[test]
fn a_leader_elected_reconciler_makes_its_missing_system_namespace() {
    let live = Live::new();
    let namespace = live.namespace("lease-ns");
    let system = live.namespace("lease-system");
    let ns: &str = &namespace;
    let (_origin, bare) = followed(&environment(ns, &[app("web", "one")]));
    let address = format!("127.0.0.1:{}", free_port());
    // As the test's admin: the shipped RBAC gives the reconciler its state in its own
    // namespace, which the install manifests make.
    let _reconcile = Reconcile(
        spindle_command()
            .args(["reconcile", "--repo", bare.path().to_str().unwrap()])
            .args([
                "--instance",
                ns,
                "--leader-elect",
                "--system-namespace",
                &system,
            ])
            .args([
                "--interval",
                "1",
                "--health-timeout",
                "0",
                "--listen",
                &address,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the leader's first apply", Duration::from_secs(60), || {
        live.deployment(ns, "web").is_some()
    });
    let lease = live.get(
        "coordination.k8s.io/v1",
        "Lease",
        &system,
        &format!("spindle-{ns}"),
    );
    assert!(lease.is_some(), "the Lease is in the namespace it made");
}

#[test]
fn a_second_replica_takes_over_when_the_leader_is_killed_and_only_the_leader_writes() {
    let live = Live::new();
    let namespace = live.namespace("failover");
    let ns: &str = &namespace;
    let (origin, bare) = followed(&environment(ns, &[app("web", "one")]));
    let logs = tempfile::tempdir().unwrap();
    let replica = |identity: &str, address: &str| {
        let log = std::fs::File::create(logs.path().join(identity)).unwrap();
        Reconcile(
            reconciler_command()
                .args(["reconcile", "--repo", bare.path().to_str().unwrap()])
                .args(["--instance", ns, "--identity", identity, "--leader-elect"])
                .args([
                    "--lease-duration",
                    "3",
                    "--interval",
                    "1",
                    "--health-timeout",
                    "0",
                ])
                .args(["--listen", address])
                .env("SPINDLE_LOG", "spindle_reconciler=info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };
    let readyz = |address: &str| {
        std::net::TcpStream::connect(address)
            .ok()
            .map(|_| http(address, "GET", "/readyz", ""))
    };
    let (a, b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut first = replica("replica-a", &a);
    wait_until(
        "replica a to lead and apply",
        Duration::from_secs(60),
        || readyz(&a).is_some_and(|r| r.status == 200),
    );
    let _second = replica("replica-b", &b);
    wait_until("replica b to follow", Duration::from_secs(30), || {
        readyz(&b)
            .is_some_and(|r| r.status == 503 && r.body.contains("following the leader: replica-a"))
    });
    let lease = live
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "spindle-system",
            &format!("spindle-{ns}"),
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");

    // The leader dies without a word; the follower takes the Lease once it goes stale.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let takeover = wait_until("replica b to take over", Duration::from_secs(20), || {
        readyz(&b).is_some_and(|r| r.status == 200 && r.body.contains("leader: replica-b"))
    });
    eprintln!("takeover after the leader was killed: {takeover:?}");
    assert!(takeover < Duration::from_secs(10), "{takeover:?}");

    // The new leader applies what comes next.
    push(&origin, &bare, &environment(ns, &[app("web", "two")]));
    wait_until(
        "the new leader to apply a push",
        Duration::from_secs(30),
        || greeting_of(&live, ns).as_deref() == Some("two"),
    );

    // Replica b passed only once it led: no pass of its own before it took the Lease.
    let log = std::fs::read_to_string(logs.path().join("replica-b")).unwrap();
    let led = log.find("leading as replica-b").expect("b says it leads");
    let first_pass = log.find("reconciling").expect("b reconciles");
    assert!(led < first_pass, "{log}");
    // The status is written at the end of b's pass, which may trail the objects it applied.
    wait_until(
        "the status to name replica-b as leader",
        Duration::from_secs(30),
        || {
            spindle(&["status", "--instance", ns, "-o", "json"])
                .stdout
                .contains("\"leader\": \"replica-b\"")
        },
    );
}

#[test]
fn a_push_is_not_held_up_by_a_pass_waiting_for_health() {
    let live = Live::new();
    let namespace = live.namespace("yield");
    let ns: &str = &namespace;
    let (origin, bare) = followed(&environment(ns, &[app("web", "one")]));
    let address = format!("127.0.0.1:{}", free_port());
    // The test cluster runs no pods, so the Deployment never becomes available: every pass
    // would wait the whole two minutes for it.
    let _reconcile = follow(&bare, ns, &address, &["--health-timeout", "120"], None);
    wait_until("the first apply", Duration::from_secs(60), || {
        live.deployment(ns, "web").is_some()
    });
    push(&origin, &bare, &environment(ns, &[app("web", "two")]));
    let took = wait_until("the push to be applied", Duration::from_secs(30), || {
        greeting_of(&live, ns).as_deref() == Some("two")
    });
    eprintln!("push applied during a health wait after {took:?}");
}

#[test]
fn an_environments_service_account_bounds_what_its_repository_can_do() {
    let live = Live::new();
    let (own, foreign) = (live.namespace("tenant"), live.namespace("not-theirs"));
    // The tenant's ServiceAccount may edit its own namespace, nothing else.
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": *own,
            "annotations": {"spindle.dev/adopt": "true"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "deployer", "namespace": *own}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "deployer", "namespace": *own},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": *own}]}),
        // Namespaces and RuntimeClasses are cluster-wide: the platform team lets it keep them.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": format!("{}-deployer", &*own)},
            "rules": [{"apiGroups": ["", "node.k8s.io"], "resources": ["namespaces", "runtimeclasses"],
                       "verbs": ["get", "list", "create", "patch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("{}-deployer", &*own)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": format!("{}-deployer", &*own)},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": *own}]}),
    ] {
        live.create(object);
    }
    let repo = GitRepo::new();
    let elsewhere = app("api", "hi").replace("NS", &foreign);
    repo.commit(
        &environment(&own, &[app("web", "hi"), elsewhere]),
        "two namespaces",
    );
    let account = format!("{}/deployer", &*own);
    install_impersonation(&live, &account);
    let out = apply(&repo, &unique("tenant"), &["--service-account", &account]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.assert_stderr_contains(&format!(
        "was not applied: ServiceAccount {account} may not"
    ));
    out.assert_stderr_contains(&format!(
        "create deployments.apps in namespace {}",
        &*foreign
    ));
    assert!(
        !out.stderr
            .contains(&format!("deployments.apps in namespace {};", &*own)),
        "{}",
        out.stderr
    );
    assert!(
        live.deployment(&own, "web").is_none(),
        "nothing of the pass is sent"
    );
}

#[test]
fn a_state_map_changed_by_someone_else_is_read_again_not_overwritten_blind() {
    let live = Live::new();
    let namespace = live.namespace("occ");
    let ns: &str = &namespace;
    let (origin, bare) = followed(&environment(ns, &[app("web", "one")]));
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("reconcile.log");
    let address = format!("127.0.0.1:{}", free_port());
    let _reconcile = follow(&bare, ns, &address, &["--health-timeout", "0"], Some(&log));
    let inventory = format!("spindle-inventory-{ns}");
    wait_until("the first inventory", Duration::from_secs(60), || {
        live.get("v1", "ConfigMap", "spindle-system", &inventory)
            .is_some()
    });
    // Someone else touches the inventory behind the reconciler's back.
    live.patch(
        "v1",
        "ConfigMap",
        "spindle-system",
        &inventory,
        json!({"metadata": {"annotations": {"touched-by": "someone"}}}),
    );
    let second = push(&origin, &bare, &environment(ns, &[app("web", "two")]));
    wait_until("the second inventory", Duration::from_secs(30), || {
        live.get("v1", "ConfigMap", "spindle-system", &inventory)
            .is_some_and(|map| {
                map["data"]["inventory.json"]
                    .as_str()
                    .is_some_and(|text| text.contains(&second))
            })
    });
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains(&format!(
            "ConfigMap {inventory} changed since this reconciler read it"
        )),
        "{log}"
    );
}

/// Signing keys made with Debian's `ssh-keygen` and `gpg`, and git configured to use them.
struct Signers {
    dir: tempfile::TempDir,
}

impl Signers {
    fn new() -> Signers {
        let dir = tempfile::Builder::new()
            .prefix("sig")
            .tempdir_in("/tmp")
            .unwrap();
        let run = |program: &str, args: &[&str]| {
            let out = Command::new(program)
                .args(args)
                .env("GNUPGHOME", dir.path().join("gnupg"))
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{program} {args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        for name in ["alice", "mallory"] {
            run(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", name],
            );
        }
        let alice = std::fs::read_to_string(dir.path().join("alice.pub")).unwrap();
        std::fs::write(
            dir.path().join("allowed_signers"),
            format!("alice@example.com namespaces=\"git\" {alice}"),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("gnupg")).unwrap();
        std::fs::set_permissions(
            dir.path().join("gnupg"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        run(
            "gpg",
            &[
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                "Tess <t@example.com>",
                "ed25519",
                "sign",
                "never",
            ],
        );
        let keys = run("gpg", &["--batch", "--armor", "--export", "t@example.com"]);
        std::fs::write(dir.path().join("keys.asc"), keys).unwrap();
        let wrapper = dir.path().join("gpg");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nGNUPGHOME={} exec gpg \"$@\"\n",
                dir.path().join("gnupg").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Signers { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// git's options to sign as `who`: `alice` or `mallory` (SSH), or `tess` (OpenPGP).
    fn git_options(&self, who: &str) -> Vec<String> {
        match who {
            "tess" => vec![
                "-c".into(),
                format!("gpg.program={}", self.path("gpg")),
                "-c".into(),
                "user.signingkey=t@example.com".into(),
            ],
            ssh => vec![
                "-c".into(),
                "gpg.format=ssh".into(),
                "-c".into(),
                format!("user.signingkey={}", self.path(&format!("{ssh}.pub"))),
            ],
        }
    }

    /// Commits `environment` signed by `who` (unsigned when `None`).
    fn commit(&self, repo: &GitRepo, environment: &str, who: Option<&str>) {
        repo.0.write("environments/prod.ncl", environment);
        repo.git(&["add", "-A"]);
        let mut args: Vec<String> = who.map(|w| self.git_options(w)).unwrap_or_default();
        args.extend(["commit", "-qm", "change"].map(String::from));
        if who.is_some() {
            args.push("-S".into());
        }
        repo.git(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Tags HEAD as `name`: signed by `who`, or a lightweight tag when `None`.
    fn tag(&self, repo: &GitRepo, name: &str, who: Option<&str>) {
        let mut args: Vec<String> = who.map(|w| self.git_options(w)).unwrap_or_default();
        args.push("tag".into());
        if who.is_some() {
            args.extend(["-s", "-m", "release"].map(String::from));
        }
        args.push(name.into());
        repo.git(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

impl Drop for Signers {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.dir.path().join("gnupg"))
            .status();
    }
}

#[test]
fn only_revisions_signed_by_trusted_keys_are_applied() {
    let live = Live::new();
    let namespace = live.namespace("signed");
    let ns: &str = &namespace;
    let signers = Signers::new();
    let repo = GitRepo::new();
    let (ssh, pgp) = (
        format!("ssh:{}", signers.path("allowed_signers")),
        format!("pgp:{}", signers.path("keys.asc")),
    );
    let reconcile =
        |follow: &str| reconcile_once(&repo, follow, ns, &["--verify", &ssh, "--verify", &pgp]);
    let greeting = || greeting_of(&live, ns).unwrap();
    let status = || spindle(&["status", "--instance", ns, "-o", "json"]).stdout;

    // Signed by alice, an allowed SSH signer: applied.
    signers.commit(
        &repo,
        &environment(ns, &[app("web", "by alice")]),
        Some("alice"),
    );
    assert_ok(&reconcile("main"));
    assert_eq!(greeting(), "by alice");

    // Unsigned, and signed by a key nobody listed: not evaluated, the last good one stays.
    for (who, why) in [
        (None, "is not signed"),
        (Some("mallory"), "which is not an allowed signer"),
    ] {
        let sneaky = format!("sneaky {who:?}");
        signers.commit(&repo, &environment(ns, &[app("web", &sneaky)]), who);
        let out = reconcile("main");
        assert_ne!(out.code, 0, "{who:?}: {}", out.stdout);
        let status = status();
        assert!(
            status.contains("VerificationFailed") && status.contains(why),
            "{who:?}: {status}"
        );
        assert!(status.contains(&repo.head()), "{status}");
        assert_eq!(greeting(), "by alice");
    }

    // Signed with the trusted OpenPGP key: applied.
    signers.commit(
        &repo,
        &environment(ns, &[app("web", "by tess")]),
        Some("tess"),
    );
    assert_ok(&reconcile("main"));
    assert_eq!(greeting(), "by tess");

    // Following tags, the tag's signature counts: a signed tag is followed ...
    signers.commit(&repo, &environment(ns, &[app("web", "tagged")]), None);
    signers.tag(&repo, "v1.0.0", Some("alice"));
    assert_ok(&reconcile("tag:v*"));
    assert_eq!(greeting(), "tagged");
    // ... a higher tag without a signature is not.
    signers.commit(
        &repo,
        &environment(ns, &[app("web", "untagged")]),
        Some("alice"),
    );
    signers.tag(&repo, "v1.1.0", None);
    let out = reconcile("tag:v*");
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        status().contains("tag v1.1.0 is a lightweight tag"),
        "{}",
        status()
    );
    assert_eq!(greeting(), "tagged");
    // ... nor is an old signed tag object published again under a higher name.
    repo.git(&["tag", "-d", "v1.1.0"]);
    let old_tag = {
        let out = Command::new("git")
            .args(["rev-parse", "refs/tags/v1.0.0"])
            .current_dir(repo.0.path())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    repo.git(&["update-ref", "refs/tags/v9.0.0", &old_tag]);
    let out = reconcile("tag:v*");
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        status().contains("a signed tag published under another name"),
        "{}",
        status()
    );
}
