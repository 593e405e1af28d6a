//! The revision a folder's contents come from, for the `spindle.dev/revision` label.

use std::path::Path;

use git2::{Repository, StatusOptions};

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
    }
}
