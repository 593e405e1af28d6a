//! Kubernetes-style YAML for JSON values, readable by YAML 1.1 and 1.2 parsers alike.
//!
//! kubectl (go-yaml) still reads YAML 1.1, where an unquoted `yes`, `on` or `0755` is not a
//! string; serde_yaml writes YAML 1.2 and leaves them bare. So the output is written here: a
//! string is left plain only when no parser could take it for anything else, and the layout is
//! fixed (two spaces, sequences flush with their key) so that the bytes never depend on a library's
//! formatting choices.

use serde_json::{Map, Value};

/// The YAML document for `value` (normally an object), ending in a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_sequence(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize, first_inline: bool) {
    for (index, (key, value)) in map.iter().enumerate() {
        if !(first_inline && index == 0) {
            pad(out, indent);
        }
        out.push_str(&string(key));
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(out, inner, indent + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_sequence(out, items, indent);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

fn write_sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Object(inner) if !inner.is_empty() => {
                out.push(' ');
                write_map(out, inner, indent + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_sequence(out, inner, indent + 2);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar or an empty collection, on one line.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

fn string(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_owned()
    } else if text.chars().any(char::is_control) {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(text).expect("strings serialise")
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// Whether `text` reads back as this same string, unquoted, under YAML 1.1 and 1.2.
fn is_plain_safe(text: &str) -> bool {
    const KEYWORDS: [&str; 11] = [
        "null", "~", "true", "false", "yes", "no", "y", "n", "on", "off", "",
    ];
    let Some(first) = text.chars().next() else {
        return false;
    };
    let second = text.chars().nth(1);
    let starts_well = first.is_ascii_alphabetic()
        || first == '_'
        || first == '/'
        || (first == '-' && second.is_some_and(|c| c.is_ascii_alphabetic() || c == '-'));
    starts_well
        && !KEYWORDS.contains(&text.to_ascii_lowercase().as_str())
        && !text.ends_with([' ', ':'])
        && !text.contains(": ")
        && !text.contains(" #")
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " -_./:@=+()~$^;<?".contains(c))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lays_out_maps_and_sequences_like_kubectl() {
        let value = json!({
            "kind": "Deployment",
            "spec": {"replicas": 2, "args": ["--a=b", "x"], "env": [{"name": "A", "value": "1"}, {"name": "B"}]},
            "empty": {}, "none": [],
        });
        assert_eq!(
            to_string(&value),
            "kind: Deployment\nspec:\n  replicas: 2\n  args:\n  - --a=b\n  - x\n  env:\n  - name: A\n    value: '1'\n  - name: B\nempty: {}\nnone: []\n"
        );
    }

    #[test]
    fn quotes_whatever_a_yaml_1_1_parser_would_not_read_as_that_string() {
        for ambiguous in [
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "true",
            "null",
            "~",
            "",
            "0755",
            "1.5",
            "50m",
            ".inf",
            "-1",
            "1:20",
            "2024-01-01",
            "a: b",
            "a #b",
            "trailing:",
            "*ref",
            "&anchor",
            "!tag",
            "'quoted'",
            "@at",
            "%x",
            "{a}",
            "[a]",
            "a,b",
            " lead",
        ] {
            let written = string(ambiguous);
            assert!(
                written.starts_with('\'') || written.starts_with('"'),
                "{ambiguous:?} was written bare"
            );
            let parsed: String = serde_yaml::from_str(&written).expect("parses");
            assert_eq!(parsed, ambiguous);
        }
        for plain in [
            "Deployment",
            "apps/v1",
            "--host-root=/host",
            "spindle.dev/app",
            "Good day",
            "http-app",
            "/runtime-config.toml",
            "redis://cache:6379",
        ] {
            assert_eq!(string(plain), plain);
        }
        assert_eq!(string("it's"), "'it''s'");
        assert_eq!(string("a\nb"), "\"a\\nb\"");
    }
}
