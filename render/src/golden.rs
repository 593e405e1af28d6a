//! Folders with one file per rendered object (`kind.namespace.name.yaml`): what `render
//! --output-dir` writes and what golden files are compared with.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context as _, Result};

use crate::{Object, yaml};

/// File name to content, for `objects` as YAML (or JSON).
pub fn files(objects: &[Object], json: bool) -> BTreeMap<String, String> {
    objects
        .iter()
        .map(|object| {
            if json {
                let text = serde_json::to_string_pretty(object.value()).expect("serialises");
                (format!("{}.json", object.file_stem()), text + "\n")
            } else {
                (
                    format!("{}.yaml", object.file_stem()),
                    yaml::to_string(object.value()),
                )
            }
        })
        .collect()
}

/// The files of `dir` (not recursive); empty when it does not exist.
pub fn read(dir: &Path) -> Result<BTreeMap<String, String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(BTreeMap::new());
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry?.path();
        if path.is_file() {
            let name = path
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("could not read {}", path.display()))?;
            files.insert(name, text);
        }
    }
    Ok(files)
}

/// Replaces the files of `dir` with `files`: stale ones are removed.
pub fn write(dir: &Path, files: &BTreeMap<String, String>) -> Result<()> {
    if dir.exists() {
        for name in read(dir)?.keys().filter(|name| !files.contains_key(*name)) {
            std::fs::remove_file(dir.join(name))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    Ok(())
}

/// What differs between `expected` and `actual`, one message per file (with a unified diff for a
/// changed one); empty when they are the same.
pub fn compare(
    expected: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut names: Vec<&String> = expected.keys().chain(actual.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| match (expected.get(name), actual.get(name)) {
            (Some(want), Some(got)) if want == got => None,
            (Some(want), Some(got)) => Some(format!(
                "{name} differs:\n{}",
                similar::TextDiff::from_lines(want, got)
                    .unified_diff()
                    .header("expected", "rendered")
            )),
            (Some(_), None) => Some(format!("{name} is expected but no longer rendered")),
            (None, Some(_)) => Some(format!("{name} is rendered but not expected")),
            (None, None) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_stale_files_and_compare_names_every_difference() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = BTreeMap::from([
            ("a.yaml".to_owned(), "1\n".to_owned()),
            ("b.yaml".to_owned(), "2\n".to_owned()),
        ]);
        write(dir.path(), &first).expect("write");
        let second = BTreeMap::from([
            ("a.yaml".to_owned(), "one\n".to_owned()),
            ("c.yaml".to_owned(), "3\n".to_owned()),
        ]);
        let differences = compare(&first, &second);
        assert_eq!(differences.len(), 3, "{differences:?}");
        assert!(
            differences[0].starts_with("a.yaml differs") && differences[0].contains("-1\n+one")
        );
        assert_eq!(differences[1], "b.yaml is expected but no longer rendered");
        assert_eq!(differences[2], "c.yaml is rendered but not expected");
        write(dir.path(), &second).expect("write");
        assert_eq!(read(dir.path()).expect("read"), second);
        assert!(compare(&second, &second).is_empty());
    }
}
