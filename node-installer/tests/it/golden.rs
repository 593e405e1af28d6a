//! containerd configs of every supported layout (containerd 1.x and 2.x, schema 1, the
//! distributions' generated and template files, drop-ins, configs with comments and other
//! runtimes) and what the installer makes of them: `tests/golden/node-installer/CASE/input.toml`
//! becomes `expected.toml`. `SPINDLE_UPDATE_GOLDEN=1` rewrites the expected files (review them).

use std::{collections::BTreeMap, path::Path};

use spindle_node_installer::config::{self, RuntimeEntry};

const CASES: &str = "../tests/golden/node-installer";

fn entry(case: &Path) -> RuntimeEntry {
    let options: BTreeMap<String, serde_json::Value> =
        match std::fs::read_to_string(case.join("args.json")) {
            Ok(text) => {
                let args: serde_json::Value = serde_json::from_str(&text).unwrap();
                serde_json::from_value(args["options"].clone()).unwrap()
            }
            Err(_) => BTreeMap::new(),
        };
    RuntimeEntry {
        handler: "spindle".to_owned(),
        runtime_type: "io.containerd.spindle.v1".to_owned(),
        runtime_path: Some("/opt/spindle/bin/containerd-shim-spindle-v1".to_owned()),
        options,
    }
}

#[test]
fn every_layout_gets_the_runtime_and_keeps_everything_else() {
    let update = std::env::var_os("SPINDLE_UPDATE_GOLDEN").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(CASES)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "{cases:?}");
    for case in cases {
        let input = std::fs::read_to_string(case.join("input.toml")).unwrap();
        let entry = entry(&case);
        let patched = config::add(&input, &entry)
            .unwrap()
            .unwrap_or_else(|| panic!("{}: nothing changed", case.display()));
        let expected_path = case.join("expected.toml");
        if update {
            std::fs::write(&expected_path, &patched).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "{} is missing: run with SPINDLE_UPDATE_GOLDEN=1",
                expected_path.display()
            )
        });
        assert_eq!(patched, expected, "{}", case.display());
        // Every comment of the input survives.
        for comment in input.lines().filter(|l| l.trim_start().starts_with('#')) {
            assert!(
                patched.contains(comment),
                "{}: lost `{comment}`",
                case.display()
            );
        }
        // A second run changes nothing; removing the runtime leaves no spindle entry.
        assert_eq!(
            config::add(&patched, &entry).unwrap(),
            None,
            "{}",
            case.display()
        );
        let removed = config::remove(&patched, "spindle").unwrap().unwrap();
        assert!(!config::has_runtime(&removed, "spindle").unwrap());
        assert!(
            !removed.contains("containerd-shim-spindle"),
            "{}",
            case.display()
        );
    }
}
