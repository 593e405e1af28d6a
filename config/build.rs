//! Builds the Nickel evaluator guest (`schema/evaluator`) for `wasm32-wasip2` and hands its path to
//! the crate as `SPINDLE_EVALUATOR_WASM`, so that `cargo build` alone yields a working `spindle`.
//!
//! The guest has its own lock file and is built in `target/guest` by a nested cargo, with the
//! variables that the outer cargo (or clippy) set for this build removed.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("config/ sits in the workspace");
    let guest = workspace.join("schema/evaluator");
    for watched in ["Cargo.toml", "Cargo.lock", "src", "wit"] {
        println!("cargo:rerun-if-changed={}", guest.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=SPINDLE_EVALUATOR_WASM");

    if let Ok(prebuilt) = env::var("SPINDLE_EVALUATOR_WASM") {
        println!("cargo:rustc-env=SPINDLE_EVALUATOR_WASM={prebuilt}");
        return;
    }

    let target_dir = workspace.join("target/guest");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&guest)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let outer = key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_NET_OFFLINE";
        if outer
            || [
                "RUSTC",
                "RUSTC_WRAPPER",
                "RUSTC_WORKSPACE_WRAPPER",
                "RUSTFLAGS",
                "RUSTDOC",
            ]
            .contains(&key.as_ref())
        {
            command.env_remove(key.as_ref());
        }
    }
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("could not run cargo to build {}: {err}", guest.display()));
    assert!(
        status.success(),
        "building the evaluator guest failed; try `cargo build --release --target wasm32-wasip2` in {}",
        guest.display()
    );
    let wasm: &Path = &target_dir.join("wasm32-wasip2/release/spindle_evaluator.wasm");
    println!("cargo:rustc-env=SPINDLE_EVALUATOR_WASM={}", wasm.display());
}
