//! Filesystem watches that wake a loop: a moved Git ref (a commit or a push into a local
//! repository) or a saved file.

use std::{path::Path, time::Duration};

use anyhow::Result;
use notify::Watcher as _;
use tokio::sync::mpsc;

/// Sends on the returned channel whenever a path under `root` for which `relevant` holds changes;
/// the watch lasts as long as the returned watcher. A full channel means a wake-up is pending, so
/// further events are dropped.
pub fn watch(
    root: &Path,
    relevant: fn(&str) -> bool,
) -> Result<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    let (sender, receiver) = mpsc::channel(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        // Reading a repository (as a fetch from it does) is not a change.
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        if event
            .paths
            .iter()
            .any(|path| relevant(&path.to_string_lossy()))
        {
            let _ = sender.try_send(());
        }
    })?;
    watcher.watch(root, notify::RecursiveMode::Recursive)?;
    Ok((watcher, receiver))
}

/// How long to wait for more events after one, so that a commit's or a push's several writes
/// count once.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// [`watch`], with the events of one burst (a commit, a push, a save) sent as one, [`DEBOUNCE`]
/// after the first. Needs a tokio runtime.
pub fn debounced(
    root: &Path,
    relevant: fn(&str) -> bool,
) -> Result<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    let (watcher, mut changes) = watch(root, relevant)?;
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            tokio::time::sleep(DEBOUNCE).await;
            while changes.try_recv().is_ok() {}
            if sender.send(()).await.is_err() {
                break;
            }
        }
    });
    Ok((watcher, receiver))
}

/// A change under a Git directory that can move a branch: its refs, `packed-refs`, `HEAD`.
pub fn is_ref_change(path: &str) -> bool {
    path.contains("/refs/") || path.ends_with("HEAD") || path.ends_with("packed-refs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_changes_are_told_from_object_writes() {
        assert!(is_ref_change("/srv/repo.git/refs/heads/main"));
        assert!(is_ref_change("/srv/repo.git/refs/heads/main.lock"));
        assert!(is_ref_change("/srv/repo/.git/packed-refs"));
        assert!(!is_ref_change("/srv/repo.git/objects/ab/cdef"));
    }
}
