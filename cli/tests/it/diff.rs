//! `spindle diff` between real Git revisions, and against the real test apiserver (`--live`).

use crate::support::{GitRepo, Repo, assert_golden, kube_client, required_env, spindle};
use serde_json::Value;
use spindle_reconciler::cluster::Cluster;
use spindle_render::Object;

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN: &str = "tok-very-secret-1";

/// A runtime and the apps given, as an environment file.
fn environment(apps: &str, shim: (&str, &str)) -> String {
    format!(
        "{{\n  apps = {{\n{apps}\n  }},\n  runtimes.spin = {{\n    shim = {{ version = \"{}\", url = \"https://example.com/shim\", sha256 = \"{}\" }},\n    nodeSelector.wasm = \"yes\",\n  }},\n}}\n",
        shim.0, shim.1
    )
}

/// An app; `shelf` keeps its image when it is renamed to `shelves`.
fn app(name: &str, greeting: &str) -> String {
    let image = if name == "shelves" { "shelf" } else { name };
    format!(
        "    {name} = {{ namespace = \"shop\", image = \"ghcr.io/acme/{image}:1\", variables.greeting = \"{greeting}\" }},"
    )
}

fn db_app(token: &str) -> String {
    format!(
        "    db = {{ namespace = \"shop\", image = \"ghcr.io/acme/db:1\", runtimeConfig.sqliteDatabases.default = {{ type = 'libsql, url = \"https://db.acme\", token = \"{token}\" }} }},"
    )
}

impl GitRepo {
    /// `spindle diff` of the repository between two revisions, offline.
    fn diff(&self, base: &str, head: &str, format: &str) -> crate::support::Output {
        self.diff_with(base, head, format, &[])
    }

    /// The same, with `extra` arguments.
    fn diff_with(
        &self,
        base: &str,
        head: &str,
        format: &str,
        extra: &[&str],
    ) -> crate::support::Output {
        let mut args = vec![
            "diff",
            self.0.path_str(),
            "--base",
            base,
            "--head",
            head,
            "--offline",
            "--format",
            format,
        ];
        args.extend_from_slice(extra);
        spindle(&args)
    }
}

/// The history every test below walks through, one change per commit.
fn history() -> GitRepo {
    let repo = GitRepo::new();
    let base = [
        app("cart", "hi"),
        app("shelf", "hi"),
        app("legacy", "hi"),
        db_app(TOKEN),
    ];
    repo.commit(&environment(&base.join("\n"), ("1.0.0", SHA_A)), "start");
    let mut apps = base.to_vec();
    apps.push(app("search", "hi"));
    repo.commit(
        &environment(&apps.join("\n"), ("1.0.0", SHA_A)),
        "add an app",
    );
    apps[0] = app("cart", "hello");
    repo.commit(
        &environment(&apps.join("\n"), ("1.0.0", SHA_A)),
        "change a variable",
    );
    apps[1] = app("shelves", "hi");
    repo.commit(
        &environment(&apps.join("\n"), ("1.0.0", SHA_A)),
        "rename an app",
    );
    apps.remove(2);
    repo.commit(
        &environment(&apps.join("\n"), ("1.0.0", SHA_A)),
        "delete an app",
    );
    repo.commit(
        &environment(&apps.join("\n"), ("1.1.0", SHA_B)),
        "bump the shim",
    );
    apps[2] = db_app("tok-very-secret-2");
    repo.commit(
        &environment(&apps.join("\n"), ("1.1.0", SHA_B)),
        "change a secret",
    );
    repo
}

fn json(out: &crate::support::Output) -> Value {
    assert_eq!(out.code, 1, "changes exit 1; stderr:\n{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("JSON output")
}

/// (action, kind, name) of every object change.
fn changes(document: &Value) -> Vec<(String, String, String)> {
    document["environments"][0]["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| {
            (
                o["action"].as_str().unwrap().to_owned(),
                o["kind"].as_str().unwrap().to_owned(),
                o["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn change(action: &str, kind: &str, name: &str) -> (String, String, String) {
    (action.into(), kind.into(), name.into())
}

#[test]
fn each_kind_of_commit_gives_its_own_diff_in_every_format() {
    let repo = history();
    let step = |n: usize| (format!("HEAD~{}", 6 - n + 1), format!("HEAD~{}", 6 - n));

    // Every step shows, in text and markdown too, each object the JSON names, or the rollout.
    for n in 1..=6 {
        let (base, head) = step(n);
        let document = json(&repo.diff(&base, &head, "json"));
        let text = repo.diff(&base, &head, "text");
        let markdown = repo.diff(&base, &head, "markdown");
        assert_eq!((text.code, markdown.code), (1, 1), "step {n}");
        let shown = crate::support::as_shown(&markdown.stdout);
        for object in document["environments"][0]["objects"].as_array().unwrap() {
            let title = format!("{} shop/", object["kind"].as_str().unwrap());
            let name = object["name"].as_str().unwrap();
            assert!(
                text.stdout.contains(&title) && text.stdout.contains(name),
                "step {n} text:\n{}",
                text.stdout
            );
            assert!(
                markdown.stdout.contains(&format!("<code>{title}")),
                "step {n} markdown:\n{}",
                markdown.stdout
            );
        }
        for rollout in document["environments"][0]["runtimes"].as_array().unwrap() {
            let message = rollout["message"].as_str().unwrap();
            assert!(
                text.stdout.contains(message) && shown.contains(message),
                "step {n}: {message}\n{shown}"
            );
        }
    }

    // 1: an app is added: its Deployment and Service.
    let (base, head) = step(1);
    let added = json(&repo.diff(&base, &head, "json"));
    assert_eq!(
        changes(&added),
        [
            change("added", "Deployment", "search"),
            change("added", "Service", "search")
        ]
    );
    assert_eq!(added["environments"][0]["summary"]["added"], 2);

    // 2: a variable changes: one line of one Deployment.
    let (base, head) = step(2);
    let variable = json(&repo.diff(&base, &head, "json"));
    assert_eq!(
        changes(&variable),
        [change("changed", "Deployment", "cart")]
    );
    let object = &variable["environments"][0]["objects"][0];
    assert_eq!(
        (
            object["linesAdded"].as_u64(),
            object["linesRemoved"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let text = repo.diff(&base, &head, "text");
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains("-          value: hi\n+          value: hello\n"),
        "{}",
        text.stdout
    );
    assert!(
        !text.stdout.contains('\x1b'),
        "no colour when not on a terminal"
    );

    // 3: an app is renamed.
    let (base, head) = step(3);
    let renamed = json(&repo.diff(&base, &head, "json"));
    assert_eq!(
        changes(&renamed),
        [
            change("renamed", "Deployment", "shelves"),
            change("renamed", "Service", "shelves")
        ]
    );
    assert_eq!(
        renamed["environments"][0]["objects"][0]["previousName"],
        "shelf"
    );
    let text = repo.diff(&base, &head, "text");
    assert!(
        text.stdout
            .contains("~ Deployment shop/shelf -> shelves (app shelves)"),
        "{}",
        text.stdout
    );

    // 4: an app is deleted.
    let (base, head) = step(4);
    let deleted = json(&repo.diff(&base, &head, "json"));
    assert_eq!(
        changes(&deleted),
        [
            change("removed", "Deployment", "legacy"),
            change("removed", "Service", "legacy")
        ]
    );

    // 5: the shim is bumped: no object of the render changes without nodes, but the rollout is
    // called out.
    let (base, head) = step(5);
    let bumped = json(&repo.diff(&base, &head, "json"));
    assert!(changes(&bumped).is_empty());
    let rollout = &bumped["environments"][0]["runtimes"][0];
    assert_eq!(rollout["fromVersion"], "1.0.0");
    assert_eq!(rollout["toVersion"], "1.1.0");
    assert_eq!(
        rollout["message"],
        "shim spin 1.0.0 -> 1.1.0 will be rolled out to nodes matching wasm=yes, maxUnavailable 1"
    );
    let markdown = repo.diff(&base, &head, "markdown");
    assert!(
        crate::support::as_shown(&markdown.stdout)
            .contains("**Node runtimes**\n\n- shim spin 1.0.0 -> 1.1.0"),
        "{}",
        markdown.stdout
    );

    // 6: a secret changes: the Secret (renamed by its content hash) and the Deployment that
    // mounts it change, and no format shows either token.
    let (base, head) = step(6);
    let secret = json(&repo.diff(&base, &head, "json"));
    let kinds: Vec<String> = changes(&secret)
        .into_iter()
        .map(|(a, k, _)| format!("{a} {k}"))
        .collect();
    assert_eq!(kinds, ["changed Deployment", "changed Secret"]);
    for format in ["text", "markdown", "json"] {
        let out = repo.diff(&base, &head, format);
        assert!(
            out.stdout.contains("<changed: sha256 "),
            "{format}: {}",
            out.stdout
        );
        assert!(
            !out.stdout.contains("tok-very-secret"),
            "{format} leaked a token"
        );
        // The base64 of the runtime config would carry the token too.
        assert!(!out.stdout.contains("dG9r"), "{format} leaked base64");
    }
}

#[test]
fn the_markdown_comment_matches_its_reviewed_golden_file() {
    let repo = history();
    let out = repo.diff("HEAD~6", "HEAD", "markdown");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_golden("diff/history.md", &out.stdout);
}

#[test]
fn exit_codes_say_no_changes_changes_or_error() {
    let repo = history();
    let same = repo.diff("HEAD", "HEAD", "text");
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(same.stdout.contains("0 unchanged") || same.stdout.contains("unchanged"));

    // The working tree is the default head; an uncommitted change shows.
    repo.0.write(
        "environments/prod.ncl",
        &environment(&app("only", "x"), ("1.1.0", SHA_B)),
    );
    let dirty = spindle(&["diff", repo.0.path_str(), "--base", "HEAD", "--offline"]);
    assert_eq!(dirty.code, 1, "{}", dirty.stderr);
    assert!(dirty.stdout.contains("working tree"));

    // A broken revision is an error, with its location.
    repo.0.write(
        "environments/prod.ncl",
        "{ apps = { x = { image = 1 } } }\n",
    );
    let broken = spindle(&["diff", repo.0.path_str(), "--base", "HEAD", "--offline"]);
    assert_eq!(broken.code, 2);
    broken.assert_stderr_contains("environments/prod.ncl:1:");

    let unknown = repo.diff("no-such-rev", "HEAD", "text");
    assert_eq!(unknown.code, 2);
    unknown.assert_stderr_contains("no commit `no-such-rev`");
}

#[tokio::test]
async fn live_diff_compares_only_what_spindle_manages() {
    required_env("KUBECONFIG");
    let repo = Repo::new();
    let live_env = |replicas: u32, with_extra: bool| {
        let mut apps = format!(
            "    live-a = {{ namespace = \"live-diff\", image = \"ghcr.io/acme/a:1\", replicas = {replicas}, variables.token = {{ secretKeyRef = {{ name = \"s\", key = \"k\" }} }}, runtimeConfig.keyValueStores.default = {{ type = 'redis, url = \"redis://r:6379\" }} }},"
        );
        if with_extra {
            apps.push_str(
                "\n    live-b = { namespace = \"live-diff\", image = \"ghcr.io/acme/b:1\" },",
            );
        }
        format!(
            "{{\n  apps = {{\n{apps}\n  }},\n  runtimes.live-diff-rt.shim = {{ version = \"1\", url = \"https://e/s\", sha256 = \"{SHA_A}\" }},\n}}\n"
        )
    };
    repo.write("environments/livediff.ncl", &live_env(2, true));

    // Apply the render as spindle would (server-side, field manager spindle).
    let rendered = spindle(&[
        "render",
        repo.path_str(),
        "-o",
        "json",
        "--nodes",
        "/dev/null",
    ]);
    assert_eq!(rendered.code, 0, "{}", rendered.stderr);
    let list: Value = serde_json::from_str(&rendered.stdout).unwrap();
    let cluster = Cluster::connect(kube_client().await)
        .await
        .expect("discovery");
    for item in list["items"].as_array().unwrap() {
        cluster
            .apply(&Object::new(item.clone()), false)
            .await
            .expect("applies");
    }

    let live = || {
        spindle(&[
            "diff",
            repo.path_str(),
            "--live",
            "--format",
            "json",
            "--nodes",
            "/dev/null",
        ])
    };
    let same = live();
    assert_eq!(
        same.code, 0,
        "right after an apply there is nothing to show:\n{}\n{}",
        same.stdout, same.stderr
    );

    repo.write("environments/livediff.ncl", &live_env(3, true));
    let scaled = live();
    let document = json(&scaled);
    assert_eq!(
        changes(&document),
        [change("changed", "Deployment", "live-a")]
    );
    let diff = document["environments"][0]["objects"][0]["diff"]
        .as_str()
        .unwrap();
    assert_eq!(
        diff.lines()
            .filter(|l| l.starts_with(['+', '-']) && !l.starts_with("@@"))
            .collect::<Vec<_>>(),
        ["-  replicas: 2", "+  replicas: 3"],
        "{diff}"
    );

    repo.write("environments/livediff.ncl", &live_env(2, false));
    let pruned = json(&live());
    assert_eq!(
        changes(&pruned),
        [
            change("pruned", "Deployment", "live-b"),
            change("pruned", "Service", "live-b")
        ]
    );
}

#[test]
fn a_head_whose_app_imports_what_its_runtime_lacks_is_refused_and_a_base_is_not() {
    let registry = required_env("SPINDLE_TEST_REGISTRY");
    let image = crate::check::push_broker_image();
    let repo = GitRepo::new();
    let without = repo.commit(&crate::check::environment_with_image(None), "runtime");
    let with = repo.commit(
        &crate::check::environment_with_image(Some(&image)),
        "the broker",
    );
    let diff = |base: &str, head: &str| {
        repo.diff_with(base, head, "markdown", &["--insecure-registry", &registry])
    };
    let out = diff(&without, &with);
    assert_eq!(out.code, 2, "{}", out.stdout);
    out.assert_stderr_contains("environments/prod.ncl:4:13: app `broker` (in image");
    out.assert_stderr_contains("imports `fermyon:spin/llm@2.0.0`");
    // The pull-request comment shows the changes and the refusal, at its line.
    assert!(
        out.stdout
            .contains("**Would not run: these apps import what their runtime does not provide**"),
        "{}",
        out.stdout
    );
    let shown = crate::support::as_shown(&out.stdout);
    let refusal = shown
        .lines()
        .find(|line| {
            line.starts_with("- ") && line.contains("environments/prod.ncl:4:13: app `broker`")
        })
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(refusal.contains("fermyon:spin/llm@2.0.0"), "{refusal}");
    assert!(out.stdout.contains("Deployment"), "{}", out.stdout);
    // The change that removes it is shown: only the head is held against its runtime.
    let out = diff(&with, &without);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("broker"), "{}", out.stdout);
}
