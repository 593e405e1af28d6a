//! A repository's files at one moment: read once, then evaluated, validated and rendered from
//! memory, so that a revision is judged as a whole and nothing reads the disk half-way.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

/// Extensions of the files handed to the evaluator.
const CONFIG_EXTENSIONS: &[&str] = &["ncl", "yaml", "yml", "json", "toml", "txt"];
/// Folders never read: version control, build output, spindle's own state and golden files.
const SKIPPED_DIRS: &[&str] = &[".git", "target", ".spindle", "node_modules", GOLDEN_DIR];
/// Where `spindle test` keeps a repository's expected renders, one folder per environment.
pub const GOLDEN_DIR: &str = "golden";
/// Config files larger than this are refused rather than evaluated.
const MAX_CONFIG_FILE: u64 = 8 << 20;
/// Where environment entry files live.
pub const ENVIRONMENTS_DIR: &str = "environments";
const ENTRY_EXTENSIONS: &[&str] = &["ncl", "yaml", "yml", "json"];

/// The files of a repository (or of a folder inside one), by `/`-separated relative path.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// How to show the root to the user, e.g. `examples/gitops-repo`.
    display_root: PathBuf,
    /// Contents of configuration files.
    config: BTreeMap<String, String>,
    /// Every regular file, configuration or not.
    paths: BTreeSet<String>,
}

impl Snapshot {
    /// Reads the working tree under `root`. Symbolic links are not followed: a repository may not
    /// point spindle at files outside itself.
    pub fn from_dir(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!("{} is not a directory", root.display());
        }
        let mut snapshot = Snapshot::new(root);
        snapshot.read_dir(root, "")?;
        Ok(snapshot)
    }

    /// A snapshot from in-memory files (as read from a git tree, or in tests).
    pub fn from_files(
        display_root: impl Into<PathBuf>,
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut snapshot = Snapshot::new(display_root);
        for (path, content) in files {
            snapshot.paths.insert(path.clone());
            if is_config(&path) {
                snapshot.config.insert(path, content);
            }
        }
        snapshot
    }

    /// An empty snapshot, to be filled with [`Snapshot::add_file`].
    pub fn new(display_root: impl Into<PathBuf>) -> Self {
        Snapshot {
            display_root: display_root.into(),
            ..Snapshot::default()
        }
    }

    /// Adds the regular file at `relative` (`/`-separated) of `size` bytes; `read` gives its text
    /// and is called only for configuration files, which are limited in size.
    pub fn add_file(
        &mut self,
        relative: String,
        size: u64,
        read: impl FnOnce() -> Result<String>,
    ) -> Result<()> {
        if is_config(&relative) {
            if size > MAX_CONFIG_FILE {
                bail!(
                    "{relative} is {size} bytes; configuration files are limited to {MAX_CONFIG_FILE}"
                );
            }
            self.config.insert(relative.clone(), read()?);
        }
        self.paths.insert(relative);
        Ok(())
    }

    /// Whether a folder of this name is left out of snapshots.
    pub fn skips_dir(name: &str) -> bool {
        SKIPPED_DIRS.contains(&name)
    }

    fn read_dir(&mut self, dir: &Path, prefix: &str) -> Result<()> {
        let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let relative = format!("{prefix}{name}");
            let kind = entry.file_type()?;
            if kind.is_dir() && !Self::skips_dir(name) {
                self.read_dir(&entry.path(), &format!("{relative}/"))?;
            } else if kind.is_file() {
                let path = entry.path();
                self.add_file(relative, entry.metadata()?.len(), || {
                    fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
                })?;
            }
        }
        Ok(())
    }

    /// How to show the root to the user, e.g. `examples/gitops-repo`.
    pub fn display_root(&self) -> &Path {
        &self.display_root
    }

    /// The path to show for a file of the snapshot.
    pub fn display_path(&self, relative: &str) -> String {
        let generated = relative.starts_with('<');
        if generated
            || self.display_root.as_os_str().is_empty()
            || self.display_root == Path::new(".")
        {
            relative.to_owned()
        } else {
            self.display_root.join(relative).display().to_string()
        }
    }

    /// Whether the snapshot has a regular file at `relative`, configuration or not.
    pub fn contains(&self, relative: &str) -> bool {
        self.paths.contains(relative)
    }

    /// The text of a configuration file.
    pub fn text(&self, relative: &str) -> Option<&str> {
        self.config.get(relative).map(String::as_str)
    }

    /// Configuration files, for the evaluator.
    pub fn config_files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.config
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_str()))
    }

    /// Environments by name, with their entry files: `environments/NAME.{ncl,yaml,yml,json}`.
    pub fn environments(&self) -> BTreeMap<String, String> {
        let prefix = format!("{ENVIRONMENTS_DIR}/");
        self.config
            .keys()
            .filter_map(|path| {
                let file = path.strip_prefix(&prefix)?;
                let (name, extension) = file.rsplit_once('.')?;
                (!name.contains('/') && ENTRY_EXTENSIONS.contains(&extension))
                    .then(|| (name.to_owned(), path.clone()))
            })
            .collect()
    }
}

fn is_config(path: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, extension)| CONFIG_EXTENSIONS.contains(&extension))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_environments_by_file_name() {
        let snapshot = Snapshot::from_files(
            "repo",
            [
                ("environments/production.ncl".to_owned(), String::new()),
                ("environments/staging.yaml".to_owned(), String::new()),
                ("environments/nested/x.ncl".to_owned(), String::new()),
                ("environments/readme.md".to_owned(), String::new()),
                ("apps.ncl".to_owned(), String::new()),
            ],
        );
        let names: Vec<_> = snapshot.environments().into_keys().collect();
        assert_eq!(names, ["production", "staging"]);
        assert!(snapshot.contains("environments/readme.md"));
        assert_eq!(snapshot.text("environments/readme.md"), None);
        assert_eq!(snapshot.display_path("apps.ncl"), "repo/apps.ncl");
    }

    #[cfg(unix)]
    #[test]
    fn does_not_follow_symbolic_links() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.ncl"), "1").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd.txt")).unwrap();
        let snapshot = Snapshot::from_dir(dir.path()).unwrap();
        assert_eq!(snapshot.text("a.ncl"), Some("1"));
        assert!(!snapshot.contains("passwd.txt"));
    }
}
