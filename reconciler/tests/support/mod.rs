//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The example repository, relative to the reconciler crate (the tests' working directory).
pub const EXAMPLE: &str = "../examples/gitops-repo";

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts that stderr contains `text`, showing stderr when it does not.
    pub fn assert_stderr_contains(&self, text: &str) {
        assert!(
            self.stderr.contains(text),
            "want `{text}` in stderr:\n{}",
            self.stderr
        );
    }
}

/// Runs the `spindle` binary with a compile cache shared by all tests.
pub fn spindle(args: &[&str]) -> Output {
    spindle_in(Path::new("."), args)
}

/// Runs the `spindle` binary in `dir`.
pub fn spindle_in(dir: &Path, args: &[&str]) -> Output {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spindle-cache");
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .current_dir(dir)
        .args(args)
        .env("SPINDLE_CACHE", cache)
        .env_remove("SPINDLE_ENV")
        .output()
        .expect("spindle runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A throwaway repository folder.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        Repo {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }
}

/// Reads an environment variable naming a test server; fails with a clear message when absent.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the test environment. Run `scripts/test` \
             (or `scripts/testenv start` and `source target/testenv/env`)"
        )
    })
}

/// A client for the test apiserver named by `KUBECONFIG`.
pub async fn kube_client() -> kube::Client {
    use kube::config::{Config, KubeConfigOptions, Kubeconfig};
    let path = required_env("KUBECONFIG");
    let kubeconfig = Kubeconfig::read_from(&path).expect("kubeconfig reads");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client builds")
}
