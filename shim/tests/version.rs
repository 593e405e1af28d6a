//! The shim binary as containerd first meets it: `-v` names it and its version. (Its behaviour
//! under containerd is tested in `cli/tests/it/containerd_shim.rs`, which also needs this
//! package to have an integration test: that is what makes `cargo test` build the binary.)

#[test]
fn the_binary_reports_its_name_and_version() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_containerd-shim-spindle-v1"))
        .arg("-v")
        .output()
        .expect("the shim runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("containerd-shim-spindle-v1"), "{text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}
