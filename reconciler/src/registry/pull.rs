//! Pulling an artifact over the distribution API from a registry that a repository names, and so
//! from anyone. Every answer is read within a bound: a manifest within 4 MiB (as containerd
//! allows), a token answer within 64 KiB, an error answer within 4 KiB (of which only the status
//! and the OCI error code are shown, never the registry's own words), and each layer within the
//! size its manifest declares; the layers of the pulls in progress in the process declare 1 GiB
//! at most. A blob's digest is checked once it has arrived, before it is kept, and before a kept
//! one is used. A token service must be HTTPS or the registry itself, redirects lead only to
//! HTTPS, and only the registry itself is answered a request for credentials (the login goes to
//! it or to the token service it names, as Docker sends it). Errors name no URL the registry chose
//! (of a token service, only its host).

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, anyhow, bail};
use oci_client::Reference;
use reqwest::{StatusCode, Url, header};
use serde::Deserialize;
use spindle_runtime::{
    App,
    artifact::{self, LAYER_MEDIA_TYPES, MANIFEST_MEDIA_TYPE, MAX_ARTIFACT_LAYERS},
};
use tokio::sync::Semaphore;

use super::{CONNECT_TIMEOUT, DOCKER_MANIFEST_MEDIA_TYPE, READ_TIMEOUT};

/// The most a manifest may hold.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The most a token service's answer may hold.
const MAX_TOKEN_BYTES: u64 = 64 << 10;
/// The most of an error answer that is read.
const MAX_ERROR_BYTES: u64 = 4 << 10;
/// The most layer bytes the pulls in progress hold at once, and so the most one artifact's
/// layers may declare.
const MAX_PULL_BYTES: u64 = 1 << 30;
/// An image index, and Docker's manifest list.
const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// How many redirects one request follows (registries send blobs from a CDN).
const MAX_REDIRECTS: usize = 5;

/// Layer bytes declared by the pulls in progress, in KiB.
static HELD: Semaphore = Semaphore::const_new((MAX_PULL_BYTES >> 10) as usize);

/// A client for one repository of one registry.
pub(super) struct Puller {
    http: reqwest::Client,
    /// `https://HOST[:PORT]`, or `http://` for a registry reached over plain HTTP.
    base: Url,
    repository: String,
    login: Option<(String, String)>,
    /// The `Authorization` header the registry asked for, once it asked.
    authorization: Option<String>,
}

impl Puller {
    /// A client for `reference`'s repository, over plain HTTP when `insecure`, with `login` for
    /// a registry that asks for credentials.
    pub(super) fn new(
        reference: &Reference,
        insecure: bool,
        login: Option<(String, String)>,
    ) -> Result<Puller> {
        let scheme = if insecure { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{}", reference.resolve_registry()))
            .with_context(|| format!("`{}` is not a registry host", reference.registry()))?;
        let origin = base.origin();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if attempt.url().scheme() == "https" || attempt.url().origin() == origin {
                attempt.follow()
            } else {
                attempt.error("a redirect away from HTTPS")
            }
        });
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(redirects)
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Puller {
            http,
            base,
            repository: reference.repository().to_owned(),
            login,
            authorization: None,
        })
    }

    /// Fetches the app `reference` names into `cache` (blobs by digest, reused across pulls) and
    /// unpacks it there.
    pub(super) async fn pull(mut self, reference: &Reference, cache: &Path) -> Result<App> {
        let (manifest, digest) = self
            .manifest(reference)
            .await
            .with_context(|| format!("cannot fetch the manifest of {reference}"))?;
        let layers =
            wanted_layers(&manifest).with_context(|| format!("the manifest of {reference}"))?;
        let declared = layers
            .iter()
            .try_fold(0u64, |total, layer| total.checked_add(layer.size))
            .filter(|&total| total <= MAX_PULL_BYTES)
            .ok_or_else(|| {
                anyhow!(
                    "{reference}'s layers declare more than the {MAX_PULL_BYTES} bytes a pull \
                     accepts"
                )
            })?;
        let kib = u32::try_from(declared.div_ceil(1024)).expect("at most 1 GiB in KiB");
        let _held = HELD.acquire_many(kib).await?;
        let mut fetched = Vec::new();
        for layer in &layers {
            let bytes = match cached(&blob_path(cache, &layer.digest), layer) {
                Some(bytes) => bytes,
                None => {
                    let bytes = self.blob(layer).await.with_context(|| {
                        format!("cannot fetch blob {} of {reference}", layer.digest)
                    })?;
                    let path = blob_path(cache, &layer.digest);
                    spindle_runtime::atomic_file::write(&path, &bytes).with_context(|| {
                        format!("cannot keep blob {} in {}", layer.digest, path.display())
                    })?;
                    bytes
                }
            };
            fetched.push(bytes);
        }
        let unpacked: Vec<artifact::Layer> = layers
            .iter()
            .zip(&fetched)
            .map(|(layer, bytes)| artifact::Layer {
                media_type: &layer.media_type,
                digest: &layer.digest,
                bytes,
                precompiled: false,
            })
            .collect();
        let dir = cache.join("apps").join(hex_of(&digest));
        artifact::unpack(&unpacked, &dir).with_context(|| format!("{reference} ({digest})"))
    }

    /// The manifest `reference` names and its digest, computed here (and checked against the
    /// reference's own digest, when it has one).
    async fn manifest(&mut self, reference: &Reference) -> Result<(Vec<u8>, String)> {
        let name = reference
            .digest()
            .or(reference.tag())
            .unwrap_or("latest")
            .to_owned();
        // Indexes too, so that one is named as such rather than answered 404.
        let accept = format!(
            "{MANIFEST_MEDIA_TYPE}, {DOCKER_MANIFEST_MEDIA_TYPE}, {OCI_INDEX_MEDIA_TYPE}, \
             {DOCKER_LIST_MEDIA_TYPE}"
        );
        let response = self
            .get(&format!("manifests/{name}"), Some(&accept))
            .await?;
        let bytes = read_within(response, MAX_MANIFEST_BYTES, "a manifest").await?;
        let digest = artifact::digest(&bytes);
        if let Some(pinned) = reference.digest()
            && pinned != digest
        {
            bail!("the registry sent a manifest whose digest is {digest}, not {pinned}");
        }
        Ok((bytes, digest))
    }

    /// The blob of `layer`, no longer than it declares, checked against its digest.
    async fn blob(&mut self, layer: &Wanted) -> Result<Vec<u8>> {
        let response = self.get(&format!("blobs/{}", layer.digest), None).await?;
        let bytes = read_within(response, layer.size, &format!("blob {}", layer.digest)).await?;
        let actual = artifact::digest(&bytes);
        if actual != layer.digest {
            bail!("the registry sent bytes whose digest is {actual}");
        }
        Ok(bytes)
    }

    /// GETs `PATH` under the repository, asking the registry once for the credentials it wants.
    async fn get(&mut self, path: &str, accept: Option<&str>) -> Result<reqwest::Response> {
        let url = self
            .base
            .join(&format!("/v2/{}/{path}", self.repository))
            .context("not a registry path")?;
        let mut authorized = false;
        loop {
            let mut request = self.http.get(url.clone());
            if let Some(accept) = accept {
                request = request.header(header::ACCEPT, accept);
            }
            if let Some(authorization) = &self.authorization {
                request = request.header(header::AUTHORIZATION, authorization);
            }
            let response = request
                .send()
                .await
                .map_err(|err| anyhow!("no answer from {url}: {}", failed(&err)))?;
            // Only the registry itself may ask for its credentials, not where it redirects.
            if response.status() == StatusCode::UNAUTHORIZED
                && !authorized
                && response.url().origin() == self.base.origin()
            {
                authorized = true;
                self.authorization = Some(self.authorize(&response).await?);
                continue;
            }
            if !response.status().is_success() {
                return Err(refusal(url.as_str(), response).await);
            }
            return Ok(response);
        }
    }

    /// The `Authorization` the registry's 401 asks for: a token from its token service, or
    /// the login.
    async fn authorize(&self, unauthorized: &reqwest::Response) -> Result<String> {
        let mut basic = false;
        for value in unauthorized.headers().get_all(header::WWW_AUTHENTICATE) {
            let Ok(value) = value.to_str() else { continue };
            let Ok(challenges) = http_auth::parse_challenges(value) else {
                continue;
            };
            for challenge in challenges {
                let param = |name: &str| {
                    challenge
                        .params
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(name))
                        .map(|(_, value)| value.to_unescaped())
                };
                if challenge.scheme.eq_ignore_ascii_case("bearer")
                    && let Some(realm) = param("realm")
                {
                    return self.token(&realm, param("service").as_deref()).await;
                }
                basic |= challenge.scheme.eq_ignore_ascii_case("basic");
            }
        }
        match &self.login {
            Some((user, password)) if basic => Ok(basic_authorization(user, password)),
            _ => bail!(
                "{} asks for credentials spindle does not have (log in with `docker login`)",
                self.base
            ),
        }
    }

    /// A pull token for the repository from `realm`, the registry's token service.
    async fn token(&self, realm: &str, service: Option<&str>) -> Result<String> {
        let realm = Url::parse(realm).map_err(|_| anyhow!("the token service is not a URL"))?;
        // The registry chose the realm: only its host is ever shown.
        let service_host = format!(
            "the token service at {}",
            realm.host_str().unwrap_or("no host")
        );
        if realm.scheme() != "https" && realm.origin() != self.base.origin() {
            bail!("{service_host} is neither HTTPS nor the registry itself");
        }
        let scope = format!("repository:{}:pull", self.repository);
        let mut query = vec![("scope", scope.as_str())];
        query.extend(service.map(|service| ("service", service)));
        let mut request = self.http.get(realm.clone()).query(&query);
        if let Some((user, password)) = &self.login {
            request = request.header(header::AUTHORIZATION, basic_authorization(user, password));
        }
        let response = request
            .send()
            .await
            .map_err(|err| anyhow!("no answer from {service_host}: {}", failed(&err)))?;
        if !response.status().is_success() {
            return Err(refusal(&service_host, response).await);
        }
        let answer = read_within(response, MAX_TOKEN_BYTES, "a token answer").await?;
        #[derive(Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: Answer = serde_json::from_slice(&answer)
            .map_err(|_| anyhow!("{service_host} did not answer with a token"))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|token| !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| anyhow!("{service_host} did not answer with a token"))?;
        Ok(format!("Bearer {token}"))
    }
}

/// A layer of the manifest that makes up the app.
#[derive(Debug)]
struct Wanted {
    media_type: String,
    digest: String,
    size: u64,
}

/// The app's layers in `manifest`, each with a SHA-256 digest and its size.
fn wanted_layers(manifest: &[u8]) -> Result<Vec<Wanted>> {
    let manifest: serde_json::Value = serde_json::from_slice(manifest).context("not JSON")?;
    let Some(layers) = manifest["layers"].as_array() else {
        bail!("it is not a single artifact manifest (an image index?)");
    };
    if layers.len() > MAX_ARTIFACT_LAYERS {
        bail!(
            "it has {} layers, more than the {MAX_ARTIFACT_LAYERS} an artifact has",
            layers.len()
        );
    }
    let mut wanted = Vec::new();
    for layer in layers {
        let (Some(media_type), Some(digest), Some(size)) = (
            layer["mediaType"].as_str(),
            layer["digest"].as_str(),
            layer["size"].as_u64(),
        ) else {
            bail!("a layer has no mediaType, digest or size");
        };
        if !is_sha256(digest) {
            bail!("layer digest `{digest}` is not sha256: and 64 lowercase hex digits");
        }
        if LAYER_MEDIA_TYPES.contains(&media_type) {
            wanted.push(Wanted {
                media_type: media_type.to_owned(),
                digest: digest.to_owned(),
                size,
            });
        }
    }
    Ok(wanted)
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits, the only form spindle reads (and
/// so safe in a file name).
fn is_sha256(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Where the blob `digest` (checked by [`is_sha256`]) is kept in `cache`.
fn blob_path(cache: &Path, digest: &str) -> PathBuf {
    cache.join("blobs").join("sha256").join(hex_of(digest))
}

/// The hex part of a `sha256:` digest.
fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// The blob of `layer` kept at `path`, if it is there whole.
fn cached(path: &Path, layer: &Wanted) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(layer.size + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 == layer.size && artifact::digest(&bytes) == layer.digest).then_some(bytes)
}

/// The body of `response`, refused once it holds more than `limit` bytes.
async fn read_within(mut response: reqwest::Response, limit: u64, what: &str) -> Result<Vec<u8>> {
    let over = || anyhow!("the registry sent more than {limit} bytes for {what}");
    let mut bytes = Vec::new();
    match response.content_length() {
        Some(length) if length > limit => return Err(over()),
        Some(length) => bytes.reserve_exact(length as usize),
        None => {}
    }
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| anyhow!("the answer for {what} broke off: {}", failed(&err)))?
    {
        if bytes.len() as u64 + chunk.len() as u64 > limit {
            return Err(over());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// What went wrong with a request, in spindle's words: reqwest's errors name the URLs a redirect
/// led to, which the registry chose.
fn failed(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "it timed out"
    } else if err.is_redirect() {
        "a redirect was refused (more than 5, or away from HTTPS)"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    }
}

/// Why `url` was refused, in words the registry does not choose: the status and, when the
/// answer is an OCI error, its code.
async fn refusal(url: &str, response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let body = read_within(response, MAX_ERROR_BYTES, "an error")
        .await
        .unwrap_or_default();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|answer| answer["errors"][0]["code"].as_str().map(str::to_owned))
        .filter(|code| {
            code.len() <= 40 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        });
    let code = code.map(|code| format!(" ({code})")).unwrap_or_default();
    let hint = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            "; for a private image, log in to the registry (`docker login`)"
        }
        StatusCode::NOT_FOUND => "; is the image's name and tag right?",
        _ => "",
    };
    anyhow!("{url} answered {status}{code}{hint}")
}

/// `Basic` credentials, as an `Authorization` header value.
fn basic_authorization(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_digests_of_64_lowercase_hex_digits_are_read() {
        assert!(is_sha256(&format!("sha256:{}", "0a".repeat(32))));
        for digest in [
            "sha256:/dev/zero".to_owned(),
            "/dev/zero".to_owned(),
            format!("sha256:../../{}", "a".repeat(58)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{}", "a".repeat(128)),
            format!("sha256:{}", "a".repeat(65)),
        ] {
            assert!(!is_sha256(&digest), "{digest}");
        }
    }

    #[test]
    fn a_layer_without_a_size_or_with_a_digest_that_is_a_path_is_refused() {
        let manifest = |layer: serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({ "layers": [layer] })).unwrap()
        };
        let wasm = "application/vnd.wasm.content.layer.v1+wasm";
        let sound = format!("sha256:{}", "b".repeat(64));
        let layers = wanted_layers(&manifest(
            serde_json::json!({ "mediaType": wasm, "digest": sound, "size": 3 }),
        ))
        .unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].size, 3);
        let err = wanted_layers(&manifest(
            serde_json::json!({ "mediaType": wasm, "digest": sound }),
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("no mediaType, digest or size"),
            "{err}"
        );
        let err = wanted_layers(&manifest(
            serde_json::json!({ "mediaType": wasm, "digest": "sha256:/dev/zero", "size": 1 }),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("`sha256:/dev/zero`"), "{err}");
    }
}
