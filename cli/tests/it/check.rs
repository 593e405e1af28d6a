//! `spindle check` on the example repository and on a table of broken inputs: each broken input
//! must exit 1 with an error that names the file, line and column and says what is wrong.

use crate::support::{
    GitRepo, Repo, assert_golden,
    hostile_registry::{HostileRegistry, Misbehaviour},
    spindle, test_apps,
};

#[test]
fn the_example_repository_is_valid_in_every_environment() {
    for env in ["production", "staging"] {
        let out = spindle(&["check", crate::support::EXAMPLE, "--env", env]);
        assert_eq!(out.code, 0, "{env}: {}", out.stderr);
        assert!(
            out.stdout
                .contains(&format!("environment {env} is valid: 3 apps, 1 runtime")),
            "{}",
            out.stdout
        );
        for app in ["hello", "counter", "greeter"] {
            assert!(
                out.stdout.contains(&format!("app      {app}")),
                "{}",
                out.stdout
            );
        }
    }
}

#[test]
fn a_node_policy_refuses_a_runtime_at_its_line() {
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(policy.path(), "installerImages: [ghcr.io/spindle-dev/]\n").unwrap();
    let policy = policy.path().to_str().unwrap();
    let out = spindle(&[
        "check",
        crate::support::EXAMPLE,
        "--env",
        "production",
        "--policy",
        policy,
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "runtimes.ncl:6:15: runtime `spindle`: installer image \
             `registry.example.com/spindle/node-installer:0.1.0` is not allowed by the node policy"
        ),
        "{}",
        out.stderr
    );
    std::fs::write(policy, "installerImages: [registry.example.com/spindle/]\n").unwrap();
    let out = spindle(&[
        "check",
        crate::support::EXAMPLE,
        "--env",
        "production",
        "--node-policy",
        policy,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn environment_overrides_apply() {
    let out = spindle(&["check", crate::support::EXAMPLE, "--env", "production"]);
    assert!(
        out.stdout.contains("replicas 2-10 (cpu 70%)"),
        "{}",
        out.stdout
    );
    let out = spindle(&["check", crate::support::EXAMPLE, "--env", "staging"]);
    assert!(
        out.stdout.contains("hello                staging"),
        "{}",
        out.stdout
    );
}

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// (case, entry file name, entry text, expected `file:line:col` or "", expected message part)
fn broken_inputs() -> Vec<(
    &'static str,
    &'static str,
    String,
    &'static str,
    &'static str,
)> {
    let runtime = format!(
        r#"runtimes.spin.shim = {{ version = "1", url = "https://example.com/shim", sha256 = "{SHA}" }}"#
    );
    vec![
        ("syntax error", "prod.ncl", r#"{ apps.web = { image = "a/b" "#.into(), "prod.ncl:1:29", "unexpected end of file when parsing environments/prod.ncl"),
        ("contract violation", "prod.ncl", r#"{ apps.web = { image = "a/b", replicas = "three" } }"#.into(), "prod.ncl:1:42", "`replicas`: expected a number"),
        ("unknown field", "prod.ncl", r#"{ apps.web = { image = "a/b", replica = 3 } }"#.into(), "prod.ncl:1:14", "extra field `replica`"),
        ("duplicate app", "prod.ncl", "{ apps = {\n  web = { image = \"a/b\" },\n  web = { image = \"c/d\" },\n} }".into(), "prod.ncl:2:19", "non mergeable terms"),
        ("missing runtime", "prod.ncl", r#"{ apps.web = { image = "a/b", runtime = "nope" } }"#.into(), "prod.ncl:1:41", "runtime `nope` is not defined"),
        ("route collision", "prod.ncl", "{ apps = {\n  a = { image = \"a/b\", ingress.host = \"x.example.com\" },\n  b = { image = \"a/c\", ingress.host = \"x.example.com\" },\n} }".into(), "prod.ncl:3:", "route x.example.com/ is already taken by app `a`"),
        ("bad image reference", "prod.ncl", r#"{ apps.web.image = "Not An Image" }"#.into(), "prod.ncl:1:20", "not a valid OCI image reference"),
        ("non-terminating program", "prod.ncl", "let rec f = fun n => if n < 0 then 0 else f n in { apps.web.replicas = f 1 }".into(), "", "evaluation did not finish within"),
        ("huge allocation", "prod.ncl", r#"{ apps.web.image = std.string.join "" (std.array.generate (fun i => std.string.join "" (std.array.replicate 100000 "x")) 100000) }"#.into(), "", "evaluation needed more than"),
        ("import outside the repository", "prod.ncl", r#"let secret = import "../../../../etc/passwd" in { apps = {} }"#.into(), "prod.ncl:1:14", "could not find import"),
        ("absolute import", "prod.ncl", r#"let secret = import "/etc/hostname" in { apps = {} }"#.into(), "prod.ncl:1:14", "could not find import"),
        ("app name not a DNS label", "prod.ncl", r#"{ apps.Web.image = "a/b" }"#.into(), "prod.ncl:1:12", "app name `Web` is not a DNS-1123 label"),
        ("bad variable name", "prod.ncl", r#"{ apps.web = { image = "a/b", variables."Api-Key" = "x" } }"#.into(), "prod.ncl:1:", "`Api-Key` is not a Spin variable name"),
        ("missing source file", "prod.ncl", r#"{ apps.web.source = "apps/web/spin.toml" }"#.into(), "prod.ncl:1:21", "`apps/web/spin.toml` does not exist in the repository"),
        ("bad shim digest", "prod.ncl", r#"{ runtimes.spin.shim = { version = "1", url = "https://x", sha256 = "abc" } }"#.into(), "prod.ncl:1:", "expected 64 lower-case hex digits"),
        ("neither image nor source", "prod.ncl", r#"{ apps.web.replicas = 2 }"#.into(), "prod.ncl:1:", "has neither `image`"),
        ("type error", "prod.ncl", r#"{ apps.web.replicas = 1 + "a" }"#.into(), "prod.ncl:1:27", "dynamic type error"),
        ("autoscaling without a CPU request", "prod.ncl", r#"{ apps.web = { image = "a/b", autoscaling = { minReplicas = 1, maxReplicas = 2 } } }"#.into(), "prod.ncl:1:", "needs `resources.requests.cpu`"),
        ("autoscaling bounds", "prod.ncl", r#"{ apps.web = { image = "a/b", autoscaling = { minReplicas = 5, maxReplicas = 2 } } }"#.into(), "prod.ncl:1:", "minReplicas <= maxReplicas"),
        ("runtime not chosen", "prod.ncl", format!("{{ apps.web.image = \"a/b\", {runtime}, runtimes.other = runtimes.spin & {{ runtimeClass.name = \"other\" }} }}"), "prod.ncl:1:", "must name its `runtime`"),
        ("app in a cluster namespace", "prod.ncl", r#"{ apps.web = { image = "a/b", namespace = "kube-system" } }"#.into(), "prod.ncl:1:43", "may not run in `kube-system`"),
        ("yaml wrong type", "prod.yaml", "apps:\n  web:\n    image: a/b\n    replicas: three\n".into(), "prod.yaml:4:", "`replicas`: expected a number"),
        ("yaml unknown field", "prod.yaml", "apps:\n  web:\n    image: a/b\n    replicaz: 3\n".into(), "prod.yaml:", "extra field `replicaz`"),
    ]
}

#[test]
fn broken_inputs_give_a_precise_error_and_exit_1() {
    let mut failures = Vec::new();
    for (case, file, text, at, message) in broken_inputs() {
        let repo = Repo::new();
        repo.write(&format!("environments/{file}"), &text);
        // Enough memory to show the deadline, enough time to show the memory cap.
        let (timeout, memory) = match case {
            "non-terminating program" => ("0.5", "4096"),
            "huge allocation" => ("60", "64"),
            _ => ("5", "512"),
        };
        let out = spindle(&[
            "check",
            repo.path_str(),
            "--eval-timeout",
            timeout,
            "--eval-memory",
            memory,
        ]);
        let first_line = out.stderr.lines().next().unwrap_or_default().to_owned();
        let at_ok = at.is_empty() || first_line.contains(&format!("environments/{at}"));
        if out.code != 1 || !at_ok || !first_line.contains(message) {
            failures.push(format!(
                "{case}: exit {} (want 1), want `{at}` and `{message}` in the first line:\n{}",
                out.code, out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn errors_show_the_source_line_and_a_caret() {
    let repo = Repo::new();
    repo.write(
        "environments/production.ncl",
        "{\n  apps.web = {\n    image = \"a/b\",\n    replicas = \"three\",\n  },\n}\n",
    );
    let out = spindle(&["check", repo.path_str()]);
    assert_eq!(out.code, 1);
    let expected = format!(
        "{}/environments/production.ncl:4:16: contract broken by the value of `replicas`: expected a number\n  |\n4 |     replicas = \"three\",\n  |                ^\n",
        repo.path_str()
    );
    assert!(out.stderr.starts_with(&expected), "{}", out.stderr);
}

#[test]
fn several_errors_are_reported_at_once() {
    let repo = Repo::new();
    repo.write(
        "environments/production.ncl",
        r#"{ apps = { a = { image = "BAD" }, b = { image = "a/b", runtime = "nope" } } }"#,
    );
    let out = spindle(&["check", repo.path_str()]);
    assert_eq!(out.code, 1);
    out.assert_stderr_contains("`BAD` is not a valid OCI image reference");
    out.assert_stderr_contains("runtime `nope` is not defined");
    out.assert_stderr_contains("2 errors in environment");
}

#[test]
fn usage_errors_exit_2() {
    let out = spindle(&["check", crate::support::EXAMPLE]);
    assert_eq!(out.code, 2);
    out.assert_stderr_contains(
        "several environments (production, staging): choose one with --env NAME",
    );

    let out = spindle(&["check", crate::support::EXAMPLE, "--env", "qa"]);
    assert_eq!(out.code, 2);
    out.assert_stderr_contains("no environment `qa` (have: production, staging)");

    let empty = Repo::new();
    let out = spindle(&["check", empty.path_str()]);
    assert_eq!(out.code, 2);
    out.assert_stderr_contains("has no environments");
}

#[test]
fn imports_between_repository_files_resolve() {
    let repo = Repo::new();
    repo.write(
        "shared/apps.ncl",
        r#"{ web = { image = "a/b", replicas = 2 } }"#,
    );
    repo.write("shared/extra.yaml", "api:\n  image: a/c\n");
    repo.write(
        "environments/production.ncl",
        r#"{ apps = (import "../shared/apps.ncl") & (import "../shared/extra.yaml") & { web.replicas | force = 5 } }"#,
    );
    let out = spindle(&["check", repo.path_str()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("2 apps, 0 runtimes"), "{}", out.stdout);
    assert!(out.stdout.contains("replicas 5"), "{}", out.stdout);
}

#[test]
fn json_schema_describes_the_model() {
    let out = spindle(&["schema"]);
    assert_eq!(out.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema is JSON");
    let app = &schema["$defs"]["App"]["properties"];
    for field in [
        "image",
        "source",
        "replicas",
        "autoscaling",
        "variables",
        "runtimeConfig",
        "ingress",
        "runtime",
    ] {
        assert!(
            app.get(field).is_some(),
            "App.{field} missing from the schema"
        );
    }
    assert_eq!(schema["$defs"]["App"]["additionalProperties"], false);
}

#[test]
fn check_knows_each_apps_triggers_and_refuses_one_its_runtime_does_not_run() {
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden/render");
    let out = spindle(&["check", &format!("{golden}/triggers/repo")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for line in [
        "(triggers cron, redis)",
        "(triggers command)",
        "(triggers http, mqtt)",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }

    // containerd-shim-spin has no cron trigger: refused at the app's source, before any cluster.
    let out = spindle(&["check", &format!("{golden}/triggers-unsupported/repo")]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr
            .contains("prod.ncl:4:14: app `nightly` has a cron trigger")
            && out.stderr.contains("containerd-shim-spin"),
        "{}",
        out.stderr
    );
}

/// A repository holding `apps` (name, guest), each built beside its `spin.toml`, on spindle's
/// runtime.
fn repo_of_built_apps(apps: &[(&str, &str)]) -> Repo {
    let repo = Repo::new();
    write_built_apps(&repo, apps);
    repo
}

/// Writes `apps` (name, guest), each built beside its `spin.toml`, into `repo`, and an
/// environment that holds them on spindle's runtime.
fn write_built_apps(repo: &Repo, apps: &[(&str, &str)]) {
    let mut environment = String::from("{\n");
    for (name, guest) in apps {
        let wasm = std::fs::read(
            test_apps()
                .join("target/wasm32-wasip2/release")
                .join(format!("{guest}.wasm")),
        )
        .unwrap();
        std::fs::create_dir_all(repo.path().join(name)).unwrap();
        std::fs::write(repo.path().join(format!("{name}/{guest}.wasm")), wasm).unwrap();
        repo.write(
            &format!("{name}/spin.toml"),
            &format!(
                "spin_manifest_version = 2\n[application]\nname = \"{name}\"\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"{guest}\"\n\
                 [component.{guest}]\nsource = \"{guest}.wasm\"\n\
                 allowed_outbound_hosts = [\"mqtt://127.0.0.1:1883\"]\n"
            ),
        );
        environment.push_str(&format!(
            "  apps.{name} = {{\n    namespace = \"web\",\n    source = \"{name}/spin.toml\",\n    \
             image = \"registry.example/web/{name}:1\",\n  }},\n"
        ));
    }
    environment.push_str(
        "  runtimes.spindle.shim = {\n    version = \"0.1.0\",\n    \
         url = \"https://example.com/containerd-shim-spindle-v1\",\n    \
         sha256 = \"4444444444444444444444444444444444444444444444444444444444444444\",\n  },\n}\n",
    );
    repo.write("environments/prod.ncl", &environment);
}

#[test]
fn a_refused_app_matches_the_reviewed_golden_check_and_pull_request_comment() {
    // The base has `good` alone; the working tree adds `broker`, whose `services` component
    // calls Spin's LLM, which spindle's runtime does not serve.
    let repo = GitRepo::new();
    write_built_apps(&repo.0, &[("good", "kv")]);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-qm", "good"]);
    write_built_apps(&repo.0, &[("good", "kv"), ("broker", "services")]);
    let root = repo.0.path_str();

    let check = spindle(&["check", root, "--no-pull"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert_golden(
        "capabilities/check.stderr.txt",
        &check.stderr.replace(root, "<repo>"),
    );

    let diff = spindle(&[
        "diff",
        root,
        "--base",
        "HEAD",
        "--offline",
        "--format",
        "markdown",
    ]);
    assert_eq!(diff.code, 2, "{}", diff.stderr);
    let base = &repo.head()[..12];
    assert_golden(
        "capabilities/diff.md",
        &diff.stdout.replace(root, "<repo>").replace(base, "<base>"),
    );
}

#[test]
fn check_refuses_an_app_whose_components_import_what_its_runtime_does_not_provide() {
    // `services` calls Spin's LLM, which spindle's runtime does not serve; `kv` uses only what
    // it serves.
    let repo = repo_of_built_apps(&[("good", "kv"), ("broker", "services")]);
    let out = spindle(&["check", repo.path_str(), "--no-pull"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    out.assert_stderr_contains("prod.ncl:9:14: app `broker` (built from broker/spin.toml)");
    out.assert_stderr_contains(
        "component `services` imports `fermyon:spin/llm@2.0.0`, which runtime `spindle` \
         (spindle's shim 0.1.0) does not provide; containerd-shim-spin has it from 0.12.0 on",
    );
    // Outbound MQTT and MySQL are served.
    assert!(!out.stderr.contains("mqtt@2.0.0"), "{}", out.stderr);
    assert!(!out.stderr.contains("mysql@2.0.0"), "{}", out.stderr);
    assert!(!out.stderr.contains("app `good`"), "{}", out.stderr);

    let repo = repo_of_built_apps(&[("good", "kv")]);
    let out = spindle(&["check", repo.path_str(), "--no-pull"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Pushes the `services` guest (which imports Spin's LLM, not served) as an app to the
/// test registry; returns the image.
pub(crate) fn push_broker_image() -> String {
    let registry = crate::support::required_env("SPINDLE_TEST_REGISTRY");
    let built = repo_of_built_apps(&[("broker", "services")]);
    let image = format!(
        "{registry}/spindle-test/{}:v1",
        crate::support::unique("imports")
    );
    let out = spindle(&[
        "push",
        built.path().join("broker").to_str().unwrap(),
        &image,
        "--insecure",
    ]);
    assert_eq!(out.code, 0, "push: {}", out.stderr);
    image
}

/// The runtime `spindle` (spindle's shim 0.1.0), as a line of an environment.
const SPINDLE_RUNTIME: &str = "  runtimes.spindle.shim = {\n    version = \"0.1.0\",\n    \
     url = \"https://example.com/containerd-shim-spindle-v1\",\n    \
     sha256 = \"4444444444444444444444444444444444444444444444444444444444444444\",\n  },\n";

/// An environment of spindle's runtime and, with `image`, the app `broker` from it.
pub(crate) fn environment_with_image(image: Option<&str>) -> String {
    let app = image.map_or(String::new(), |image| {
        format!("  apps.broker = {{\n    namespace = \"web\",\n    image = \"{image}\",\n  }},\n")
    });
    format!("{{\n{app}{SPINDLE_RUNTIME}}}\n")
}

#[test]
fn check_reads_the_imports_of_an_app_from_its_image_when_it_is_not_built() {
    let registry = crate::support::required_env("SPINDLE_TEST_REGISTRY");
    let image = push_broker_image();
    let repo = Repo::new();
    repo.write(
        "environments/prod.ncl",
        &environment_with_image(Some(&image)),
    );
    // Without a pull there is nothing to read: a warning, not a refusal.
    let out = spindle(&["check", repo.path_str(), "--no-pull"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.assert_stderr_contains("warning: app `broker`: its components' imports are not checked");
    // An unreachable registry is a warning too (plain HTTP was not allowed for it).
    let out = spindle(&["check", repo.path_str()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.assert_stderr_contains("warning: app `broker`");

    let out = spindle(&["check", repo.path_str(), "--insecure-registry", &registry]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    out.assert_stderr_contains(&format!("prod.ncl:4:13: app `broker` (in image {image})"));
    out.assert_stderr_contains("imports `fermyon:spin/llm@2.0.0`");
}

/// An environment of spindle's runtime whose apps, by name, run `image`s.
fn environment_with_images(apps: &[(&str, &str)]) -> String {
    let apps: String = apps
        .iter()
        .map(|(name, image)| {
            format!("  apps.{name} = {{ namespace = \"web\", image = \"{image}\" }},\n")
        })
        .collect();
    format!("{{\n{apps}{SPINDLE_RUNTIME}}}\n")
}

/// `spindle check` of `repo`, pulling from `registry` over plain HTTP for `seconds` at most.
fn check_pulling(repo: &Repo, registry: &str, seconds: &str) -> crate::support::Output {
    spindle(&[
        "check",
        repo.path_str(),
        "--insecure-registry",
        registry,
        "--pull-timeout",
        seconds,
    ])
}

#[test]
fn a_registry_that_never_answers_leaves_its_apps_unchecked_after_the_pull_timeout() {
    let registry = HostileRegistry::start(Misbehaviour::Stall);
    let at = &registry.address;
    // Nine images, pulled four at a time: one timeout per image would take three.
    let apps: Vec<(String, String)> = (1..=9)
        .map(|n| (format!("app{n}"), format!("{at}/image{n}:1")))
        .collect();
    let apps: Vec<(&str, &str)> = apps
        .iter()
        .map(|(name, image)| (name.as_str(), image.as_str()))
        .collect();
    let repo = Repo::new();
    repo.write("environments/prod.ncl", &environment_with_images(&apps));
    // The evaluator is compiled once, not within the time measured.
    assert_eq!(spindle(&["check", repo.path_str(), "--no-pull"]).code, 0);
    let started = std::time::Instant::now();
    let out = check_pulling(&repo, at, "3");
    let took = started.elapsed();
    // Unchecked is a warning, not a refusal; each app says why.
    assert_eq!(out.code, 0, "{}", out.stderr);
    for (app, _) in &apps {
        out.assert_stderr_contains(&format!(
            "warning: app `{app}`: its components' imports are not checked: its image was not \
             read within 3s"
        ));
    }
    // One deadline for all the pulls, not one per image (9 s at least).
    assert!(took < std::time::Duration::from_secs(8), "{took:?}");

    let out = spindle(&["check", repo.path_str(), "--pull-timeout", "soon"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.assert_stderr_contains("--pull-timeout");
}

#[test]
fn a_hostile_registry_gets_no_more_than_a_warning_and_is_not_quoted() {
    let blob = format!("blob sha256:{}", "b".repeat(64));
    let cases = [
        (
            Misbehaviour::EndlessBlob { declared: 100 },
            format!("the registry sent more than 100 bytes for {blob}"),
        ),
        (
            Misbehaviour::EndlessBlob { declared: 2 << 30 },
            "layers declare more than the 1073741824 bytes a pull accepts".to_owned(),
        ),
        // 2 x 2^63 bytes would wrap to nothing if added unchecked.
        (
            Misbehaviour::ManyLayers {
                count: 2,
                size: 1 << 63,
            },
            "layers declare more than the 1073741824 bytes a pull accepts".to_owned(),
        ),
        (
            Misbehaviour::ManyLayers {
                count: 501,
                size: 1,
            },
            "it has 501 layers, more than the 500 an artifact has".to_owned(),
        ),
        (
            Misbehaviour::EndlessManifest,
            "the registry sent more than 4194304 bytes for a manifest".to_owned(),
        ),
        // Read as a file, /dev/zero would fill the memory before any request.
        (
            Misbehaviour::LayerDigest("sha256:/dev/zero"),
            "layer digest `sha256:/dev/zero` is not sha256: and 64 lowercase hex digits".to_owned(),
        ),
        // Its own token service is asked, and the token taken: the pull goes on to the blob.
        (
            Misbehaviour::TokenRealm("self"),
            format!("the registry sent more than 100 bytes for {blob}"),
        ),
        // Where a cloud keeps its machines' credentials: not asked.
        (
            Misbehaviour::TokenRealm("http://169.254.169.254/latest/meta-data/"),
            "the token service at 169.254.169.254 is neither HTTPS nor the registry itself"
                .to_owned(),
        ),
        (
            Misbehaviour::RedirectTo("http://169.254.169.254/latest/meta-data/"),
            "a redirect was refused (more than 5, or away from HTTPS)".to_owned(),
        ),
        (
            Misbehaviour::Refuse {
                message: "words the registry chose",
            },
            "answered 404 Not Found (MANIFEST_UNKNOWN)".to_owned(),
        ),
    ];
    for (misbehaviour, error) in cases {
        let registry = HostileRegistry::start(misbehaviour);
        let at = &registry.address;
        let repo = Repo::new();
        repo.write(
            "environments/prod.ncl",
            &environment_with_images(&[("hostile", &format!("{at}/hostile:1"))]),
        );
        let out = check_pulling(&repo, at, "20");
        assert_eq!(out.code, 0, "{misbehaviour:?}: {}", out.stderr);
        out.assert_stderr_contains(
            "warning: app `hostile`: its components' imports are not checked",
        );
        out.assert_stderr_contains(&error);
        for quoted in ["words the registry chose", "meta-data"] {
            assert!(!out.stderr.contains(quoted), "{}", out.stderr);
        }
    }
}

#[test]
fn check_accepts_built_trigger_handlers_whose_imports_are_their_triggers_types() {
    // Redis, MQTT and cron handlers import the types their exports use (`fermyon:spin/redis-types`,
    // the plugins' type interfaces): served by spindle, which defines them.
    let repo = Repo::new();
    let built = test_apps().join("target/wasm32-wasip2/release");
    for (app, manifest) in [("triggers", "triggers.toml"), ("cron", "cron.toml")] {
        let wasm = repo.path().join(app).join("target/wasm32-wasip2/release");
        std::fs::create_dir_all(&wasm).unwrap();
        for guest in [
            "ledger_http",
            "redis_handler",
            "mqtt_handler",
            "cron_handler",
        ] {
            std::fs::copy(
                built.join(format!("{guest}.wasm")),
                wasm.join(format!("{guest}.wasm")),
            )
            .unwrap();
        }
        std::fs::copy(
            test_apps().join(manifest),
            repo.path().join(app).join("spin.toml"),
        )
        .unwrap();
    }
    repo.write(
        "environments/prod.ncl",
        "{\n  apps.triggers = { namespace = \"web\", source = \"triggers/spin.toml\" },\n  \
         apps.cron = { namespace = \"web\", source = \"cron/spin.toml\" },\n  \
         runtimes.spindle.shim = { version = \"0.1.0\", url = \"https://example.com/shim\", \
         sha256 = \"4444444444444444444444444444444444444444444444444444444444444444\" },\n}\n",
    );
    let out = spindle(&["check", repo.path_str(), "--no-pull"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "all read: {}", out.stderr);
}
