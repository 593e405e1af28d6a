//! Git: snapshots of a revision read from the object database (no checkout, the working tree is
//! never touched), and the revision a working tree comes from.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use git2::{ObjectType, Repository, StatusOptions, Tree};

use spindle_config::snapshot::Snapshot;

/// A folder inside a Git repository: the repository, and the folder's path within it.
pub struct Folder {
    repo: Repository,
    /// `/`-separated, empty for the repository's root.
    sub_path: String,
    display: PathBuf,
}

impl Folder {
    /// Finds the repository that holds `folder`.
    pub fn open(folder: &Path) -> Result<Self> {
        let repo = Repository::discover(folder)
            .with_context(|| format!("{} is not inside a Git repository", folder.display()))?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| anyhow!("{} is a bare repository", repo.path().display()))?
            .canonicalize()?;
        let absolute = folder
            .canonicalize()
            .with_context(|| format!("{} does not exist", folder.display()))?;
        let sub_path = absolute
            .strip_prefix(&workdir)
            .expect("discovered from inside the work tree")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        Ok(Folder {
            repo,
            sub_path,
            display: folder.to_path_buf(),
        })
    }

    /// `sub_path` (`/`-separated) of `repo`, which may be bare; `display` names it in messages.
    pub fn in_repository(repo: Repository, sub_path: &str, display: &str) -> Result<Self> {
        Ok(Folder {
            repo,
            sub_path: sub_path.to_owned(),
            display: PathBuf::from(display),
        })
    }

    /// The repository's `.git` folder.
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// The branch checked out (`main`), or `None` on a detached HEAD.
    pub fn current_branch(&self) -> Option<String> {
        let head = self.repo.head().ok()?;
        if !head.is_branch() {
            return None;
        }
        head.shorthand().ok().map(str::to_owned)
    }

    /// The full commit id that `revision` (a branch, tag, commit or expression like `HEAD~1`)
    /// names.
    pub fn resolve(&self, revision: &str) -> Result<String> {
        let commit = self
            .repo
            .revparse_single(revision)
            .and_then(|object| object.peel_to_commit())
            .with_context(|| format!("no commit `{revision}` in {}", self.display.display()))?;
        Ok(commit.id().to_string())
    }

    /// The folder's files at `revision`, read from the object database.
    pub fn snapshot(&self, revision: &str) -> Result<(Snapshot, String)> {
        let commit_id = self.resolve(revision)?;
        let commit = self.repo.find_commit(git2::Oid::from_str(&commit_id)?)?;
        let root = commit.tree()?;
        let tree = if self.sub_path.is_empty() {
            root
        } else {
            let entry = root.get_path(Path::new(&self.sub_path)).with_context(|| {
                format!("{} does not exist at {revision}", self.display.display())
            })?;
            entry
                .to_object(&self.repo)?
                .into_tree()
                .map_err(|_| anyhow!("{} is not a folder at {revision}", self.display.display()))?
        };
        let mut snapshot = Snapshot::new(&self.display);
        self.read_tree(&tree, "", &mut snapshot)?;
        Ok((snapshot, commit_id))
    }

    fn read_tree(&self, tree: &Tree, prefix: &str, snapshot: &mut Snapshot) -> Result<()> {
        for entry in tree {
            let Ok(name) = entry.name() else { continue };
            let relative = format!("{prefix}{name}");
            match entry.kind() {
                Some(ObjectType::Tree) if !Snapshot::skips_dir(name) => {
                    let subtree = entry.to_object(&self.repo)?.peel_to_tree()?;
                    self.read_tree(&subtree, &format!("{relative}/"), snapshot)?;
                }
                // Symbolic links (mode 120000) are blobs too; like the working tree reader,
                // never follow them.
                Some(ObjectType::Blob) if entry.filemode() != 0o120000 => {
                    let blob = self.repo.find_blob(entry.id())?;
                    let size = blob.size() as u64;
                    snapshot.add_file(relative.clone(), size, || {
                        match std::str::from_utf8(blob.content()) {
                            Ok(text) => Ok(text.to_owned()),
                            Err(_) => bail!("{relative} is not UTF-8 text"),
                        }
                    })?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The commit checked out in the Git repository that holds `folder`, with `-dirty` appended when
/// files under `folder` differ from it; `None` outside a repository or before the first commit.
pub fn of_working_tree(folder: &Path) -> Option<String> {
    let repo = Repository::discover(folder).ok()?;
    let head = repo.head().ok()?.peel_to_commit().ok()?.id().to_string();
    let workdir = repo.workdir()?.canonicalize().ok()?;
    let sub_path = folder.canonicalize().ok()?;
    let sub_path = sub_path.strip_prefix(&workdir).ok()?;
    let mut options = StatusOptions::new();
    options.include_untracked(true).include_ignored(false);
    if !sub_path.as_os_str().is_empty() {
        options.pathspec(sub_path);
    }
    let dirty = repo
        .statuses(Some(&mut options))
        .map(|statuses| !statuses.is_empty())
        .unwrap_or(true);
    Some(if dirty { format!("{head}-dirty") } else { head })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn names_the_commit_and_whether_the_folder_changed_since() {
        let repo = tempfile::tempdir().expect("temp dir");
        let specs = repo.path().join("specs");
        std::fs::create_dir(&specs).expect("mkdir");
        assert_eq!(of_working_tree(&specs), None, "not a repository yet");
        git(repo.path(), &["init", "-q"]);
        std::fs::write(specs.join("a.ncl"), "{}").expect("write");
        std::fs::write(repo.path().join("other.txt"), "x").expect("write");
        git(repo.path(), &["add", "."]);
        git(repo.path(), &["commit", "-qm", "first"]);
        let head = of_working_tree(&specs).expect("a revision");
        assert_eq!(head.len(), 40, "a full commit id: {head}");

        std::fs::write(repo.path().join("other.txt"), "changed").expect("write");
        assert_eq!(
            of_working_tree(&specs),
            Some(head.clone()),
            "outside the folder"
        );
        std::fs::write(specs.join("a.ncl"), "{ x = 1 }").expect("write");
        assert_eq!(of_working_tree(&specs), Some(format!("{head}-dirty")));

        // The committed text, not the working tree's, and only the folder's files.
        let folder = Folder::open(&specs).expect("inside the repository");
        let (snapshot, commit) = folder.snapshot("HEAD").expect("HEAD reads");
        assert_eq!(commit, head);
        assert_eq!(snapshot.text("a.ncl"), Some("{}"));
        assert!(!snapshot.contains("other.txt"));
        assert!(folder.snapshot("no-such-branch").is_err());
    }
}
