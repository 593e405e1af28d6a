//! Apps from Spin's Python and JavaScript SDKs, built from source with the SDKs' own tools (from
//! PyPI and the npm registry), served by `spindle run`: their routers, variables, key-value
//! store and outbound HTTP, allowed and denied.

use crate::{
    run::http_upstream,
    support::{HttpResponse, Served, http, js_app, python_app},
};

/// Serves the app in `folder` with its outbound variable `upstream` at a local HTTP server that
/// answers `upstream`; returns it and the server's port.
fn serve(folder: &std::path::Path) -> (Served, u16) {
    let port = http_upstream();
    let upstream = format!("127.0.0.1:{port}");
    let app = folder.to_str().unwrap();
    let served = Served::start(
        &[app, "--ephemeral"],
        &[("SPIN_VARIABLE_UPSTREAM", upstream.as_str())],
    );
    (served, port)
}

/// `GET path` on `served`, which must answer 200.
fn get(served: &Served, path: &str) -> HttpResponse {
    let answer = http(&served.address, "GET", path, "");
    assert_eq!(
        answer.status,
        200,
        "{path}: {answer:?}\n{}",
        served.stderr()
    );
    answer
}

#[test]
fn a_python_sdk_app_serves() {
    let (served, port) = serve(python_app());
    let answer = get(&served, "/hello/python?x=1");
    assert!(
        answer.body.starts_with("Hello from Python! GET"),
        "{answer:?}"
    );
    assert!(answer.body.contains("via /..."), "{answer:?}");
    assert_eq!(get(&served, "/greeting").body, "Hello from a variable\n");
    assert_eq!(get(&served, "/count").body, "count: 1\n");
    assert_eq!(get(&served, "/count").body, "count: 2\n");

    let allowed = get(
        &served,
        &format!("/outbound/upstream?http://127.0.0.1:{port}/"),
    );
    assert_eq!(allowed.body, "200: upstream");
    // A relative URL goes through the app's own routes (the manifest allows http://self) ...
    let itself = get(&served, "/outbound/self");
    assert_eq!(
        itself.body, "200: Hello from Python! POST /hello/self via /...\n",
        "{itself:?}"
    );
    // ... and a host it does not allow is refused with Spin's error, though the SDK writes the
    // request's body while it waits for the answer.
    let denied = get(&served, "/outbound/denied");
    assert!(denied.body.contains("HttpRequestDenied"), "{denied:?}");
    // A server that answers, on a port the manifest does not allow.
    let other = get(
        &served,
        &format!("/outbound/upstream?http://127.0.0.1:{}/", http_upstream()),
    );
    assert!(other.body.contains("HttpRequestDenied"), "{other:?}");
}

#[test]
fn a_javascript_sdk_app_serves() {
    let (served, port) = serve(js_app());
    // itty-router's routes, with their parameters.
    assert_eq!(
        get(&served, "/js/hello/spindle").body,
        "Hello, spindle, from JavaScript!\n"
    );
    assert_eq!(http(&served.address, "GET", "/js/nowhere", "").status, 404);
    assert_eq!(get(&served, "/js/greeting").body, "Hello from a variable\n");
    assert_eq!(get(&served, "/js/count").body, "count: 1\n");
    assert_eq!(get(&served, "/js/count").body, "count: 2\n");

    let allowed = get(
        &served,
        &format!("/js/outbound?url=http://127.0.0.1:{port}/"),
    );
    assert_eq!(allowed.body, "200: upstream");
    // A server that answers, on a port the manifest does not allow: the JavaScript engine
    // reports every failed fetch alike.
    let denied = get(
        &served,
        &format!("/js/outbound?url=http://127.0.0.1:{}/", http_upstream()),
    );
    assert_eq!(
        denied.body,
        "error: TypeError: NetworkError when attempting to fetch resource\n"
    );
}
