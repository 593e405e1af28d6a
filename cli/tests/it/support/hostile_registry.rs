//! A registry that a repository could name, run by an attacker: it speaks just enough of the
//! distribution API (`/v2/`, one manifest) for a client to ask for a blob, then misbehaves the
//! way it is told.

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
}

/// A running registry; its threads live as long as the test binary.
pub struct HostileRegistry {
    /// `127.0.0.1:PORT`, for `--insecure-registry`.
    pub address: String,
}

impl HostileRegistry {
    pub fn start(misbehaviour: Misbehaviour) -> HostileRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream, misbehaviour));
            }
        });
        HostileRegistry { address }
    }
}

fn serve(stream: TcpStream, misbehaviour: Misbehaviour) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        let path = request_line.split(' ').nth(1).unwrap_or("");
        let declared = match misbehaviour {
            Misbehaviour::Stall => {
                // Hold the connection open, answering nothing, until the client goes away.
                let _ = reader.read_line(&mut String::new());
                return;
            }
            Misbehaviour::EndlessBlob { declared } => declared,
        };
        let answered = if path.contains("/manifests/") {
            let body = manifest(declared);
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else if path.contains("/blobs/") {
            let chunk = vec![0u8; 64 * 1024];
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                        Connection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            while stream.write_all(&chunk).is_ok() {}
            return;
        } else {
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{{}}")
        };
        if answered.is_err() {
            return;
        }
    }
}

/// A Spin artifact's manifest with one Wasm layer of `size` bytes.
fn manifest(size: u64) -> String {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.wasm.config.v0+json",
            "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 2,
        },
        "layers": [{
            "mediaType": "application/vnd.wasm.content.layer.v1+wasm",
            "digest": format!("sha256:{}", "b".repeat(64)),
            "size": size,
        }],
    })
    .to_string()
}
