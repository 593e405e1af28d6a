//! The repository the reconciler follows: a remote (https, ssh, `file://`) or a local path,
//! fetched with git2 into a bare clone in spindle's cache (it survives restarts, so a
//! restart fetches only what is new), and the exact commit to apply: a branch's tip, the highest
//! tag matching a pattern, or a pinned commit.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, FetchOptions, RemoteCallbacks,
    Repository, cert::Cert,
};
use sha2::{Digest as _, Sha256};

use super::{
    git::Folder,
    known_hosts::KnownHosts,
    signatures::{self, Trusted, Verdict},
};

/// What to follow in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// A branch's tip.
    Branch(String),
    /// The highest tag matching a glob (`v*`), compared as versions (`v1.10` > `v1.9`).
    Tag(String),
    /// One commit, pinned.
    Commit(String),
}

/// How to authenticate to the remote.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Basic auth for https: a user name (default `git`) with a token or password.
    pub username: Option<String>,
    /// The https password or token.
    pub password: Option<String>,
    /// An ssh private key.
    pub ssh_key: Option<PathBuf>,
    /// Host keys the ssh server must present; without it, `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// Accept any ssh host key (never by default).
    pub insecure_skip_host_key_check: bool,
}

/// A repository to follow.
#[derive(Debug, Clone)]
pub struct Remote {
    /// An https or ssh URL, `file://PATH`, or a local path.
    pub url: String,
    /// What to apply from it.
    pub follow: Follow,
    /// The folder inside the repository that holds `environments/`, `/`-separated.
    pub path: String,
    /// How to authenticate to `url`.
    pub credentials: Credentials,
    /// Where bare clones are kept.
    pub cache: PathBuf,
    /// The keys a revision must be signed by (the followed tag for `tag:`, else the commit);
    /// `None`: signatures are not checked.
    pub trusted: Option<std::sync::Arc<Trusted>>,
}

/// One exact revision of the remote.
pub struct Fetched {
    /// The commit's full id.
    pub commit: String,
    /// The repository's folder holding `environments/`, to read the commit from.
    pub folder: Folder,
    /// What its signature came to, when signatures are checked.
    pub verdict: Option<Verdict>,
}

impl Remote {
    /// The URL with any password or token in it masked: what status, Events, logs and errors
    /// show (`https://user:***@git.example.com/...`).
    pub fn display(&self) -> String {
        spindle_runtime::redact(&self.url)
    }

    /// The local folder of a path or `file://` source: what to watch for pushes.
    pub fn local_path(&self) -> Option<PathBuf> {
        if let Some(path) = self.url.strip_prefix("file://") {
            return Some(PathBuf::from(path));
        }
        let remote = self.url.contains("://") || is_scp_like(&self.url);
        (!remote).then(|| PathBuf::from(&self.url))
    }

    /// The bare clone in the cache, one per URL.
    fn clone_dir(&self) -> PathBuf {
        let digest = hex::encode(Sha256::digest(self.url.as_bytes()));
        self.cache.join(format!("{}.git", &digest[..16]))
    }

    /// Fetches what is new and resolves the revision to apply.
    pub fn fetch(&self) -> Result<Fetched> {
        let dir = self.clone_dir();
        let repo = match Repository::open_bare(&dir) {
            Ok(repo) => repo,
            Err(_) => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("could not create {}", dir.display()))?;
                Repository::init_bare(&dir)?
            }
        };
        let url = match self.local_path() {
            // libgit2 reads local repositories by path; make it absolute so the cache does not
            // depend on the working directory.
            Some(path) => path
                .canonicalize()
                .with_context(|| format!("{} does not exist", path.display()))?
                .to_string_lossy()
                .into_owned(),
            None => self.url.clone(),
        };
        let mut remote = repo.remote_anonymous(&url)?;
        let refspecs: Vec<String> = match &self.follow {
            Follow::Branch(branch) => vec![format!("+refs/heads/{branch}:refs/heads/{branch}")],
            Follow::Tag(_) => vec!["+refs/tags/*:refs/tags/*".to_owned()],
            Follow::Commit(_) => vec!["+refs/heads/*:refs/heads/*".to_owned()],
        };
        let mut options = FetchOptions::new();
        // Pruned: a tag (or branch) deleted upstream goes from the cache too, so a `v999` pushed
        // once and deleted does not pin a `tag:` follower forever.
        options
            .remote_callbacks(self.callbacks()?)
            .download_tags(AutotagOption::None)
            .prune(git2::FetchPrune::On);
        // The local transport cannot fetch shallow; a pinned commit may be anywhere in history.
        if self.local_path().is_none() && !matches!(self.follow, Follow::Commit(_)) {
            options.depth(1);
        }
        remote
            .fetch(&refspecs, Some(&mut options), None)
            .with_context(|| format!("could not fetch {}", self.display()))?;
        drop(remote);
        let mut tag = None;
        let commit = match &self.follow {
            Follow::Branch(branch) => {
                let reference = repo
                    .find_reference(&format!("refs/heads/{branch}"))
                    .with_context(|| format!("{} has no branch `{branch}`", self.display()))?;
                reference.peel_to_commit()?.id().to_string()
            }
            Follow::Tag(pattern) => {
                let names = repo.tag_names(Some(pattern))?;
                let highest = names
                    .iter()
                    .filter_map(|name| name.ok().flatten())
                    .max_by(|a, b| version_order(a, b))
                    .ok_or_else(|| anyhow!("{} has no tag matching `{pattern}`", self.display()))?
                    .to_owned();
                tag = Some(highest.clone());
                repo.revparse_single(&format!("refs/tags/{highest}"))?
                    .peel_to_commit()?
                    .id()
                    .to_string()
            }
            Follow::Commit(commit) => repo
                .revparse_single(commit)
                .and_then(|object| object.peel_to_commit())
                .with_context(|| {
                    format!("{} has no commit `{commit}` on any branch", self.display())
                })?
                .id()
                .to_string(),
        };
        let verdict = match (self.trusted.as_deref(), &tag) {
            (None, _) => None,
            (Some(trusted), Some(tag)) => Some(signatures::verify_tag(&repo, tag, trusted)),
            (Some(trusted), None) => Some(signatures::verify_commit(
                &repo,
                git2::Oid::from_str(&commit)?,
                trusted,
            )),
        };
        let folder = Folder::in_repository(repo, &self.path, &self.display())?;
        Ok(Fetched {
            commit,
            folder,
            verdict,
        })
    }

    fn callbacks(&self) -> Result<RemoteCallbacks<'static>> {
        let credentials = self.credentials.clone();
        let known_hosts = match (
            &credentials.known_hosts,
            credentials.insecure_skip_host_key_check,
        ) {
            (_, true) => None,
            (Some(path), false) => Some(KnownHosts::read(path)?),
            (None, false) => Some(
                std::env::var_os("HOME")
                    .map(|home| Path::new(&home).join(".ssh/known_hosts"))
                    .filter(|path| path.is_file())
                    .map(|path| KnownHosts::read(&path))
                    .transpose()?
                    .unwrap_or_default(),
            ),
        };
        let mut callbacks = RemoteCallbacks::new();
        let mut attempts = 0;
        callbacks.credentials(move |_url, username_from_url, allowed| {
            attempts += 1;
            // libgit2 asks again after a refusal; give up instead of looping.
            if attempts > 3 {
                return Err(git2::Error::from_str("authentication failed"));
            }
            let username = credentials
                .username
                .as_deref()
                .or(username_from_url)
                .unwrap_or("git");
            if allowed.contains(CredentialType::SSH_KEY)
                && let Some(key) = &credentials.ssh_key
            {
                return Cred::ssh_key(username, None, key, None);
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
                && let Some(password) = &credentials.password
            {
                return Cred::userpass_plaintext(username, password);
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(username);
            }
            Err(git2::Error::from_str(
                "the remote asks for credentials and none were given (--git-password-file, \
                 SPINDLE_GIT_PASSWORD or --ssh-key)",
            ))
        });
        callbacks.certificate_check(move |cert: &Cert<'_>, host: &str| {
            let Some(hostkey) = cert.as_hostkey() else {
                // TLS certificates are checked by libgit2 against the system's roots.
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let Some(known) = &known_hosts else {
                return Ok(CertificateCheckStatus::CertificateOk);
            };
            let (Some(key), Some(kind)) = (hostkey.hostkey(), hostkey.hostkey_type()) else {
                return Err(git2::Error::from_str("the ssh server sent no host key"));
            };
            if known.accepts(host, kind.name(), key) {
                Ok(CertificateCheckStatus::CertificateOk)
            } else {
                Err(git2::Error::from_str(&format!(
                    "the host key of {host} is not in known_hosts (give --known-hosts FILE)"
                )))
            }
        });
        Ok(callbacks)
    }
}

/// `user@host:path`, git's scp-like ssh syntax.
fn is_scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((before, _)) => before.contains('@') && !before.contains('/'),
        None => false,
    }
}

/// Orders tags as versions: digit runs compare as numbers, the rest as text.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(text: &str) -> Vec<Result<u64, String>> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 {
                parts.push(Ok(rest[..digits].parse().unwrap_or(u64::MAX)));
                rest = &rest[digits..];
            } else {
                let other = rest
                    .find(|c: char| c.is_ascii_digit())
                    .unwrap_or(rest.len());
                parts.push(Err(rest[..other].to_owned()));
                rest = &rest[other..];
            }
        }
        parts
    }
    parts(a).cmp(&parts(b))
}

/// Parses `--follow` values: `branch:NAME`, `tag:PATTERN`, `commit:SHA`, or a bare branch name.
pub fn parse_follow(text: &str) -> Result<Follow, String> {
    match text.split_once(':') {
        Some(("branch", name)) if !name.is_empty() => Ok(Follow::Branch(name.to_owned())),
        Some(("tag", pattern)) if !pattern.is_empty() => Ok(Follow::Tag(pattern.to_owned())),
        // The whole object name: an abbreviation could come to name another commit pushed later.
        Some(("commit", sha)) if sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(Follow::Commit(sha.to_owned()))
        }
        None if !text.is_empty() => Ok(Follow::Branch(text.to_owned())),
        _ => Err(format!(
            "`{text}`: expected branch:NAME, tag:PATTERN or commit:SHA"
        )),
    }
}

/// Rejects a `--path` that would leave the repository.
pub fn clean_path(path: &str) -> Result<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.contains(&"..") {
        bail!("--path `{path}` must stay inside the repository");
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_sort_as_versions() {
        let mut tags = vec!["v1.9.0", "v1.10.0", "v1.2.0", "v0.20"];
        tags.sort_by(|a, b| version_order(a, b));
        assert_eq!(tags, ["v0.20", "v1.2.0", "v1.9.0", "v1.10.0"]);
    }

    #[test]
    fn follow_values_parse() {
        assert_eq!(parse_follow("main"), Ok(Follow::Branch("main".into())));
        assert_eq!(parse_follow("tag:v*"), Ok(Follow::Tag("v*".into())));
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            parse_follow(&format!("commit:{sha}")),
            Ok(Follow::Commit(sha.into()))
        );
        assert!(parse_follow("commit:abcdef1").is_err(), "abbreviated");
        assert!(parse_follow("commit:xyz").is_err());
        assert!(parse_follow("tag:").is_err());
    }

    #[test]
    fn a_tag_deleted_upstream_no_longer_pins_a_tag_follower() {
        let origin_dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let origin = Repository::init(origin_dir.path()).unwrap();
        let signature = git2::Signature::now("t", "t@example.com").unwrap();
        let commit = |message: &str| {
            let tree = origin
                .find_tree(origin.index().unwrap().write_tree().unwrap())
                .unwrap();
            let parents: Vec<git2::Commit> = origin
                .head()
                .ok()
                .and_then(|head| head.peel_to_commit().ok())
                .into_iter()
                .collect();
            let parents: Vec<&git2::Commit> = parents.iter().collect();
            origin
                .commit(
                    Some("HEAD"),
                    &signature,
                    &signature,
                    message,
                    &tree,
                    &parents,
                )
                .unwrap()
        };
        let (one, rogue) = (commit("one"), commit("rogue"));
        origin
            .tag_lightweight("v1.0.0", &origin.find_object(one, None).unwrap(), false)
            .unwrap();
        origin
            .tag_lightweight("v999", &origin.find_object(rogue, None).unwrap(), false)
            .unwrap();
        let source = Remote {
            url: origin_dir.path().to_string_lossy().into_owned(),
            follow: Follow::Tag("v*".into()),
            path: String::new(),
            credentials: Credentials::default(),
            cache: cache.path().to_owned(),
            trusted: None,
        };
        assert_eq!(source.fetch().unwrap().commit, rogue.to_string());
        origin.tag_delete("v999").unwrap();
        assert_eq!(
            source.fetch().unwrap().commit,
            one.to_string(),
            "v999 is gone upstream"
        );
    }

    #[test]
    fn local_and_remote_urls_are_told_apart() {
        let source = |url: &str| Remote {
            url: url.to_owned(),
            follow: Follow::Branch("main".into()),
            path: String::new(),
            credentials: Credentials::default(),
            cache: PathBuf::from("/tmp"),
            trusted: None,
        };
        assert_eq!(
            source("/srv/repo.git").local_path(),
            Some("/srv/repo.git".into())
        );
        assert_eq!(
            source("file:///srv/repo").local_path(),
            Some("/srv/repo".into())
        );
        assert_eq!(source("https://example.com/r.git").local_path(), None);
        assert_eq!(source("git@example.com:org/r.git").local_path(), None);
        assert_eq!(
            source("https://ci:glpat-s3cret@git.example.com/p.git").display(),
            "https://ci:***@git.example.com/p.git"
        );
        assert!(clean_path("../etc").is_err());
        assert_eq!(clean_path("./deploy//prod/").unwrap(), "deploy/prod");
    }
}
