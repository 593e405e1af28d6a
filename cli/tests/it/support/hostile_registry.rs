//! A registry that a repository could name, run by an attacker: it speaks just enough of the
//! distribution API (`/v2/`, a token service, one manifest) for a client to ask for a blob, then
//! misbehaves the way it is told.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::{TcpListener, TcpStream},
};

/// How the registry misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// Reads each request and never answers.
    Stall,
    /// Serves a manifest whose one Wasm layer declares `declared` bytes, then sends bytes for
    /// that layer without end.
    EndlessBlob { declared: u64 },
    /// Serves a manifest of `count` Wasm layers of `size` bytes each.
    ManyLayers { count: usize, size: u64 },
    /// Sends a manifest without end.
    EndlessManifest,
    /// Serves a manifest whose layer's digest is `digest` (a path, say).
    LayerDigest(&'static str),
    /// Answers 401 and asks for a token from `realm` (`self`: its own token service, which
    /// hands out a token; with it the registry serves an `EndlessBlob` of 100 bytes).
    TokenRealm(&'static str),
    /// Answers 404 with an OCI error whose message is `message`.
    Refuse { message: &'static str },
    /// Redirects a manifest's request to `location`.
    RedirectTo(&'static str),
}

/// The token the registry's own token service hands out.
const TOKEN: &str = "t0k3n";

/// A running registry; its threads live as long as the test binary.
pub struct HostileRegistry {
    /// `127.0.0.1:PORT`, for `--insecure-registry`.
    pub address: String,
}

impl HostileRegistry {
    pub fn start(misbehaviour: Misbehaviour) -> HostileRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let at = address.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let at = at.clone();
                std::thread::spawn(move || serve(stream, misbehaviour, &at));
            }
        });
        HostileRegistry { address }
    }
}

fn serve(stream: TcpStream, misbehaviour: Misbehaviour, at: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut authorization = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = Some(value.trim().to_owned());
            }
        }
        let path = request_line.split(' ').nth(1).unwrap_or("");
        let wasm = format!("sha256:{}", "b".repeat(64));
        let answered = match misbehaviour {
            Misbehaviour::Stall => {
                // Hold the connection open, answering nothing, until the client goes away.
                let _ = reader.read_line(&mut String::new());
                return;
            }
            Misbehaviour::TokenRealm(_) if path.starts_with("/token") => {
                let body = format!("{{\"token\":\"{TOKEN}\"}}");
                answer(&mut stream, "200 OK", "application/json", &body)
            }
            Misbehaviour::TokenRealm(realm)
                if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) =>
            {
                let realm = if realm == "self" {
                    format!("http://{at}/token")
                } else {
                    realm.to_owned()
                };
                write!(
                    stream,
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",\
                     service=\"hostile\"\r\nContent-Length: 0\r\n\r\n"
                )
            }
            Misbehaviour::Refuse { message } => {
                let body = serde_json::json!({
                    "errors": [{ "code": "MANIFEST_UNKNOWN", "message": message }],
                })
                .to_string();
                answer(&mut stream, "404 Not Found", "application/json", &body)
            }
            Misbehaviour::RedirectTo(location) if path.contains("/manifests/") => write!(
                stream,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n\
                 Content-Length: 0\r\n\r\n"
            ),
            Misbehaviour::EndlessManifest if path.contains("/manifests/") => {
                endless(&mut stream, "application/vnd.oci.image.manifest.v1+json");
                return;
            }
            Misbehaviour::LayerDigest(digest) if path.contains("/manifests/") => answer(
                &mut stream,
                "200 OK",
                "application/vnd.oci.image.manifest.v1+json",
                &manifest(digest, 1, 1),
            ),
            Misbehaviour::ManyLayers { count, size } if path.contains("/manifests/") => answer(
                &mut stream,
                "200 OK",
                "application/vnd.oci.image.manifest.v1+json",
                &manifest(&wasm, size, count),
            ),
            Misbehaviour::EndlessBlob { declared } if path.contains("/manifests/") => answer(
                &mut stream,
                "200 OK",
                "application/vnd.oci.image.manifest.v1+json",
                &manifest(&wasm, declared, 1),
            ),
            Misbehaviour::TokenRealm(_) if path.contains("/manifests/") => answer(
                &mut stream,
                "200 OK",
                "application/vnd.oci.image.manifest.v1+json",
                &manifest(&wasm, 100, 1),
            ),
            _ if path.contains("/blobs/") => {
                endless(&mut stream, "application/octet-stream");
                return;
            }
            _ => answer(&mut stream, "200 OK", "application/json", "{}"),
        };
        if answered.is_err() {
            return;
        }
    }
}

fn answer(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends a body without end, until the client goes away.
fn endless(stream: &mut TcpStream, content_type: &str) {
    let head =
        format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(head.as_bytes());
    let chunk = vec![b' '; 64 * 1024];
    while stream.write_all(&chunk).is_ok() {}
}

/// A Spin artifact's manifest with `count` Wasm layers, `digest`, of `size` bytes.
fn manifest(digest: &str, size: u64, count: usize) -> String {
    let layer = serde_json::json!({
        "mediaType": "application/vnd.wasm.content.layer.v1+wasm",
        "digest": digest,
        "size": size,
    });
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.wasm.config.v0+json",
            "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 2,
        },
        "layers": vec![layer; count],
    })
    .to_string()
}
