//! The Nickel library and the Rust model describe the same fields: evaluate the library's contracts
//! in the sandbox and compare their field names with the JSON Schema of the Rust types.

use std::collections::BTreeSet;

use spindle_config::evaluate::{Evaluator, Limits};
use spindle_schema::{NICKEL_LIBRARY, json_schema};

fn library_fields(contract: &str) -> BTreeSet<String> {
    let evaluator = Evaluator::new(
        Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("spindle-cache/components")),
        Limits::default(),
    )
    .expect("evaluator");
    let program = format!("std.record.fields_with_opts (import \"spindle.ncl\").{contract}");
    let output = evaluator
        .eval(
            "fields.ncl",
            &[("fields.ncl".to_owned(), program)],
            &[("spindle.ncl".to_owned(), NICKEL_LIBRARY.to_owned())],
        )
        .unwrap_or_else(|d| panic!("library evaluates: {d:?}"));
    serde_json::from_value(output.value).expect("an array of field names")
}

fn schema_fields(definition: &str) -> BTreeSet<String> {
    let schema = json_schema();
    let properties = if definition == "Platform" {
        &schema["properties"]
    } else {
        &schema["$defs"][definition]["properties"]
    };
    properties
        .as_object()
        .unwrap_or_else(|| panic!("{definition} has properties in the JSON Schema"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn library_contracts_and_rust_types_have_the_same_fields() {
    for contract in [
        "Platform",
        "App",
        "Runtime",
        "Shim",
        "Autoscaling",
        "Ingress",
        "HttpCheck",
        "Resources",
        "RuntimeConfig",
        "Toleration",
        "Metadata",
        "ObjectMetadata",
    ] {
        assert_eq!(
            library_fields(contract),
            schema_fields(contract),
            "spindle.ncl's {contract} and the Rust {contract} disagree"
        );
    }
}
