//! Apps whose `source` is a core Wasm module (spin-sdk guests built for `wasm32-wasip1` or
//! `wasm32-unknown-unknown`, as many published Spin apps are) are made components at load, as
//! Spin does: served with their host interfaces, and run as commands.

use std::path::Path;

use crate::support::{Served, bare_modules, core_modules, http, spindle, test_apps};

/// An app folder holding `modules` (file names under [`core_modules`]) and `manifest`.
fn app(modules: &[&str], manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for module in modules {
        let wasm = std::fs::read(core_modules().join(module)).unwrap();
        assert!(
            wasm.starts_with(b"\0asm\x01\0\0\0"),
            "{module} is not a core module"
        );
        std::fs::write(dir.path().join(module), wasm).unwrap();
    }
    std::fs::write(dir.path().join("spin.toml"), manifest).unwrap();
    dir
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

#[test]
fn an_http_app_of_core_modules_is_served_with_its_host_interfaces() {
    let app = app(
        &["headers.wasm", "kv.wasm"],
        r#"spin_manifest_version = 2
[application]
name = "core-modules"
[[trigger.http]]
route = "/headers/..."
component = "headers"
[[trigger.http]]
route = "/kv/..."
component = "kv"
[component.headers]
source = "headers.wasm"
[component.kv]
source = "kv.wasm"
key_value_stores = ["default"]
"#,
    );
    let state = tempfile::tempdir().unwrap();
    let served = Served::start(&[path(app.path()), "--state-dir", path(state.path())], &[]);
    let echoed = http(&served.address, "GET", "/headers/a?b=c", "");
    assert_eq!(echoed.status, 200, "{echoed:?}");
    assert!(echoed.body.contains("uri: "), "{}", echoed.body);
    assert!(
        echoed.body.contains("spin-path-info: /a"),
        "{}",
        echoed.body
    );
    // The key-value store is the host's, through the adapter's imports.
    assert_eq!(
        http(&served.address, "GET", "/kv/count", "").body,
        "count: 1"
    );
    assert_eq!(
        http(&served.address, "GET", "/kv/count", "").body,
        "count: 2"
    );
}

#[test]
fn the_same_app_built_for_each_target_serves_the_same_responses() {
    let dir = tempfile::tempdir().unwrap();
    let builds = [
        ("wasip2", test_apps().join("target/wasm32-wasip2/release")),
        ("wasip1", core_modules().to_path_buf()),
        ("unknown", bare_modules().to_path_buf()),
    ];
    let mut manifest =
        String::from("spin_manifest_version = 2\n[application]\nname = \"targets\"\n");
    for (name, folder) in &builds {
        let wasm = std::fs::read(folder.join("headers.wasm")).unwrap();
        std::fs::write(dir.path().join(format!("{name}.wasm")), wasm).unwrap();
        manifest.push_str(&format!(
            "[[trigger.http]]\nroute = \"/{name}/...\"\ncomponent = \"{name}\"\n\
             [component.{name}]\nsource = \"{name}.wasm\"\n"
        ));
    }
    for name in ["wasip1", "unknown"] {
        let wasm = std::fs::read(dir.path().join(format!("{name}.wasm"))).unwrap();
        assert!(
            wasm.starts_with(b"\0asm\x01\0\0\0"),
            "{name} is not a core module"
        );
    }
    std::fs::write(dir.path().join("spin.toml"), manifest).unwrap();

    let served = Served::start(&[path(dir.path()), "--ephemeral"], &[]);
    let answer = |name: &str| {
        let answer = http(
            &served.address,
            "POST",
            &format!("/{name}/a/b?c=d"),
            "a body",
        );
        assert_eq!(
            answer.status,
            200,
            "{name}: {answer:?}\n{}",
            served.stderr()
        );
        // The routes, the component and the URL name the build, and each connection has a
        // port of its own; the rest must not differ.
        answer
            .body
            .lines()
            .filter(|line| !line.starts_with("spin-client-addr: "))
            .map(|line| line.replace(name, "BUILD") + "\n")
            .collect::<String>()
    };
    let component = answer("wasip2");
    assert!(component.contains("body-bytes: 6"), "{component}");
    assert!(component.contains("spin-path-info: /a/b"), "{component}");
    assert_eq!(answer("wasip1"), component);
    assert_eq!(answer("unknown"), component);
}

#[test]
fn a_command_built_as_a_core_module_runs_with_the_command_adapter() {
    let manifest = |status: &str| {
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"core-command\"\n\
             [[trigger.command]]\ncomponent = \"command\"\n\
             [component.command]\nsource = \"command.wasm\"\n\
             environment = {{ EXIT_STATUS = \"{status}\" }}\n"
        )
    };
    let ok = app(&["command.wasm"], &manifest("0"));
    let out = spindle(&["run", path(ok.path())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("command ran with [\"command\"]"),
        "{}",
        out.stdout
    );

    let failing = app(&["command.wasm"], &manifest("3"));
    let out = spindle(&["run", path(failing.path())]);
    assert_eq!(out.code, 1, "{}", out.stderr);
}

#[test]
fn a_core_module_that_is_not_valid_is_refused_at_start_with_the_component_named() {
    let dir = tempfile::tempdir().unwrap();
    // A core module header, then a type section that claims more bytes than there are.
    std::fs::write(
        dir.path().join("broken.wasm"),
        b"\0asm\x01\0\0\0\x01\x7f\x01",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"broken\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"broken\"\n\
         [component.broken]\nsource = \"broken.wasm\"\n",
    )
    .unwrap();
    let out = spindle(&["run", path(dir.path()), "--listen", "127.0.0.1:0"]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    out.assert_stderr_contains("component `broken`");
    out.assert_stderr_contains("core Wasm module");
}
