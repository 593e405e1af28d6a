//! OpenSSH `known_hosts` files: which host keys an ssh server may present. Plain (`host,[host]:port
//! type key`) and hashed (`|1|salt|hash type key`) entries; `@revoked` and `@cert-authority`
//! lines are not trusted.

use std::path::Path;

use anyhow::{Context as _, Result};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac as _};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    Names(Vec<String>),
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct KnownHosts(Vec<Entry>);

impl KnownHosts {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read known hosts from {}", path.display()))?;
        Ok(Self::parse(&text))
    }

    pub fn parse(text: &str) -> Self {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('@'))
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let hosts = fields.next()?;
                let key_type = fields.next()?.to_owned();
                let key = STANDARD.decode(fields.next()?).ok()?;
                let hosts = match hosts.strip_prefix("|1|") {
                    Some(hashed) => {
                        let (salt, hash) = hashed.split_once('|')?;
                        Hosts::Hashed {
                            salt: STANDARD.decode(salt).ok()?,
                            hash: STANDARD.decode(hash).ok()?,
                        }
                    }
                    None => Hosts::Names(hosts.split(',').map(str::to_ascii_lowercase).collect()),
                };
                Some(Entry {
                    hosts,
                    key_type,
                    key,
                })
            })
            .collect();
        KnownHosts(entries)
    }

    /// Whether `host` (as `name` or `[name]:port`) may present this key.
    pub fn accepts(&self, host: &str, key_type: &str, key: &[u8]) -> bool {
        let host = host.to_ascii_lowercase();
        self.0.iter().any(|entry| {
            entry.key_type == key_type && entry.key == key && entry.hosts.include(&host)
        })
    }
}

impl Hosts {
    fn include(&self, host: &str) -> bool {
        match self {
            Hosts::Names(names) => names.iter().any(|name| name == host),
            Hosts::Hashed { salt, hash } => {
                let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).expect("any key length");
                mac.update(host.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_hashed_entries_match_their_hosts_and_keys() {
        let key = STANDARD.encode(b"key-bytes");
        // A hashed entry, as `ssh-keygen -H` writes it: HMAC-SHA1 of the host name under a salt.
        let salt = STANDARD.encode(b"0123456789abcdefghij");
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"0123456789abcdefghij").unwrap();
        mac.update(b"[git.internal]:2222");
        let hash = STANDARD.encode(mac.finalize().into_bytes());
        let known = KnownHosts::parse(&format!(
            "# comment\nexample.com,Other.org ssh-ed25519 {key}\n|1|{salt}|{hash} ssh-rsa {key}\n@revoked bad.example ssh-ed25519 {key}\n"
        ));
        assert!(known.accepts("example.com", "ssh-ed25519", b"key-bytes"));
        assert!(known.accepts("other.org", "ssh-ed25519", b"key-bytes"));
        assert!(
            !known.accepts("example.com", "ssh-rsa", b"key-bytes"),
            "key type must match"
        );
        assert!(!known.accepts("example.com", "ssh-ed25519", b"other-key"));
        assert!(known.accepts("[git.internal]:2222", "ssh-rsa", b"key-bytes"));
        assert!(!known.accepts("git.internal", "ssh-rsa", b"key-bytes"));
        assert!(
            !known.accepts("bad.example", "ssh-ed25519", b"key-bytes"),
            "revoked lines never trust"
        );
    }
}
