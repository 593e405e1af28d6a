//! Putting the shim binary on the node without ever overwriting one that runs: the binary is
//! copied under a content-addressed name (`containerd-shim-spindle-v1-<sha256 prefix>`), verified,
//! and each runtime gets a symbolic link of its own, `containerd-shim-spindle-v1@<handler>`,
//! swapped by rename, which its containerd config entry names. A shim that is running keeps its
//! file; the next container starts the new one ("text file busy" cannot happen, and an upgrade
//! is a pointer swap). Two runtimes on one node have two links; removing one leaves the other's
//! link and file. The stable name `containerd-shim-spindle-v1` (what clients that resolve a
//! runtime type on PATH, like `ctr run --runtime io.containerd.spindle.v1`, start) points at the
//! last install, or at a remaining runtime's file.

use std::{
    fs,
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

/// The shim's stable file name: containerd derives it from `io.containerd.spindle.v1`.
pub const SHIM_NAME: &str = "containerd-shim-spindle-v1";

/// What an install did to the shim directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Installed {
    /// The runtime's own link, which its containerd config entry names.
    pub path: PathBuf,
    /// The content-addressed file it points at.
    pub target: PathBuf,
    /// Whether anything changed (a new file or a moved pointer).
    pub changed: bool,
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The link runtime `handler`'s config entry names.
pub fn handler_link(handler: &str) -> String {
    format!("{SHIM_NAME}@{handler}")
}

/// Refuses a handler that cannot be part of a file name (it comes from the rendered Job).
pub fn check_handler(handler: &str) -> Result<()> {
    let fine = !handler.is_empty()
        && !handler.starts_with('.')
        && handler
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !fine {
        bail!("`{handler}` is not a handler name (letters, digits, `-`, `_`, `.`)");
    }
    Ok(())
}

/// Installs `source` (which must hash to `sha256`) into `dir` for runtime `handler`: the file by
/// content, the handler's link, and the stable name, pointing at it.
pub fn install(source: &Path, sha256: &str, dir: &Path, handler: &str) -> Result<Installed> {
    check_handler(handler)?;
    // Read once: what is hashed is what is installed, whatever happens to `source` meanwhile.
    let bytes = fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(sha256) {
        bail!(
            "{} has sha256 {actual}, not the {sha256} the runtime names: refusing to install it",
            source.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = format!("{SHIM_NAME}-{}", &actual[..16]);
    let target = dir.join(&name);
    let mut changed = false;
    if !target.exists() || sha256_of(&target)? != actual {
        write_atomically(&target, &bytes, 0o755)?;
        changed = true;
    }
    let link = handler_link(handler);
    // The stable name moves with the runtime it follows; another runtime's (or an install from
    // before handler links, whose config names it) keeps its file.
    let previous = fs::read_link(dir.join(&link)).ok();
    let stable = fs::read_link(dir.join(SHIM_NAME)).ok();
    changed |= point(dir, &link, &name)?;
    if stable.is_none() || stable == previous {
        changed |= point(dir, SHIM_NAME, &name)?;
    }
    Ok(Installed {
        path: dir.join(link),
        target,
        changed,
    })
}

/// Points the symbolic link `dir/link` at `name` (by rename: never missing); whether it moved.
fn point(dir: &Path, link: &str, name: &str) -> Result<bool> {
    let path = dir.join(link);
    if fs::read_link(&path).ok().as_deref() == Some(Path::new(name)) {
        return Ok(false);
    }
    let temporary = dir.join(format!(".{link}.{}", std::process::id()));
    let _ = fs::remove_file(&temporary);
    std::os::unix::fs::symlink(name, &temporary)?;
    fs::rename(&temporary, &path)
        .with_context(|| format!("cannot point {} at {name}", path.display()))?;
    sync_dir(dir)?;
    Ok(true)
}

/// Removes runtime `handler`'s link, and the files no remaining link points at; the stable name
/// goes with the last runtime, unless `keep_stable` (a containerd config entry from before
/// handler links still names it). Running shims keep their files until they exit.
pub fn uninstall(dir: &Path, handler: &str, keep_stable: bool) -> Result<bool> {
    check_handler(handler)?;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(false);
    };
    let mut changed = false;
    let own = dir.join(handler_link(handler));
    if fs::symlink_metadata(&own).is_ok() {
        fs::remove_file(&own)?;
        changed = true;
    }
    let mut links = Vec::new();
    let mut files = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{SHIM_NAME}@")) && dir.join(&name) != own {
            links.push(name);
        } else if name.starts_with(&format!("{SHIM_NAME}-")) {
            files.push(name);
        }
    }
    let mut targets: Vec<PathBuf> = links
        .iter()
        .filter_map(|link| fs::read_link(dir.join(link)).ok())
        .collect();
    let stable = dir.join(SHIM_NAME);
    if keep_stable {
        targets.extend(fs::read_link(&stable).ok());
    }
    match targets.first() {
        _ if keep_stable => {}
        None => {
            if fs::symlink_metadata(&stable).is_ok() {
                fs::remove_file(&stable)?;
                changed = true;
            }
        }
        Some(first) => {
            let current = fs::read_link(&stable).ok();
            if !current.as_ref().is_some_and(|c| targets.contains(c)) {
                changed |= point(dir, SHIM_NAME, &first.to_string_lossy())?;
            }
        }
    }
    for file in files {
        if !targets.iter().any(|target| target == Path::new(&file)) {
            fs::remove_file(dir.join(&file))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write_through_temporary(path, bytes, mode, None)
}

/// [`write_atomically`], keeping the mode and owner `path` has (a containerd config may hold
/// registry credentials, and be 0600 for that); a new file gets 0644, root's.
pub fn write_preserving(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let Ok(existing) = fs::metadata(path) else {
        return write_atomically(path, bytes, 0o644);
    };
    let mode = existing.permissions().mode() & 0o7777;
    write_through_temporary(path, bytes, mode, Some((existing.uid(), existing.gid())))
}

/// The one way both write: a temporary file beside `path` gets its mode (and `owner`) before any
/// byte, is written and synced, and is renamed into place.
fn write_through_temporary(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().context("a file has a parent folder")?;
    fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    {
        let mut file = fs::File::create(&temporary)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        // Only root may give a file away; the installer runs as root on nodes.
        if let Some((uid, gid)) = owner
            && let Err(err) = std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            && (uid != 0 || gid != 0)
        {
            eprintln!("could not keep the owner of {}: {err}", path.display());
        }
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_file_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        fs::write(&config, "secret = 1\n").unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        write_preserving(&config, b"secret = 2\n").unwrap();
        assert_eq!(fs::read_to_string(&config).unwrap(), "secret = 2\n");
        let mode = fs::metadata(&config).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        let fresh = dir.path().join("new.toml");
        write_preserving(&fresh, b"x").unwrap();
        assert_eq!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o7777,
            0o644
        );
    }

    fn file(dir: &Path, name: &str, bytes: &[u8]) -> (PathBuf, String) {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        (path, hex::encode(Sha256::digest(bytes)))
    }

    #[test]
    fn installs_by_content_and_swaps_the_pointer() {
        let work = tempfile::tempdir().unwrap();
        let bin = work.path().join("bin");
        let (v1, sha1) = file(work.path(), "v1", b"shim one");
        let (v2, sha2) = file(work.path(), "v2", b"shim two");

        let first = install(&v1, &sha1, &bin, "spindle").unwrap();
        assert!(first.changed);
        assert_eq!(fs::read(&first.path).unwrap(), b"shim one");
        assert!(
            !install(&v1, &sha1, &bin, "spindle").unwrap().changed,
            "idempotent"
        );

        // A "running" shim holds the old file open; the upgrade does not touch it.
        let mut running = fs::File::open(&first.target).unwrap();
        let second = install(&v2, &sha2, &bin, "spindle").unwrap();
        assert!(second.changed);
        assert_ne!(second.target, first.target);
        assert_eq!(fs::read(&second.path).unwrap(), b"shim two");
        let mut old = String::new();
        running.read_to_string(&mut old).unwrap();
        assert_eq!(old, "shim one");

        assert!(uninstall(&bin, "spindle", false).unwrap());
        assert!(!bin.join(SHIM_NAME).exists());
        assert_eq!(fs::read_dir(&bin).unwrap().count(), 0, "no file is left");
        assert!(!uninstall(&bin, "spindle", false).unwrap());
    }

    #[test]
    fn two_runtimes_keep_their_own_links_and_files() {
        let work = tempfile::tempdir().unwrap();
        let bin = work.path().join("bin");
        let (v1, sha1) = file(work.path(), "v1", b"shim one");
        let (v2, sha2) = file(work.path(), "v2", b"shim two");
        let b = install(&v2, &sha2, &bin, "spin-b").unwrap();
        let a = install(&v1, &sha1, &bin, "spin-a").unwrap();
        assert_eq!(
            fs::read(bin.join(SHIM_NAME)).unwrap(),
            b"shim two",
            "the stable name stays with the runtime that made it"
        );

        // Taking b off leaves a's link and file, and the stable name follows a.
        assert!(uninstall(&bin, "spin-b", false).unwrap());
        assert_eq!(fs::read(&a.path).unwrap(), b"shim one");
        assert!(!b.path.exists() && !b.target.exists());
        assert_eq!(fs::read(bin.join(SHIM_NAME)).unwrap(), b"shim one");

        // A runtime sharing a's file: removing a keeps the file for it.
        let c = install(&v1, &sha1, &bin, "spin-c").unwrap();
        assert!(uninstall(&bin, "spin-a", false).unwrap());
        assert_eq!(fs::read(&c.path).unwrap(), b"shim one");
        assert!(uninstall(&bin, "spin-c", false).unwrap());
        assert_eq!(fs::read_dir(&bin).unwrap().count(), 0);
    }

    #[test]
    fn an_install_from_before_handler_links_keeps_its_shim() {
        let work = tempfile::tempdir().unwrap();
        let bin = work.path().join("bin");
        let (v1, sha1) = file(work.path(), "v1", b"legacy shim");
        let (v2, sha2) = file(work.path(), "v2", b"new shim");
        // An earlier installer: a content file and the stable name, no handler link.
        fs::create_dir_all(&bin).unwrap();
        let legacy = format!("{SHIM_NAME}-{}", &sha1[..16]);
        fs::copy(&v1, bin.join(&legacy)).unwrap();
        std::os::unix::fs::symlink(&legacy, bin.join(SHIM_NAME)).unwrap();

        install(&v2, &sha2, &bin, "spin-b").unwrap();
        assert_eq!(fs::read(bin.join(SHIM_NAME)).unwrap(), b"legacy shim");
        assert!(uninstall(&bin, "spin-b", true).unwrap());
        assert_eq!(fs::read(bin.join(SHIM_NAME)).unwrap(), b"legacy shim");
    }

    #[test]
    fn handlers_that_are_not_file_names_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "x y"] {
            assert!(check_handler(bad).is_err(), "{bad:?}");
        }
        check_handler("spin-fast_2.v1").unwrap();
    }

    #[test]
    fn a_binary_with_the_wrong_hash_is_refused() {
        let work = tempfile::tempdir().unwrap();
        let (path, _) = file(work.path(), "shim", b"tampered");
        let err = install(&path, &"0".repeat(64), &work.path().join("bin"), "spindle").unwrap_err();
        assert!(err.to_string().contains("refusing to install"), "{err}");
        assert!(!work.path().join("bin").join(SHIM_NAME).exists());
    }
}
