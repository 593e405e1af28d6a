//! The parts of the workspace that tests need built: the Spin guests and the binaries of other
//! packages. Shared with the node installer's tests (`#[path]`), so it uses nothing else here.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The workspace's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the Spin test apps of `tests/apps` (once per test binary) and returns their folder.
pub fn test_apps() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_guests("tests/apps", "wasm32-wasip2", &[]))
}

/// Builds `headers`, `kv` and `command` of `tests/apps` as core Wasm modules (`wasm32-wasip1`, as
/// many published Spin apps are built), once per test binary; returns the folder of the
/// `.wasm` files.
pub fn core_modules() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let packages = ["-p", "headers", "-p", "kv", "-p", "command"];
        build_guests("tests/apps", "wasm32-wasip1", &packages).join("target/wasm32-wasip1/release")
    })
}

/// Builds the Python SDK app of `tests/apps/python` (componentize-py and spin-sdk from PyPI, in a
/// virtualenv under `target/`), once per test binary; returns its folder.
pub fn python_app() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let app = root().join("tests/apps/python");
        let venv = root().join("target/py-venv");
        if !venv.join("bin/componentize-py").exists() {
            succeed(Command::new("python3").args(["-m", "venv"]).arg(&venv));
            succeed(
                Command::new(venv.join("bin/pip"))
                    .args(["install", "--quiet", "-r"])
                    .arg(app.join("requirements.txt")),
            );
        }
        // componentize-py finds spin-sdk's WIT through the Python on PATH.
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        succeed(
            Command::new(venv.join("bin/componentize-py"))
                .args(["-w", "spin-http", "componentize", "app", "-o", "app.wasm"])
                .env("PATH", path)
                .env("VIRTUAL_ENV", &venv)
                .current_dir(&app),
        );
        app
    })
}

/// Builds the JavaScript SDK app of `tests/apps/js` (`@spinframework/build-tools` and the rest
/// from the npm registry, as its `package-lock.json` pins them), once per test binary; returns
/// its folder.
pub fn js_app() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let app = root().join("tests/apps/js");
        // Always from the lockfile, so a package present here but missing from it fails here
        // as it would on a fresh clone.
        succeed(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&app),
        );
        succeed(
            Command::new("npm")
                .args(["run", "--silent", "build"])
                .current_dir(&app),
        );
        app
    })
}

/// Runs `command`; fails the test unless it succeeds.
fn succeed(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("{command:?}: {err}"));
    assert!(status.success(), "{command:?} failed");
}

/// Builds `headers` of `tests/apps` for `wasm32-unknown-unknown` (a core module without WASI,
/// carrying its component type), once per test binary; returns the folder of its `.wasm`.
pub fn bare_modules() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        build_guests("tests/apps", "wasm32-unknown-unknown", &["-p", "headers"])
            .join("target/wasm32-unknown-unknown/release")
    })
}

/// Builds the example repository's apps (once per test binary); returns their Cargo folder.
pub fn example_apps() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_guests("examples/gitops-repo/apps", "wasm32-wasip2", &[]))
}

/// The cargo that runs this test, without the variables cargo gives a test: build scripts that
/// watch them (ring's watch `CARGO_PKG_NAME` and `OUT_DIR`, ours `SPINDLE_EVALUATOR_WASM`)
/// would see them change, and the outer and the nested build would rebuild half the workspace
/// each time. RUSTUP_TOOLCHAIN stays: it keeps rust-toolchain.toml's toolchain for every rustc.
fn nested_cargo() -> Command {
    let mut cargo = Command::new(env!("CARGO"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOC"
            || key == "OUT_DIR"
            || key == "SPINDLE_EVALUATOR_WASM"
        {
            cargo.env_remove(key);
        }
    }
    cargo
}

/// `cargo build --release --target TARGET [ARGS]` in `folder` of the workspace; returns the folder.
fn build_guests(folder: &str, target: &str, args: &[&str]) -> PathBuf {
    let dir = root().join(folder);
    let mut cargo = nested_cargo();
    cargo
        .args(["build", "--release", "--locked", "--target", target])
        .args(args)
        .current_dir(&dir);
    // The compiler beside this cargo, whatever directory rustc is started in.
    let rustc = Path::new(env!("CARGO")).with_file_name("rustc");
    if rustc.exists() {
        cargo.env("RUSTC", rustc);
    }
    let status = cargo.status().expect("cargo runs");
    assert!(status.success(), "building {folder} for {target} failed");
    dir
}

/// A binary of any workspace package, built as `cargo test --workspace` builds it (so a no-op
/// after it; `cargo test --test NAME` alone builds only the test's own package's binaries and
/// would leave this one stale).
pub fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let status = nested_cargo()
            .args(["test", "--workspace", "--locked", "--no-run", "--quiet"])
            .current_dir(root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the workspace does not build");
    });
    // This test runs from target/<profile>/deps/.
    let exe = std::env::current_exe().expect("the test knows its path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}
