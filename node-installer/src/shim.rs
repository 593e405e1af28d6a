//! Putting the shim binary on the node without ever overwriting one that runs: the binary is
//! copied under a content-addressed name (`containerd-shim-spindle-v1-<sha256 prefix>`), verified,
//! and the stable name is a symbolic link swapped by rename. A shim that is running keeps its
//! file; the next container starts the new one ("text file busy" cannot happen, and an upgrade
//! is a pointer swap).

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
    /// The stable name containerd runs.
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

/// Installs `source` (which must hash to `sha256`) into `dir` and points the stable name at it.
pub fn install(source: &Path, sha256: &str, dir: &Path) -> Result<Installed> {
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
    let path = dir.join(SHIM_NAME);
    if fs::read_link(&path).ok().as_deref() != Some(Path::new(&name)) {
        let temporary = dir.join(format!(".{SHIM_NAME}.{}", std::process::id()));
        let _ = fs::remove_file(&temporary);
        std::os::unix::fs::symlink(&name, &temporary)?;
        fs::rename(&temporary, &path)
            .with_context(|| format!("cannot point {} at {name}", path.display()))?;
        sync_dir(dir)?;
        changed = true;
    }
    Ok(Installed {
        path,
        target,
        changed,
    })
}

/// Removes the stable name and every content-addressed copy; running shims keep their files
/// until they exit.
pub fn uninstall(dir: &Path) -> Result<bool> {
    let mut changed = false;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(false);
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == SHIM_NAME || name.starts_with(&format!("{SHIM_NAME}-")) {
            fs::remove_file(entry.path())?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
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
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
    }
    fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))?;
    sync_dir(dir)
}

/// [`write_atomically`], keeping the mode and owner `path` has (a containerd config may hold
/// registry credentials, and be 0600 for that); a new file gets 0644, root's.
pub fn write_preserving(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let Ok(existing) = fs::metadata(path) else {
        return write_atomically(path, bytes, 0o644);
    };
    let mode = existing.permissions().mode() & 0o7777;
    let dir = path.parent().context("a file has a parent folder")?;
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
        if let Err(err) =
            std::os::unix::fs::fchown(&file, Some(existing.uid()), Some(existing.gid()))
            && (existing.uid() != 0 || existing.gid() != 0)
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

        let first = install(&v1, &sha1, &bin).unwrap();
        assert!(first.changed);
        assert_eq!(fs::read(&first.path).unwrap(), b"shim one");
        assert!(!install(&v1, &sha1, &bin).unwrap().changed, "idempotent");

        // A "running" shim holds the old file open; the upgrade does not touch it.
        let mut running = fs::File::open(&first.target).unwrap();
        let second = install(&v2, &sha2, &bin).unwrap();
        assert!(second.changed);
        assert_ne!(second.target, first.target);
        assert_eq!(fs::read(&second.path).unwrap(), b"shim two");
        let mut old = String::new();
        running.read_to_string(&mut old).unwrap();
        assert_eq!(old, "shim one");

        assert!(uninstall(&bin).unwrap());
        assert!(!bin.join(SHIM_NAME).exists());
        assert!(!uninstall(&bin).unwrap());
    }

    #[test]
    fn a_binary_with_the_wrong_hash_is_refused() {
        let work = tempfile::tempdir().unwrap();
        let (path, _) = file(work.path(), "shim", b"tampered");
        let err = install(&path, &"0".repeat(64), &work.path().join("bin")).unwrap_err();
        assert!(err.to_string().contains("refusing to install"), "{err}");
        assert!(!work.path().join("bin").join(SHIM_NAME).exists());
    }
}
