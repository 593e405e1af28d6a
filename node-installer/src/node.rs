//! Install and uninstall on one node: the shim, containerd's config, and a restart that is verified
//! and rolled back when containerd does not come back.
//!
//! - One installer at a time edits a node: each holds [`NodeLock`] (an advisory lock on a file
//!   under the host's `/var/lib/spindle`) from before it reads containerd's config until containerd
//!   answers again, so two runtimes' Jobs on one node do not overwrite each other's edits.
//! - A marker beside the config (`config.toml.spindle-unverified`) is written before the patched
//!   config and removed once containerd answers with it. An installer killed in between leaves
//!   it; the next one on the node finds it, puts the previous config back (kept in
//!   `config.toml.spindle-backup`) and restarts containerd before doing its own work.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    config::{self, RuntimeEntry},
    distro::{Distro, Layout},
    shim::{self, Installed},
};

/// How containerd is restarted and checked.
#[derive(Debug, Clone)]
pub struct Control {
    /// Runs the restart (through `sh -c`); `None`: restart the layout's systemd unit.
    pub restart: Option<String>,
    /// Succeeds once containerd answers (through `sh -c`); `None`: `ctr version` on the
    /// socket (or, without `ctr` on the host, the socket's existence).
    pub verify: Option<String>,
    /// containerd's socket; `None`: the distribution's.
    pub socket: Option<PathBuf>,
    /// How long containerd may take to answer after a restart.
    pub timeout: Duration,
    /// Run host commands in PID 1's namespaces (the installer runs in a pod with hostPID).
    pub enter_host: bool,
}

/// What an install or uninstall did, printed as JSON for the reconciler and for people.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `install` or `uninstall`.
    pub action: String,
    /// The node's distribution, in lower case (`k3s`, `containerd`, ...).
    pub distro: String,
    /// containerd's config file, under the host root.
    pub config: PathBuf,
    /// Whether the config file was rewritten.
    pub config_changed: bool,
    /// Whether shim files were written, repointed or removed.
    pub shim_changed: bool,
    /// The installed shim; `None` for an uninstall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shim: Option<Installed>,
    /// Whether containerd was restarted to load the new config.
    pub restarted: bool,
    /// Whether the previous config was put back because containerd did not answer with the new one.
    pub rolled_back: bool,
    /// Whether an earlier installer had stopped between patching the config and seeing
    /// containerd answer, and its config was undone first.
    pub recovered: bool,
    /// Whether anything on the node changed: the config or the shim.
    pub changed: bool,
}

/// Registers `entry` and installs the shim from `source`.
pub fn install(
    host_root: &Path,
    layout: &Layout,
    entry: &RuntimeEntry,
    source: &Path,
    sha256: &str,
    shim_dir: &Path,
    control: &Control,
) -> Result<Report> {
    let _lock = NodeLock::take(host_root)?;
    let recovered = recover(layout, control)?;
    let installed = shim::install(source, sha256, shim_dir, &entry.handler)?;
    let current = read_config(layout)?;
    let mut entry = entry.clone();
    entry.runtime_path = Some(host_path(host_root, &installed.path));
    let patched = config::add(&current, &entry)
        .with_context(|| format!("{} was left as it was", layout.config.display()))?;
    let mut report = Report {
        action: "install".to_owned(),
        distro: format!("{:?}", layout.distro).to_ascii_lowercase(),
        config: layout.config.clone(),
        shim_changed: installed.changed,
        shim: Some(installed),
        recovered,
        ..Report::default()
    };
    if let Some(patched) = patched {
        apply_config(layout, &current, &patched, control, &mut report)?;
    }
    report.changed = report.config_changed || report.shim_changed;
    Ok(report)
}

/// Removes the runtime from the config (restarting containerd) and the shim's files that no other
/// runtime uses.
pub fn uninstall(
    host_root: &Path,
    layout: &Layout,
    handler: &str,
    shim_dir: &Path,
    control: &Control,
) -> Result<Report> {
    shim::check_handler(handler)?;
    let _lock = NodeLock::take(host_root)?;
    let recovered = recover(layout, control)?;
    let mut report = Report {
        action: "uninstall".to_owned(),
        distro: format!("{:?}", layout.distro).to_ascii_lowercase(),
        config: layout.config.clone(),
        recovered,
        ..Report::default()
    };
    let mut left = String::new();
    if layout.config.exists() {
        let current = std::fs::read_to_string(&layout.config)?;
        left = current.clone();
        if let Some(patched) = config::remove(&current, handler)? {
            apply_config(layout, &current, &patched, control, &mut report)?;
            left = patched;
        }
    }
    // An entry from before handler links names the stable name itself: it keeps its shim.
    let stable = host_path(host_root, &shim_dir.join(shim::SHIM_NAME));
    let keep_stable = left.contains(&format!("\"{stable}\""));
    report.shim_changed = shim::uninstall(shim_dir, handler, keep_stable)?;
    report.changed = report.config_changed || report.shim_changed;
    Ok(report)
}

/// The config to start from: the file, or the distribution's generated config, or nothing.
fn read_config(layout: &Layout) -> Result<String> {
    for path in std::iter::once(&layout.config).chain(layout.seed.as_ref()) {
        if path.exists() {
            return std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()));
        }
    }
    Ok(String::new())
}

/// Writes `patched` (keeping a backup of `current`), restarts containerd and checks it; puts
/// `current` back and restarts again when containerd does not answer.
fn apply_config(
    layout: &Layout,
    current: &str,
    patched: &str,
    control: &Control,
    report: &mut Report,
) -> Result<()> {
    let backup = sibling(&layout.config, BACKUP);
    let marker = sibling(&layout.config, UNVERIFIED);
    let existed = layout.config.exists();
    if existed {
        shim::write_atomically(&backup, current.as_bytes(), 0o600)?;
    }
    // Before the patched config: whoever finds the marker puts `backup` (or no file) back.
    let undo = if existed { "restore" } else { "remove" };
    shim::write_atomically(&marker, undo.as_bytes(), 0o600)?;
    shim::write_preserving(&layout.config, patched.as_bytes())?;
    report.config_changed = true;
    if layout.units.is_empty() && control.restart.is_none() {
        // k0s watches its drop-ins and restarts containerd itself.
        wait_until_answering(layout, control)?;
        return remove_marker(&marker);
    }
    report.restarted = true;
    if let Err(err) = restart(layout, control).and_then(|()| wait_until_answering(layout, control))
    {
        eprintln!("containerd did not come back with the new config ({err:#}); rolling back");
        undo_patch(layout, control, existed)?;
        report.rolled_back = true;
        bail!(
            "containerd did not start with {}; the previous config is back and containerd runs",
            layout.config.display()
        );
    }
    remove_marker(&marker)?;
    // containerd answers before its CRI plugin has caught up with the running containers: an exit
    // in that window (this installer's own, in a Job) is lost, and the kubelet records the pod as
    // failed with an unknown status. Give it time before returning.
    std::thread::sleep(CRI_SETTLE);
    Ok(())
}

/// How long containerd's CRI plugin gets, after containerd answers again, to recover its
/// containers and subscribe to their events.
const CRI_SETTLE: Duration = Duration::from_secs(3);

/// The copy of the config from before the last patch.
const BACKUP: &str = ".spindle-backup";
/// Present while a patched config has not been seen working; holds `restore` or `remove`.
const UNVERIFIED: &str = ".spindle-unverified";

/// `config` with `suffix` added to its file name.
fn sibling(config: &Path, suffix: &str) -> PathBuf {
    let mut name = config.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    config.with_file_name(name)
}

fn remove_marker(marker: &Path) -> Result<()> {
    std::fs::remove_file(marker).with_context(|| format!("cannot remove {}", marker.display()))
}

/// Puts the config from before the patch back (or removes the file when there was none),
/// restarts containerd and waits for it; the marker goes once containerd answers.
fn undo_patch(layout: &Layout, control: &Control, existed: bool) -> Result<()> {
    if existed {
        let previous = std::fs::read(sibling(&layout.config, BACKUP))
            .context("the backup of the previous config is gone")?;
        shim::write_preserving(&layout.config, &previous)?;
    } else if layout.config.exists() {
        std::fs::remove_file(&layout.config)?;
    }
    if !layout.units.is_empty() || control.restart.is_some() {
        restart(layout, control)?;
    }
    wait_until_answering(layout, control)
        .context("containerd is not healthy after the rollback either")?;
    remove_marker(&sibling(&layout.config, UNVERIFIED))
}

/// Undoes the patch of an installer that stopped before containerd answered with it (killed, or
/// its node rebooted); whether there was one.
fn recover(layout: &Layout, control: &Control) -> Result<bool> {
    let marker = sibling(&layout.config, UNVERIFIED);
    let Ok(undo) = std::fs::read_to_string(&marker) else {
        return Ok(false);
    };
    eprintln!(
        "an earlier installer stopped before containerd answered with its config; putting the \
         config from before it back"
    );
    undo_patch(layout, control, undo.trim() != "remove")?;
    Ok(true)
}

/// Where installers on a node take turns, under the host root.
const LOCK: &str = "var/lib/spindle/node-installer.lock";
/// How long an installer waits for another on the same node.
const LOCK_WAIT: Duration = Duration::from_secs(15 * 60);

/// The node's installer lock, held until dropped (or the process ends, however it ends).
pub struct NodeLock(#[allow(dead_code)] std::fs::File);

impl NodeLock {
    /// Waits for the lock of the node whose root is `host_root`.
    pub fn take(host_root: &Path) -> Result<NodeLock> {
        let path = host_root.join(LOCK);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let deadline = Instant::now() + LOCK_WAIT;
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(NodeLock(file)),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !said {
                        eprintln!("another installer is at work on this node; waiting for it");
                        said = true;
                    }
                    if Instant::now() >= deadline {
                        bail!(
                            "another installer held {} for {LOCK_WAIT:?}",
                            path.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(err).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
    }
}

/// `path` (under `host_root`) as the host sees it.
fn host_path(host_root: &Path, path: &Path) -> String {
    match path.strip_prefix(host_root) {
        Ok(relative) => Path::new("/").join(relative).to_string_lossy().into_owned(),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}

/// `text` as one single-quoted shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn sh(command: &str, control: &Control) -> Command {
    let mut cmd = if control.enter_host {
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "--", "sh", "-c",
        ]);
        cmd
    } else {
        let mut cmd = Command::new("sh");
        cmd.arg("-c");
        cmd
    };
    cmd.arg(command);
    cmd
}

fn restart(layout: &Layout, control: &Control) -> Result<()> {
    let command = match &control.restart {
        Some(command) => command.clone(),
        None => {
            let unit = layout
                .units
                .iter()
                .find(|unit| {
                    sh(&format!("systemctl is-active --quiet {unit}"), control)
                        .status()
                        .is_ok_and(|s| s.success())
                })
                .with_context(|| {
                    format!(
                        "none of {} is active: give --restart-command",
                        layout.units.join(", ")
                    )
                })?;
            format!("systemctl restart {unit}")
        }
    };
    let status = sh(&command, control)
        .status()
        .with_context(|| format!("cannot run `{command}`"))?;
    if !status.success() {
        bail!("`{command}` failed ({status})");
    }
    Ok(())
}

fn wait_until_answering(layout: &Layout, control: &Control) -> Result<()> {
    let command = control.verify.clone().unwrap_or_else(|| {
        let socket = control
            .socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(layout.socket));
        // The path goes into a shell command: quoted, so that no character of it is syntax.
        let socket = quote(&socket.to_string_lossy());
        format!(
            "if command -v ctr >/dev/null; then ctr --address {socket} version; else test -S {socket}; fi"
        )
    });
    let deadline = Instant::now() + control.timeout;
    loop {
        let answered = sh(&command, control)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if answered {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("`{command}` did not succeed within {:?}", control.timeout);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The distribution to use: the one named, or the detected one.
pub fn layout(host_root: &Path, distro: Option<Distro>, config: Option<PathBuf>) -> Layout {
    let distro = distro.unwrap_or_else(|| crate::distro::detect(host_root));
    let mut layout = distro.layout(host_root);
    if let Some(config) = config {
        layout.config = config;
        layout.seed = None;
    }
    layout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_as_one_shell_word() {
        assert_eq!(
            quote("/run/containerd/containerd.sock"),
            "'/run/containerd/containerd.sock'"
        );
        let hostile = "/tmp/x'; touch /tmp/owned; echo '";
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote(hostile)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), hostile);
    }
}
