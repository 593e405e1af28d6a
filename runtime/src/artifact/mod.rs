//! Spin apps as OCI artifacts, in the layout `spin registry push` writes (Spin 2 and later):
//!
//! - the manifest's config is an OCI image config with architecture `wasm` (what runwasi looks
//!   for), labelled with the digest of the locked app;
//! - a layer per component Wasm (`application/vnd.wasm.content.layer.v1+wasm`), then the
//!   component's files, a layer per file (`…+data`; files of 128 bytes or less are inline in the
//!   locked app) or, past 499 layers, one gzipped tar per component (`…bundle.v1.tar+gzip`);
//! - last, the locked app (`application/vnd.fermyon.spin.application.v1+config`): Spin's JSON
//!   form of the manifest, with sources and files named by digest.
//!
//! A lone `application/wasm` layer (a `wkg oci push` package) is run as a one-component app.
//!
//! [`pack()`] builds an artifact from an [`App`](crate::App), byte for byte the same for the same
//! input; [`unpack()`] turns layers (pulled by `spindle run`, or handed over by containerd) back
//! into an app.

pub mod locked;
pub mod pack;
pub mod unpack;

use sha2::{Digest as _, Sha256};

pub use pack::{Artifact, pack};
pub use unpack::{Layer, unpack};

/// The media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image config, the config of a Spin artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The media type of the layer holding the Spin locked app.
pub const LOCKED_APP_MEDIA_TYPE: &str = "application/vnd.fermyon.spin.application.v1+config";
/// The media type of a layer holding one component's Wasm.
pub const WASM_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// The media type of a layer holding one component file.
pub const DATA_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+data";
/// The media type of a gzipped tar of one component's files, used past 499 layers.
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";
/// A single component, as `wkg oci push` stores it.
pub const PLAIN_WASM_MEDIA_TYPE: &str = "application/wasm";
/// The config of a `wkg` package.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";

/// Registries such as ECR take 500 layers; one of them is the locked app.
const MAX_LAYERS: usize = 499;
/// The most layers an artifact may have, the locked app among them.
pub const MAX_ARTIFACT_LAYERS: usize = MAX_LAYERS + 1;
/// The most a locked app may hold: Spin's list every file, and hold those of 128 bytes at most.
const MAX_LOCKED_APP_BYTES: usize = 32 << 20;

/// Every layer type an app is made of.
pub const LAYER_MEDIA_TYPES: &[&str] = &[
    WASM_MEDIA_TYPE,
    PLAIN_WASM_MEDIA_TYPE,
    DATA_MEDIA_TYPE,
    ARCHIVE_MEDIA_TYPE,
    LOCKED_APP_MEDIA_TYPE,
];

/// Whether layers of `media_type` hold Wasm (and can be compiled ahead of time).
pub fn is_wasm_layer(media_type: &str) -> bool {
    media_type == WASM_MEDIA_TYPE || media_type == PLAIN_WASM_MEDIA_TYPE
}

/// The OCI digest of `bytes`: `sha256:<hex>`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A piece of content with its type, as a registry stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The content's OCI media type.
    pub media_type: String,
    /// The content's digest, `sha256:<hex>`.
    pub digest: String,
    /// The content itself.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// A blob of `media_type` holding `bytes`, with its digest computed.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_owned(),
            digest: digest(&bytes),
            bytes,
        }
    }

    /// The blob's OCI descriptor.
    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// An artifact that cannot be run, and why.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Neither a locked app layer nor a single Wasm layer; holds the layers' media types.
    #[error(
        "the artifact has no Spin locked app layer ({LOCKED_APP_MEDIA_TYPE}) and is not a single `{PLAIN_WASM_MEDIA_TYPE}` layer (layers: {0})"
    )]
    NotAnApp(String),
    /// The locked app is malformed or needs what spindle cannot give; holds the reason.
    #[error("the locked app is not valid: {0}")]
    LockedApp(String),
    /// A layer's content does not match the digest the manifest gives it.
    #[error("layer {digest} is corrupt: its content hashes to {actual}")]
    Corrupt {
        /// The digest the manifest gives the layer.
        digest: String,
        /// The digest of the layer's content.
        actual: String,
    },
    /// The locked app names content by a digest that no layer or archive holds.
    #[error("the locked app refers to {digest} ({what}), which is not among the artifact's layers")]
    Missing {
        /// The digest the locked app names.
        digest: String,
        /// What the content is for, e.g. a component's Wasm or one of its files.
        what: String,
    },
    /// An archive layer is not a readable gzipped tar.
    #[error("archive layer {digest} cannot be read: {message}")]
    Archive {
        /// The archive layer's digest.
        digest: String,
        /// Why it cannot be read.
        message: String,
    },
    /// Writing the unpacked app under its folder failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests;
