//! Spin artifacts in OCI registries, over the distribution API: `spindle push` sends one,
//! `spindle run oci://` and the capability check fetch one. Credentials come from
//! `--username`/`--password-stdin`, or from the docker config file (`$DOCKER_CONFIG/config.json`,
//! else `~/.docker/config.json`).

mod pull;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use oci_client::{
    Client, Reference, RegistryOperation,
    client::{ClientConfig, ClientProtocol},
    secrets::RegistryAuth,
};
use spindle_runtime::{
    App,
    artifact::{Artifact, MANIFEST_MEDIA_TYPE},
};

/// Docker's manifest type, which some registries answer with.
const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// How long connecting to a registry, and then each read from it, may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Plain HTTP (a local or test registry).
    pub insecure: bool,
    /// Basic credentials; without them the docker config file is read.
    pub login: Option<(String, String)>,
}

/// A client for the registry of one reference.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    insecure: bool,
}

impl Registry {
    /// A client for `reference`'s registry, with `access`'s login or else the docker config's.
    pub fn new(reference: &Reference, access: &Access) -> Result<Registry> {
        // reqwest's rustls is built without a provider, so that one (ring, as kube's) serves all.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = reference.resolve_registry().to_owned();
        let protocol = if access.insecure {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let auth = match &access.login {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => docker_config_auth(&registry)?.unwrap_or(RegistryAuth::Anonymous),
        };
        Ok(Registry {
            client: Client::new(ClientConfig {
                protocol,
                // No read timeout: reqwest's runs until the answer's head, which a slow uplink
                // pushing a large blob reaches late.
                connect_timeout: Some(CONNECT_TIMEOUT),
                ..ClientConfig::default()
            }),
            auth,
            insecure: access.insecure,
        })
    }

    /// Pushes `artifact` as `reference`; returns the manifest's digest. Blobs the registry
    /// already has are not sent again.
    pub async fn push(&self, reference: &Reference, artifact: &Artifact) -> Result<String> {
        self.client
            .auth(reference, &self.auth, RegistryOperation::Push)
            .await
            .with_context(|| format!("cannot log in to {}", reference.resolve_registry()))?;
        for blob in std::iter::once(&artifact.config).chain(&artifact.layers) {
            if !self.client.blob_exists(reference, &blob.digest).await? {
                self.client
                    .push_blob(reference, blob.bytes.clone(), &blob.digest)
                    .await
                    .with_context(|| format!("cannot push blob {}", blob.digest))?;
            }
        }
        self.client
            .push_manifest_raw(
                reference,
                artifact.manifest.clone(),
                http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
            )
            .await
            .with_context(|| format!("cannot push the manifest of {reference}"))?;
        Ok(artifact.digest())
    }

    /// Fetches the app `reference` names into `cache` (blobs by digest, reused across pulls) and
    /// unpacks it there. The registry may be anyone's: every answer is bounded (see `pull`).
    pub async fn pull(&self, reference: &Reference, cache: &Path) -> Result<App> {
        let login = match &self.auth {
            RegistryAuth::Basic(user, password) => Some((user.clone(), password.clone())),
            _ => None,
        };
        pull::Puller::new(reference, self.insecure, login)?
            .pull(reference, cache)
            .await
    }
}

/// Parses `REGISTRY/REPOSITORY[:TAG][@DIGEST]`, with `oci://` accepted in front.
pub fn reference(text: &str) -> Result<Reference> {
    let text = text.strip_prefix("oci://").unwrap_or(text);
    text.parse()
        .with_context(|| format!("`{text}` is not an OCI reference (REGISTRY/REPOSITORY[:TAG])"))
}

/// The credentials the docker config file keeps for `registry` (`auth`, or `username` and
/// `password`); credential helpers are not run.
fn docker_config_auth(registry: &str) -> Result<Option<RegistryAuth>> {
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".docker/config.json"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(auth_for(&config, registry))
}

fn auth_for(config: &serde_json::Value, registry: &str) -> Option<RegistryAuth> {
    let auths = config["auths"].as_object()?;
    let entry = auths.iter().find_map(|(key, entry)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        (host == registry || (registry == "docker.io" && host == "index.docker.io"))
            .then_some(entry)
    })?;
    if let Some(auth) = entry["auth"].as_str() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        let (user, password) = String::from_utf8(decoded)
            .ok()?
            .split_once(':')
            .map(|(user, password)| (user.to_owned(), password.to_owned()))?;
        return Some(RegistryAuth::Basic(user, password));
    }
    Some(RegistryAuth::Basic(
        entry["username"].as_str()?.to_owned(),
        entry["password"].as_str()?.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(auth: Option<RegistryAuth>) -> Option<(String, String)> {
        match auth? {
            RegistryAuth::Basic(user, password) => Some((user, password)),
            _ => None,
        }
    }

    #[test]
    fn docker_config_entries() {
        let config = serde_json::json!({"auths": {
            "registry.example.com": {"auth": base64::engine::general_purpose::STANDARD.encode("me:s3cr:et")},
            "https://index.docker.io/v1/": {"username": "hub", "password": "pw"},
        }});
        assert_eq!(
            basic(auth_for(&config, "registry.example.com")),
            Some(("me".into(), "s3cr:et".into()))
        );
        assert_eq!(
            basic(auth_for(&config, "docker.io")),
            Some(("hub".into(), "pw".into()))
        );
        assert_eq!(basic(auth_for(&config, "ghcr.io")), None);
    }

    #[test]
    fn references() {
        let parsed = reference("oci://127.0.0.1:5000/apps/hello:v1").unwrap();
        assert_eq!(parsed.registry(), "127.0.0.1:5000");
        assert_eq!(parsed.repository(), "apps/hello");
        assert_eq!(parsed.tag(), Some("v1"));
        assert!(reference("not a reference").is_err());
    }
}
