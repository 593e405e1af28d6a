//! Verifying push webhooks: GitHub (`X-Hub-Signature-256: sha256=HEX`), Gitea and Forgejo
//! (`X-Gitea-Signature` / `X-Forgejo-Signature: HEX`), both an HMAC-SHA256 of the body under the
//! shared secret, and GitLab (`X-Gitlab-Token: SECRET`). Comparisons take constant time.

use hmac::{Hmac, Mac as _};
use http::HeaderMap;
use sha2::Sha256;

/// Whether the request carries a valid signature (or token) for `secret`.
pub fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(signature) = header("x-hub-signature-256") {
        return signature
            .strip_prefix("sha256=")
            .is_some_and(|hex| hmac_matches(secret, body, hex));
    }
    if let Some(signature) = header("x-gitea-signature").or(header("x-forgejo-signature")) {
        return hmac_matches(secret, body, signature);
    }
    if let Some(token) = header("x-gitlab-token") {
        return constant_time_eq(token.as_bytes(), secret);
    }
    false
}

fn hmac_matches(secret: &[u8], body: &[u8], hex_signature: &str) -> bool {
    let Ok(expected) = hex::decode(hex_signature.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().unwrap());
        headers
    }

    #[test]
    fn github_signatures_are_checked_against_the_body() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let good = headers("x-hub-signature-256", signature);
        assert!(verify(
            b"It's a Secret to Everybody",
            &good,
            b"Hello, World!"
        ));
        assert!(!verify(
            b"It's a Secret to Everybody",
            &good,
            b"Hello, World?"
        ));
        assert!(!verify(b"another secret", &good, b"Hello, World!"));
        let no_prefix = headers("x-hub-signature-256", &signature[7..]);
        assert!(!verify(
            b"It's a Secret to Everybody",
            &no_prefix,
            b"Hello, World!"
        ));
    }

    #[test]
    fn gitea_signatures_and_gitlab_tokens() {
        let gitea = headers(
            "x-gitea-signature",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        );
        assert!(verify(
            b"It's a Secret to Everybody",
            &gitea,
            b"Hello, World!"
        ));
        assert!(verify(
            b"s3cret",
            &headers("x-gitlab-token", "s3cret"),
            b"{}"
        ));
        assert!(!verify(
            b"s3cret",
            &headers("x-gitlab-token", "s3cre"),
            b"{}"
        ));
        assert!(
            !verify(b"s3cret", &HeaderMap::new(), b"{}"),
            "unsigned requests are refused"
        );
    }
}
