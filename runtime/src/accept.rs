//! Accepting HTTP/1.1 connections from clients that may not be kind: every HTTP server of spindle
//! (the runtime's, the reconciler's endpoints) accepts through here.
//!
//! - `TCP_NODELAY` on every connection: a response whose head and body leave in two writes
//!   would otherwise wait for the client's delayed ACK (Nagle), ~40 ms at p99.
//! - A cap on open connections: beyond it a connection is answered `503` with `Retry-After` and
//!   closed, so a flood of idle or slow clients cannot exhaust the process's file descriptors.
//! - A header read timeout, which also bounds how long an idle keep-alive connection is held:
//!   a client that trickles its headers (slowloris) or goes quiet is disconnected.
//! - Accept errors (`EMFILE` when descriptors run out) are backed off, not retried at once.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::AsyncWriteExt as _,
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};

/// How an HTTP server treats its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; more are answered 503.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and to start the next request on a
    /// keep-alive connection.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; a larger one gets 431.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    /// 1,024 connections, 10 s for headers, 64 KiB of them.
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 << 10,
        }
    }
}

/// The first wait after a failed accept; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait after failed accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A listener with [`Limits`].
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    limits: Limits,
    open: Arc<Semaphore>,
}

/// An accepted connection, counted against the limit until it is dropped.
#[derive(Debug)]
pub struct Accepted {
    /// The connection, ready for hyper.
    pub io: TokioIo<TcpStream>,
    /// The client's address.
    pub client: SocketAddr,
    /// Held as long as the connection is open.
    pub permit: OwnedSemaphorePermit,
}

impl Acceptor {
    /// Accepts on `listener` within `limits`.
    pub fn new(listener: TcpListener, limits: Limits) -> Self {
        let open = Arc::new(Semaphore::new(limits.max_connections));
        Acceptor {
            listener,
            limits,
            open,
        }
    }

    /// The next connection within the limits. Connections beyond the limit are answered 503 in
    /// the background; failed accepts are retried after a growing pause.
    pub async fn accept(&self) -> Accepted {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let (stream, client) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!("accept failed: {err}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = FIRST_BACKOFF;
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%client, "cannot set TCP_NODELAY: {err}");
            }
            match self.open.clone().try_acquire_owned() {
                Ok(permit) => {
                    return Accepted {
                        io: TokioIo::new(stream),
                        client,
                        permit,
                    };
                }
                Err(_) => {
                    tracing::warn!(
                        %client,
                        "refused a connection: {} already open",
                        self.limits.max_connections
                    );
                    tokio::spawn(refuse(stream));
                }
            }
        }
    }

    /// An HTTP/1.1 connection builder with these limits and keep-alive.
    pub fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(self.limits.max_header_bytes.max(8192))
            .keep_alive(true);
        builder
    }

    /// The address listened on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Answers a connection over the limit with 503 and closes it, giving up after a second.
async fn refuse(mut stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
        Connection: close\r\nContent-Length: 0\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_beyond_the_limit_get_503_and_slow_headers_are_cut() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let acceptor = Acceptor::new(
            listener,
            Limits {
                max_connections: 1,
                header_read_timeout: Duration::from_millis(300),
                ..Limits::default()
            },
        );
        let address = acceptor.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let accepted = acceptor.accept().await;
                let service = hyper::service::service_fn(|_| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                    ))
                });
                let connection = acceptor.http1().serve_connection(accepted.io, service);
                tokio::spawn(async move {
                    let _permit = accepted.permit;
                    let _ = connection.await;
                });
            }
        });
        tokio::task::spawn_blocking(move || {
            // The first client holds the only slot by sending half a request.
            let mut slow = std::net::TcpStream::connect(address).unwrap();
            slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let mut second = std::net::TcpStream::connect(address).unwrap();
            second
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            second.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            assert!(answer.contains("Retry-After: 1"), "{answer}");
            // The slow client is cut off at the header timeout, which frees its slot.
            let mut rest = Vec::new();
            let started = std::time::Instant::now();
            let _ = slow.read_to_end(&mut rest);
            assert!(started.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(100));
            let mut third = std::net::TcpStream::connect(address).unwrap();
            third
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            third.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        })
        .await
        .unwrap();
    }
}
