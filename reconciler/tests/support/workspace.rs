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
    BUILT.get_or_init(|| build_guests("tests/apps"))
}

/// Builds the example repository's apps (once per test binary); returns their Cargo folder.
pub fn example_apps() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_guests("examples/gitops-repo/apps"))
}

/// `cargo build --release --target wasm32-wasip2` in `folder` of the workspace.
fn build_guests(folder: &str) -> PathBuf {
    {
        let dir = root().join(folder);
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip2",
            ])
            .current_dir(&dir);
        // The outer build's settings are not the guests' (RUSTUP_TOOLCHAIN stays: it keeps the
        // toolchain of rust-toolchain.toml for every rustc the nested cargo runs).
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if (key.starts_with("CARGO_") && key != "CARGO_HOME")
                || key.starts_with("RUSTC")
                || key == "RUSTFLAGS"
                || key == "RUSTDOC"
            {
                cargo.env_remove(key);
            }
        }
        // The compiler beside this cargo, whatever directory rustc is started in.
        let rustc = Path::new(env!("CARGO")).with_file_name("rustc");
        if rustc.exists() {
            cargo.env("RUSTC", rustc);
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "building {folder} failed");
        dir
    }
}

/// A binary of any workspace package, built as `cargo test --workspace` builds it (so a no-op
/// after it; `cargo test --test NAME` alone builds only the test's own package's binaries and
/// would leave this one stale).
pub fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let status = Command::new(env!("CARGO"))
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
