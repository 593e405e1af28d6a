//! A component's `files`: which host files the guest sees, and where.
//!
//! A manifest is untrusted (it may come from a pushed artifact or a followed commit), so a mount
//! cannot reach outside the app: its source must resolve, symbolic links followed, inside the
//! app's folder; its destination is an absolute guest path with no `..`, normalised. Symbolic
//! links inside a mounted folder are not followed.

use std::path::{Path, PathBuf};

/// Files under `dir` matching `pattern` (`*` within a path segment, `**` across segments),
/// mounted at their path relative to `dir`.
pub fn glob(dir: &Path, pattern: &str) -> Result<Vec<(PathBuf, String)>, String> {
    check_relative(pattern)?;
    let pattern: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut found = Vec::new();
    walk(dir, "", &mut |relative, path| {
        let segments: Vec<&str> = relative.split('/').collect();
        if matches(&pattern, &segments) {
            found.push((path.to_path_buf(), format!("/{relative}")));
        }
    })
    .map_err(|err| format!("cannot read {}: {err}", dir.display()))?;
    found.sort();
    Ok(found)
}

/// `source` (a file or folder relative to `dir`) mounted at `destination`.
pub fn placement(
    dir: &Path,
    source: &str,
    destination: &str,
) -> Result<Vec<(PathBuf, String)>, String> {
    check_relative(source)?;
    let destination = guest_path(destination)?;
    let root = dir.join(source);
    if !root.exists() {
        return Err(format!("`{source}` does not exist in {}", dir.display()));
    }
    inside(dir, &root, source)?;
    if root.is_file() {
        return Ok(vec![(root, destination)]);
    }
    if !root.is_dir() {
        return Err(format!("`{source}` is neither a file nor a folder"));
    }
    let mut found = Vec::new();
    let base = destination.trim_end_matches('/');
    walk(&root, "", &mut |relative, path| {
        found.push((path.to_path_buf(), format!("{base}/{relative}")));
    })
    .map_err(|err| format!("cannot read {}: {err}", root.display()))?;
    found.sort();
    Ok(found)
}

/// `destination` as a normalised absolute guest path: `/` first, no empty or `.` segments, and
/// no `..` (which would leave the guest's root, and the folder the files are copied into).
fn guest_path(destination: &str) -> Result<String, String> {
    if !destination.starts_with('/') {
        return Err(format!(
            "destination `{destination}` must be an absolute path"
        ));
    }
    let mut path = String::new();
    for segment in destination.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                return Err(format!("destination `{destination}` must not contain `..`"));
            }
            segment => {
                path.push('/');
                path.push_str(segment);
            }
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// Refuses `path` (`source` in the manifest) when, symbolic links followed, it is not inside
/// `dir`.
fn inside(dir: &Path, path: &Path, source: &str) -> Result<(), String> {
    let resolve = |path: &Path| {
        path.canonicalize()
            .map_err(|err| format!("cannot resolve {}: {err}", path.display()))
    };
    if resolve(path)?.starts_with(resolve(dir)?) {
        Ok(())
    } else {
        Err(format!(
            "`{source}` leads outside the app's folder (through a symbolic link)"
        ))
    }
}

fn check_relative(path: &str) -> Result<(), String> {
    if path.starts_with('/') || path.split('/').any(|segment| segment == "..") {
        Err(format!("`{path}` must stay inside the app's folder"))
    } else {
        Ok(())
    }
}

/// Calls `found` with every regular file under `dir` (symbolic links are not followed).
fn walk(dir: &Path, prefix: &str, found: &mut dyn FnMut(&str, &Path)) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &relative, found)?;
        } else if kind.is_file() {
            found(&relative, &entry.path());
        }
    }
    Ok(())
}

fn matches(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            matches(&pattern[1..], path) || (!path.is_empty() && matches(pattern, &path[1..]))
        }
        (Some(segment), Some(name)) => {
            segment_matches(segment, name) && matches(&pattern[1..], &path[1..])
        }
        _ => false,
    }
}

fn segment_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => name.strip_prefix(head).is_some_and(|rest| {
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && segment_matches(tail, &rest[i..]))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_spin_patterns() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "static/index.html",
            "static/css/site.css",
            "static/notes.txt",
            "top.md",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let guest =
            |found: Vec<(PathBuf, String)>| found.into_iter().map(|(_, g)| g).collect::<Vec<_>>();
        assert_eq!(
            guest(glob(dir.path(), "static/**/*").unwrap()),
            [
                "/static/css/site.css",
                "/static/index.html",
                "/static/notes.txt"
            ]
        );
        assert_eq!(
            guest(glob(dir.path(), "static/*.html").unwrap()),
            ["/static/index.html"]
        );
        assert_eq!(guest(glob(dir.path(), "top.md").unwrap()), ["/top.md"]);
        assert_eq!(
            guest(placement(dir.path(), "static/css", "/assets").unwrap()),
            ["/assets/site.css"]
        );
        assert!(glob(dir.path(), "../etc/*").is_err());
        assert!(placement(dir.path(), "missing", "/x").is_err());
        assert_eq!(
            guest(placement(dir.path(), "top.md", "//docs/./top.md").unwrap()),
            ["/docs/top.md"]
        );
        assert_eq!(
            guest(placement(dir.path(), "static/css", "/").unwrap()),
            ["/site.css"]
        );
    }

    #[test]
    fn mounts_cannot_leave_the_app() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.txt"), "x").unwrap();
        let err = placement(dir.path(), "x.txt", "/../../../../../../tmp/owned.txt").unwrap_err();
        assert!(err.contains("must not contain `..`"), "{err}");
        assert!(placement(dir.path(), "x.txt", "relative.txt").is_err());

        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("link"))
            .unwrap();
        let err = placement(dir.path(), "link", "/secret.txt").unwrap_err();
        assert!(err.contains("outside the app's folder"), "{err}");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("data")).unwrap();
        let err = placement(dir.path(), "data/secret.txt", "/s").unwrap_err();
        assert!(err.contains("outside the app's folder"), "{err}");
        let err = placement(dir.path(), "data", "/d").unwrap_err();
        assert!(err.contains("outside the app's folder"), "{err}");
        // Links inside a mounted folder are skipped, not followed; globs skip them too.
        std::fs::create_dir(dir.path().join("static")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("static/secret.txt"),
        )
        .unwrap();
        assert!(placement(dir.path(), "static", "/s").unwrap().is_empty());
        assert!(
            glob(dir.path(), "**/*")
                .unwrap()
                .iter()
                .all(|(_, g)| !g.contains("secret"))
        );
    }
}
