//! The node installer's integration tests in one test binary: the config edits against golden
//! files, and the installer against a real containerd.

mod containerd;
mod golden;
