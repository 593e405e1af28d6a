//! Signed revisions: a followed commit (or tag) is used only when it carries a signature by a key
//! the reconciler trusts, as `git verify-commit` / `git verify-tag` would say.
//!
//! - SSH signatures (git's `gpg.format = ssh`), checked against an allowed-signers file, the way
//!   `ssh-keygen -Y verify -n git` does: the signer's key must be listed, for the `git`
//!   namespace (when the entry limits namespaces), within its `valid-after`/`valid-before`
//!   window at the commit's (or tag's) date. Certificate authorities are not supported.
//! - OpenPGP signatures, checked against armored public keys (a key's signing subkeys count).
//!
//! Verification is in Rust (`ssh-key` for SSHSIG, `pgp` for OpenPGP): no `gpg` or `ssh-keygen`
//! in the reconciler's image, and no keyring state between runs.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use git2::{ObjectType, Oid, Repository};
use pgp::composed::{Deserializable as _, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails as _;
use ssh_key::{HashAlg, PublicKey, SshSig};

/// Where trusted keys come from (`--verify ssh:FILE`, `--verify pgp:FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustSource {
    /// An allowed-signers file (`ssh-keygen(1)`, ALLOWED SIGNERS).
    Ssh(PathBuf),
    /// Armored OpenPGP public keys.
    Pgp(PathBuf),
}

impl std::str::FromStr for TrustSource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("ssh", path)) if !path.is_empty() => Ok(TrustSource::Ssh(path.into())),
            Some(("pgp", path)) if !path.is_empty() => Ok(TrustSource::Pgp(path.into())),
            _ => Err(format!(
                "`{text}`: expected ssh:FILE (an allowed-signers file) or pgp:FILE (armored \
                 OpenPGP public keys)"
            )),
        }
    }
}

/// The keys whose signatures a reconciler accepts.
#[derive(Debug, Default)]
pub struct Trusted {
    ssh: Vec<AllowedSigner>,
    pgp: Vec<SignedPublicKey>,
}

/// One line of an allowed-signers file.
#[derive(Debug)]
struct AllowedSigner {
    principals: String,
    namespaces: Option<String>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
    key: PublicKey,
}

/// What a revision's signature came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by a trusted key: who (the SSH principals, or the OpenPGP key's fingerprint).
    SignedBy(String),
    /// Not to be used, and why.
    Refused(String),
}

impl Trusted {
    /// Reads every source; a file that holds no key is an error.
    pub fn load(sources: &[TrustSource]) -> Result<Trusted> {
        let mut trusted = Trusted::default();
        for source in sources {
            match source {
                TrustSource::Ssh(path) => {
                    let text = read(path)?;
                    let signers = parse_allowed_signers(&text).with_context(|| {
                        format!("{} is not an allowed-signers file", path.display())
                    })?;
                    if signers.is_empty() {
                        bail!("{} lists no signer", path.display());
                    }
                    trusted.ssh.extend(signers);
                }
                TrustSource::Pgp(path) => {
                    let text = read(path)?;
                    let (keys, _) =
                        SignedPublicKey::from_string_many(&text).with_context(|| {
                            format!("{} holds no armored OpenPGP public key", path.display())
                        })?;
                    let keys: Vec<SignedPublicKey> = keys
                        .collect::<Result<_, _>>()
                        .with_context(|| format!("{}: a key does not parse", path.display()))?;
                    if keys.is_empty() {
                        bail!("{} holds no OpenPGP public key", path.display());
                    }
                    trusted.pgp.extend(keys);
                }
            }
        }
        Ok(trusted)
    }

    /// Whether `signature` (armored) over `payload` is by a trusted key; `when` is the commit's or
    /// tag's date (seconds since the epoch), which SSH validity windows are checked at.
    pub fn verify(&self, signature: &str, payload: &[u8], when: i64) -> Result<String, String> {
        let signature = signature.trim();
        if signature.starts_with("-----BEGIN SSH SIGNATURE-----") {
            self.verify_ssh(signature, payload, when)
        } else if signature.starts_with("-----BEGIN PGP SIGNATURE-----") {
            self.verify_pgp(signature, payload)
        } else {
            Err("the signature is neither SSH nor OpenPGP (X.509 is not supported)".to_owned())
        }
    }

    fn verify_ssh(&self, armored: &str, payload: &[u8], when: i64) -> Result<String, String> {
        let signature = SshSig::from_pem(armored)
            .map_err(|e| format!("the SSH signature does not parse: {e}"))?;
        if signature.namespace() != "git" {
            return Err(format!(
                "the SSH signature is for namespace `{}`, not `git`",
                signature.namespace()
            ));
        }
        let fingerprint = signature.public_key().fingerprint(HashAlg::Sha256);
        let listed: Vec<&AllowedSigner> = self
            .ssh
            .iter()
            .filter(|signer| signer.key.key_data() == signature.public_key())
            .collect();
        if listed.is_empty() {
            return Err(format!(
                "signed with SSH key {fingerprint}, which is not an allowed signer"
            ));
        }
        let mut why = String::new();
        for signer in listed {
            if let Some(namespaces) = &signer.namespaces
                && !matches_pattern_list("git", namespaces)
            {
                why = format!("SSH key {fingerprint} is not allowed to sign for git");
                continue;
            }
            if signer.valid_after.is_some_and(|t| when < t)
                || signer.valid_before.is_some_and(|t| when > t)
            {
                why = format!("SSH key {fingerprint} was not valid at the signature's date");
                continue;
            }
            return match signer.key.verify("git", payload, &signature) {
                Ok(()) => Ok(signer.principals.clone()),
                Err(err) => Err(format!(
                    "the SSH signature by {fingerprint} is invalid: {err}"
                )),
            };
        }
        Err(why)
    }

    fn verify_pgp(&self, armored: &str, payload: &[u8]) -> Result<String, String> {
        let (signature, _) = DetachedSignature::from_string(armored)
            .map_err(|e| format!("the OpenPGP signature does not parse: {e}"))?;
        let issuer = signature
            .signature
            .issuer_fingerprint()
            .first()
            .map(|f| format!("{f:X}"))
            .or_else(|| {
                signature
                    .signature
                    .issuer_key_id()
                    .first()
                    .map(|id| id.to_string().to_uppercase())
            })
            .unwrap_or_else(|| "an unnamed key".to_owned());
        for key in &self.pgp {
            if signature.verify(key, payload).is_ok() {
                return Ok(format!("OpenPGP key {:X}", key.fingerprint()));
            }
            for subkey in &key.public_subkeys {
                let signs = subkey.signatures.iter().any(|b| b.key_flags().sign());
                if signs
                    && subkey.verify_bindings(&key.primary_key).is_ok()
                    && signature.verify(subkey, payload).is_ok()
                {
                    return Ok(format!("OpenPGP key {:X}", subkey.fingerprint()));
                }
            }
        }
        Err(format!(
            "signed with OpenPGP key {issuer}, which is not a trusted key (or the signature is \
             invalid)"
        ))
    }
}

/// Checks commit `id` of `repository`.
pub fn verify_commit(repository: &Repository, id: Oid, trusted: &Trusted) -> Verdict {
    let commit = match repository.find_commit(id) {
        Ok(commit) => commit,
        Err(err) => return Verdict::Refused(format!("commit {id} cannot be read: {err}")),
    };
    let (signature, payload) = match repository.extract_signature(&id, None) {
        Ok(found) => found,
        Err(err) if err.code() == git2::ErrorCode::NotFound => {
            return Verdict::Refused(format!("commit {id} is not signed"));
        }
        Err(err) => return Verdict::Refused(format!("commit {id}: {err}")),
    };
    let Ok(signature) = std::str::from_utf8(&signature) else {
        return Verdict::Refused(format!("commit {id}: the signature is not text"));
    };
    judge(
        &format!("commit {id}"),
        trusted.verify(signature, &payload, commit.committer().when().seconds()),
    )
}

/// Checks annotated tag `name` of `repository`; a lightweight tag carries no signature.
pub fn verify_tag(repository: &Repository, name: &str, trusted: &Trusted) -> Verdict {
    let object = match repository.revparse_single(&format!("refs/tags/{name}")) {
        Ok(object) => object,
        Err(err) => return Verdict::Refused(format!("tag {name} cannot be read: {err}")),
    };
    let Some(tag) = object.as_tag() else {
        return Verdict::Refused(format!(
            "tag {name} is a lightweight tag: it carries no signature"
        ));
    };
    // A signed tag object names itself: one pushed under another (higher) name is an old
    // signature replayed, not a release someone signed.
    if tag.name_bytes() != name.as_bytes() {
        return Verdict::Refused(format!(
            "tag {name} holds a tag object named `{}`: a signed tag published under another name",
            String::from_utf8_lossy(tag.name_bytes())
        ));
    }
    let Some(when) = tag.tagger().map(|tagger| tagger.when().seconds()) else {
        return Verdict::Refused(format!(
            "tag {name} has no tagger, so no date to check its key at"
        ));
    };
    let odb = match repository.odb() {
        Ok(odb) => odb,
        Err(err) => return Verdict::Refused(format!("tag {name} cannot be read: {err}")),
    };
    let raw = match odb.read(tag.id()) {
        Ok(raw) if raw.kind() == ObjectType::Tag => raw,
        Ok(_) => return Verdict::Refused(format!("tag {name} is not a tag object")),
        Err(err) => return Verdict::Refused(format!("tag {name} cannot be read: {err}")),
    };
    let Some((payload, signature)) = split_signed(raw.data()) else {
        return Verdict::Refused(format!("tag {name} is not signed"));
    };
    let Ok(signature) = std::str::from_utf8(signature) else {
        return Verdict::Refused(format!("tag {name}: the signature is not text"));
    };
    judge(
        &format!("tag {name}"),
        trusted.verify(signature, payload, when),
    )
}

fn judge(what: &str, verified: Result<String, String>) -> Verdict {
    match verified {
        Ok(signer) => Verdict::SignedBy(signer),
        Err(why) => Verdict::Refused(format!("{what}: {why}")),
    }
}

/// A tag object's bytes split where its signature begins (the last line that starts one, as git
/// does): the signed payload and the armored signature.
fn split_signed(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    const STARTS: [&[u8]; 2] = [
        b"-----BEGIN PGP SIGNATURE-----",
        b"-----BEGIN SSH SIGNATURE-----",
    ];
    let mut at = 0;
    let mut found = None;
    while at < raw.len() {
        if STARTS.iter().any(|start| raw[at..].starts_with(start)) {
            found = Some(at);
        }
        at = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |n| at + n + 1);
    }
    found.map(|at| raw.split_at(at))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Parses an allowed-signers file: `principals [options] keytype base64 [comment]` per line.
fn parse_allowed_signers(text: &str) -> Result<Vec<AllowedSigner>> {
    let mut signers = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |what: String| anyhow!("line {}: {what}", number + 1);
        let (principals, rest) = next_field(line);
        let (options, key) = match PublicKey::from_openssh(rest) {
            Ok(key) => ("", key),
            Err(_) => {
                let (options, key) = next_field(rest);
                let key = PublicKey::from_openssh(key)
                    .map_err(|e| at(format!("no public key after the options: {e}")))?;
                (options, key)
            }
        };
        let mut signer = AllowedSigner {
            principals: principals.trim_matches('"').to_owned(),
            namespaces: None,
            valid_after: None,
            valid_before: None,
            key,
        };
        for option in split_options(options) {
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name, Some(value.trim_matches('"'))),
                None => (option, None),
            };
            match (name.to_ascii_lowercase().as_str(), value) {
                ("namespaces", Some(value)) => signer.namespaces = Some(value.to_owned()),
                ("valid-after", Some(value)) => {
                    signer.valid_after = Some(parse_time(value).map_err(at)?);
                }
                ("valid-before", Some(value)) => {
                    signer.valid_before = Some(parse_time(value).map_err(at)?);
                }
                ("cert-authority", None) => {
                    return Err(at(
                        "cert-authority entries are not supported; list the signing keys"
                            .to_owned(),
                    ));
                }
                _ => return Err(at(format!("unknown option `{option}`"))),
            }
        }
        signers.push(signer);
    }
    Ok(signers)
}

/// The first whitespace-separated field (quotes keep spaces), and the rest.
fn next_field(text: &str) -> (&str, &str) {
    let mut quoted = false;
    for (at, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return (&text[..at], text[at..].trim_start()),
            _ => {}
        }
    }
    (text, "")
}

/// Options split at commas outside quotes.
fn split_options(text: &str) -> Vec<&str> {
    let mut options = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (at, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                options.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        options.push(&text[start..]);
    }
    options
}

/// `YYYYMMDD[HHMM[SS]]`, optionally ending in `Z`; read as UTC either way (ssh-keygen reads a
/// time without `Z` as local time, which a reconciler's pod has as UTC).
fn parse_time(text: &str) -> Result<i64, String> {
    let digits = text.strip_suffix(['Z', 'z']).unwrap_or(text);
    let bad = || format!("`{text}` is not a time (YYYYMMDD[HHMM[SS]][Z])");
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let field = |range: std::ops::Range<usize>| digits.get(range).map_or(Ok(0), str::parse::<i64>);
    let (year, month, day) = (
        field(0..4).map_err(|_| bad())?,
        field(4..6).map_err(|_| bad())?,
        field(6..8).map_err(|_| bad())?,
    );
    let (hour, minute, second) = (
        field(8..10).map_err(|_| bad())?,
        field(10..12).map_err(|_| bad())?,
        field(12..14).map_err(|_| bad())?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// OpenSSH's pattern lists: comma-separated globs (`*`, `?`); a match of a `!` pattern refuses.
fn matches_pattern_list(text: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(pattern) => (true, pattern),
            None => (false, pattern),
        };
        if glob(pattern.as_bytes(), text.as_bytes()) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK4C8fbcdln4Dp/hmOseVKt0PbxoIpoXSM1Vwm9ikpAW";

    #[test]
    fn allowed_signers_lines_parse_with_and_without_options() {
        let text = format!(
            "# a comment\n\nalice@example.com {KEY} alice\n\
             \"bob@example.com,*@ops.example.com\" namespaces=\"git,file\",valid-after=\"20240101\",valid-before=\"20250101Z\" {KEY}\n"
        );
        let signers = parse_allowed_signers(&text).unwrap();
        assert_eq!(signers.len(), 2);
        assert_eq!(signers[0].principals, "alice@example.com");
        assert_eq!(signers[0].namespaces, None);
        assert_eq!(signers[1].principals, "bob@example.com,*@ops.example.com");
        assert_eq!(signers[1].namespaces.as_deref(), Some("git,file"));
        assert_eq!(signers[1].valid_after, Some(1_704_067_200));
        assert_eq!(signers[1].valid_before, Some(1_735_689_600));
        let error = parse_allowed_signers(&format!("x cert-authority {KEY}\n")).unwrap_err();
        assert!(
            error.to_string().contains("line 1: cert-authority"),
            "{error}"
        );
        assert!(parse_allowed_signers("x not-a-key\n").is_err());
    }

    #[test]
    fn pattern_lists_follow_openssh() {
        assert!(matches_pattern_list("git", "git"));
        assert!(matches_pattern_list("git", "file,g*"));
        assert!(!matches_pattern_list("git", "file"));
        assert!(!matches_pattern_list("git", "*,!git"));
    }

    #[test]
    fn tag_signatures_split_at_the_last_armor_line() {
        let raw = b"object 1\ntype commit\ntag v1\n\nrelease\n-----BEGIN SSH SIGNATURE-----\nabc\n-----END SSH SIGNATURE-----\n";
        let (payload, signature) = split_signed(raw).unwrap();
        assert!(payload.ends_with(b"release\n"));
        assert!(signature.starts_with(b"-----BEGIN SSH SIGNATURE-----"));
        assert!(split_signed(b"object 1\n\nunsigned\n").is_none());
    }
}
