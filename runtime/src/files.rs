//! A component's `files`: which host files the guest sees, and where.

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
    if !destination.starts_with('/') {
        return Err(format!(
            "destination `{destination}` must be an absolute path"
        ));
    }
    let root = dir.join(source);
    if root.is_file() {
        return Ok(vec![(root, destination.to_owned())]);
    }
    if !root.is_dir() {
        return Err(format!("`{source}` does not exist in {}", dir.display()));
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
    }
}
