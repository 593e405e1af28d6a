//! A repository on this machine, followed by `spindle up`: a branch's tip, or the working tree
//! as it is.

use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::{git::Folder, watch};
use spindle_config::snapshot::Snapshot;

/// A repository on this machine, as `spindle up` follows it.
pub enum Local {
    /// The tip of a branch of a Git repository (REPO may be a folder inside it).
    Branch {
        /// The repository and the folder in it.
        folder: Folder,
        /// The branch followed.
        branch: String,
        /// The folder as given.
        path: PathBuf,
    },
    /// The files as they are.
    WorkingTree {
        /// The folder as given.
        path: PathBuf,
    },
}

impl Local {
    /// The branch tip of the repository holding `path` (the checked-out branch unless `branch`
    /// is given), or its working tree when `dirty` or when it is not in a repository.
    pub fn new(path: &Path, branch: Option<String>, dirty: bool) -> Result<Local> {
        if dirty {
            return Ok(Local::WorkingTree {
                path: path.to_path_buf(),
            });
        }
        match Folder::open(path) {
            Ok(folder) => {
                let branch = match branch.or_else(|| folder.current_branch()) {
                    Some(branch) => branch,
                    None => anyhow::bail!(
                        "HEAD is detached: name a branch with --branch, or use --dirty"
                    ),
                };
                folder.resolve(&branch)?;
                Ok(Local::Branch {
                    folder,
                    branch,
                    path: path.to_path_buf(),
                })
            }
            Err(_) => Ok(Local::WorkingTree {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The current revision: its files and a name for it.
    pub fn read(&self) -> Result<(Snapshot, String)> {
        match self {
            Local::Branch { folder, branch, .. } => {
                let (snapshot, commit) = folder.snapshot(branch)?;
                Ok((snapshot, commit[..12].to_owned()))
            }
            Local::WorkingTree { path } => {
                let snapshot = Snapshot::from_dir(path)?;
                let mut digest = Sha256::new();
                for (file, text) in snapshot.config_files() {
                    digest.update(file.as_bytes());
                    digest.update(text.as_bytes());
                }
                Ok((
                    snapshot,
                    format!("files {}", &hex::encode(digest.finalize())[..12]),
                ))
            }
        }
    }

    /// The repository folder on disk (apps' `spin.toml` and Wasm files are read from here).
    pub fn path(&self) -> &Path {
        match self {
            Local::Branch { path, .. } | Local::WorkingTree { path } => path,
        }
    }

    /// Signals each change of what is followed (a moved branch ref, or a saved file), debounced;
    /// the watch lasts as long as the returned watcher.
    pub fn watch(&self) -> Result<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
        match self {
            Local::Branch { folder, .. } => {
                watch::debounced(folder.git_dir(), watch::is_ref_change)
            }
            Local::WorkingTree { path } => watch::debounced(path, |path| {
                !(path.contains("/.git/")
                    || path.contains("/.spindle/")
                    || path.contains("/target/"))
            }),
        }
    }

    /// The folder and what is followed in it, for people.
    pub fn describe(&self) -> String {
        match self {
            Local::Branch { branch, path, .. } => format!("{} (branch {branch})", path.display()),
            Local::WorkingTree { path } => format!("{} (working tree)", path.display()),
        }
    }
}
