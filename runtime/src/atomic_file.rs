//! Files written whole or never: another process reading the same cache folder (a second
//! `spindle`, another container's shim) sees the old file or the new one, not half of one.

use std::{fs, io, path::Path};

/// Writes `bytes` to `path` through a temporary file beside it and a rename, creating the folder.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&temp, bytes)?;
    fs::rename(&temp, path)
}
