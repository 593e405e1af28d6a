//! `spindle push` and `spindle run oci://` against the real registry of `scripts/testenv`.

use crate::support::{Served, http, required_env, spindle, test_apps};

fn reference(name: &str) -> String {
    format!(
        "{}/spindle-test/{name}-{}:v1",
        required_env("SPINDLE_TEST_REGISTRY"),
        std::process::id()
    )
}

#[test]
fn a_pushed_app_has_one_digest_and_runs_from_the_registry() {
    let target = reference("oci-run");
    let apps = test_apps().to_str().unwrap();
    let first = spindle(&["push", apps, &target, "--insecure"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    first.assert_stderr_contains("pushed spindle-test-apps");
    let again = spindle(&["push", apps, &target, "--insecure"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(first.stdout, again.stdout, "the same app, the same digest");
    let digest = first.stdout.trim().rsplit('@').next().unwrap().to_owned();
    assert!(digest.starts_with("sha256:"), "{}", first.stdout);

    // The registry serves the manifest under that digest.
    let (registry, path) = target.split_once('/').unwrap();
    let (repository, tag) = path.rsplit_once(':').unwrap();
    let manifest = {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(registry).unwrap();
        write!(
            stream,
            "GET /v2/{repository}/manifests/{tag} HTTP/1.1\r\nHost: {registry}\r\n\
             Accept: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        crate::support::parse_response(&raw)
    };
    assert_eq!(manifest.status, 200, "{manifest:?}");
    let served_digest = manifest
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("docker-content-digest"))
        .map(|(_, value)| value.as_str());
    assert_eq!(served_digest, Some(digest.as_str()));

    let state = tempfile::tempdir().unwrap();
    let served = Served::start(
        &[
            &format!("oci://{target}"),
            "--insecure",
            "--state-dir",
            state.path().to_str().unwrap(),
        ],
        &[("SPIN_VARIABLE_SECRET_TOKEN", "s3cret")],
    );
    let message = http(&served.address, "GET", "/variables/message", "");
    assert_eq!(
        (message.status, message.body.as_str()),
        (200, "Hello, world")
    );
    let user = http(&served.address, "GET", "/users/7", "");
    assert!(user.body.contains("spin-path-match-user-id: 7"), "{user:?}");
    let file = http(&served.address, "GET", "/static/css/site.css", "");
    let original = std::fs::read_to_string(test_apps().join("assets/css/site.css")).unwrap();
    assert_eq!((file.status, file.body.as_str()), (200, original.as_str()));
    assert!(served.stop().success());
}

#[test]
fn registry_problems_are_named() {
    let missing = reference("never-pushed");
    let out = spindle(&["run", &format!("oci://{missing}"), "--insecure"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.assert_stderr_contains(&format!("cannot fetch the manifest of {missing}"));
    out.assert_stderr_contains("answered 404 Not Found (MANIFEST_UNKNOWN); is the image's name");

    // The test registry speaks plain HTTP: without --insecure, TLS fails and says so.
    let out = spindle(&["push", test_apps().to_str().unwrap(), &reference("tls")]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.assert_stderr_contains("cannot log in to");

    let out = spindle(&["push", test_apps().to_str().unwrap(), "not a reference"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.assert_stderr_contains("is not an OCI reference");
}
