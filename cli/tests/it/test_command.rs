//! `spindle test`: a repository's own golden files.

use crate::support::{EXAMPLE, Repo, spindle};

#[test]
fn the_example_repository_matches_its_golden_files() {
    let out = spindle(&["test", EXAMPLE]);
    assert_eq!(
        out.code, 0,
        "examples/gitops-repo/golden is stale; if the render change is intended, run \
         `spindle test examples/gitops-repo --update` and review:\n{}{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("ok   production: 14 objects"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("ok   staging"), "{}", out.stdout);
}

#[test]
fn a_change_fails_until_the_golden_files_are_updated() {
    let repo = Repo::new();
    let env = |greeting: &str, extra_app: bool| {
        let extra = if extra_app {
            "old = { image = \"a/old:1\" },"
        } else {
            ""
        };
        format!(
            "{{ apps = {{ web = {{ image = \"a/web:1\", variables.greeting = \"{greeting}\" }}, {extra} }}, \
             runtimes.spin.shim = {{ version = \"1\", url = \"https://e/s\", sha256 = \"{}\" }} }}",
            "c".repeat(64)
        )
    };
    repo.write("environments/prod.ncl", &env("hi", true));
    let missing = spindle(&["test", repo.path_str()]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stdout.contains("no golden files"),
        "{}",
        missing.stdout
    );

    let update = spindle(&["test", repo.path_str(), "--update"]);
    assert_eq!(update.code, 0, "{}", update.stderr);
    assert_eq!(spindle(&["test", repo.path_str()]).code, 0);

    repo.write("environments/prod.ncl", &env("hello", false));
    let changed = spindle(&["test", repo.path_str()]);
    assert_eq!(changed.code, 1);
    assert!(
        changed
            .stdout
            .contains("deployment.default.web.yaml differs"),
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .contains("-          value: hi\n+          value: hello"),
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .contains("deployment.default.old.yaml is expected but no longer rendered")
    );

    assert_eq!(spindle(&["test", repo.path_str(), "--update"]).code, 0);
    assert!(
        !repo
            .path()
            .join("golden/prod/deployment.default.old.yaml")
            .exists(),
        "stale file removed"
    );
    assert_eq!(spindle(&["test", repo.path_str()]).code, 0);
}
