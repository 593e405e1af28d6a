//! Name rules shared by validation and the Nickel library.

/// A DNS-1123 label: what Kubernetes accepts as the name of a Service, and so of an app.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// A Spin variable name: lower-case letters, digits and single underscores, starting with a letter
/// (Spin rejects `Foo`, `_foo`, `foo__bar` and `foo_`).
pub fn is_spin_variable_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'_'
        && !name.contains("__")
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for ok in ["a", "web", "hello-world", "a1", "0abc"] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "Web", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn spin_variable_names() {
        for ok in ["a", "api_key", "v2", "greeting_text"] {
            assert!(is_spin_variable_name(ok), "{ok}");
        }
        for bad in ["", "Api", "_a", "a_", "a__b", "a-b", "1a"] {
            assert!(!is_spin_variable_name(bad), "{bad}");
        }
    }
}

/// An OCI image reference as `docker pull` takes it: `[host[:port]/]path[:tag][@algo:digest]`.
pub fn is_image_reference(reference: &str) -> bool {
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        let Some((algo, hex)) = digest.split_once(':') else {
            return false;
        };
        let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if algo.is_empty() || !hex_ok {
            return false;
        }
    }
    let (name, tag) = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        let tag_ok = (1..=128).contains(&tag.len())
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !tag.starts_with(['.', '-']);
        if !tag_ok {
            return false;
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (host, port) = host.split_once(':').unwrap_or((host, ""));
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !host_ok || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !parts.is_empty() && parts.iter().all(|part| is_path_component(part))
}

fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
}

#[cfg(test)]
mod image_tests {
    use super::is_image_reference;

    #[test]
    fn image_references() {
        for ok in [
            "ghcr.io/spinframework/hello:v1",
            "registry.local:5000/apps/web",
            "127.0.0.1:15000/web:1.0",
            "hello",
            "localhost/a/b:latest",
            "ghcr.io/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_image_reference(ok), "{ok}");
        }
        for bad in [
            "",
            "Ghcr.io/UPPER/case",
            "ghcr.io/x/y:",
            "ghcr.io/x/y@sha256:xyz",
            "ghcr.io//y",
            "has space:1",
            "ghcr.io/x/y:-tag",
        ] {
            assert!(!is_image_reference(bad), "{bad}");
        }
    }
}
