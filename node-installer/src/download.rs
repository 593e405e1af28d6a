//! `--shim-url`: the shim fetched (over HTTP(S), or copied from a `file://` path) into the shim
//! directory (so that installing it is
//! a rename on the same filesystem). The caller checks the sha256 before anything uses it.

use std::{
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

/// Larger than any shim; a URL serving more is refused rather than filling the node's disk.
const MAX_BYTES: u64 = 512 << 20;

/// A downloaded file, removed when dropped.
#[derive(Debug)]
pub struct Download(PathBuf);

impl Download {
    /// Where the downloaded file is, inside the shim directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Fetches `url` (`https://`, `http://`, or `file://` for a file in the installer's image) into
/// `dir`.
pub fn fetch(url: &str, dir: &Path, timeout: Duration) -> Result<Download> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let download = Download(dir.join(format!(".download.{}", std::process::id())));
    if let Some(path) = url.strip_prefix("file://") {
        std::fs::copy(path, download.path()).with_context(|| format!("cannot copy {path}"))?;
        return Ok(download);
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        bail!("--shim-url {url}: only https://, http:// and file:// URLs are fetched");
    }
    // reqwest's rustls is built without a crypto provider; ring is the one the workspace uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .context("cannot make an HTTP client")?;
    let mut response = client
        .get(url)
        .send()
        .with_context(|| format!("cannot fetch {url}"))?;
    if !response.status().is_success() {
        bail!(
            "cannot fetch {url}: the server answered {}",
            response.status()
        );
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BYTES)
    {
        bail!("{url} is larger than {} MiB: not a shim", MAX_BYTES >> 20);
    }
    let mut file = std::fs::File::create(download.path())
        .with_context(|| format!("cannot write {}", download.path().display()))?;
    let copied = std::io::copy(&mut response.by_ref().take(MAX_BYTES + 1), &mut file)
        .with_context(|| format!("cannot download {url}"))?;
    if copied > MAX_BYTES {
        bail!("{url} is larger than {} MiB: not a shim", MAX_BYTES >> 20);
    }
    file.flush()?;
    Ok(download)
}
