//! The reconciler's HTTP port: `/healthz` (the process runs), `/readyz` (a revision has been
//! applied), Prometheus `/metrics`, and `POST /hook` for push webhooks (a bad or missing signature
//! gets 401 and triggers nothing).

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use spindle_runtime::accept::{Acceptor, Limits};
use tokio::{net::TcpListener, sync::mpsc};

use super::{lease::Holder, metrics::Metrics, webhook};

/// The largest webhook body read.
const MAX_BODY: usize = 4 << 20;

/// What the endpoints share with the reconcile loop.
#[derive(Clone)]
pub struct Endpoints {
    /// The reconciler's metrics, served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Whether a revision has been applied, as `/readyz` reports it.
    pub ready: Arc<AtomicBool>,
    /// `None`: `/hook` is refused (404).
    pub webhook_secret: Option<Arc<Vec<u8>>>,
    /// Queues a reconcile, with its cause; `/hook` sends `"webhook"`.
    pub trigger: mpsc::Sender<&'static str>,
    /// Who holds the Lease, with leader election; `/readyz` says it, and is ready only on the
    /// leader, so that webhooks reach the replica that acts on them.
    pub lease: Option<Arc<std::sync::Mutex<Holder>>>,
}

/// Serves the endpoints on `listener` until the process ends, with the connection limits of
/// spindle's HTTP servers (`spindle_runtime::accept`).
pub async fn serve(listener: TcpListener, endpoints: Endpoints) -> Result<()> {
    let acceptor = Acceptor::new(listener, Limits::default());
    loop {
        let accepted = acceptor.accept().await;
        let endpoints = endpoints.clone();
        let service = hyper::service::service_fn(move |request| {
            let endpoints = endpoints.clone();
            async move { Ok::<_, Infallible>(answer(&endpoints, request).await) }
        });
        let connection = acceptor.http1().serve_connection(accepted.io, service);
        let permit = accepted.permit;
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
}

async fn answer(endpoints: &Endpoints, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            let holder = endpoints
                .lease
                .as_ref()
                .map(|lease| lease.lock().unwrap_or_else(|p| p.into_inner()).clone());
            match holder {
                Some(Holder {
                    me: false,
                    identity,
                }) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!(
                        "following the leader: {}\n",
                        identity.as_deref().unwrap_or("nobody yet")
                    ),
                ),
                _ if !endpoints.ready.load(Ordering::Relaxed) => {
                    text(StatusCode::SERVICE_UNAVAILABLE, "no revision applied yet\n")
                }
                Some(Holder { identity, .. }) => text(
                    StatusCode::OK,
                    &format!("ready (leader: {})\n", identity.unwrap_or_default()),
                ),
                None => text(StatusCode::OK, "ready\n"),
            }
        }
        (&Method::GET, "/metrics") => {
            let mut response = text(StatusCode::OK, &endpoints.metrics.render());
            response.headers_mut().insert(
                "content-type",
                "text/plain; version=0.0.4".parse().expect("a valid header"),
            );
            response
        }
        (&Method::POST, "/hook") => hook(endpoints, request).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn hook(endpoints: &Endpoints, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(secret) = &endpoints.webhook_secret else {
        return text(
            StatusCode::NOT_FOUND,
            "webhooks are off: start with --webhook-secret-file\n",
        );
    };
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
    };
    if !webhook::verify(secret, &parts.headers, &body) {
        tracing::warn!("webhook refused: missing or invalid signature");
        return text(StatusCode::UNAUTHORIZED, "invalid signature\n");
    }
    // A full queue already holds a trigger: this push is covered by it.
    let _ = endpoints.trigger.try_send("webhook");
    text(StatusCode::ACCEPTED, "reconcile queued\n")
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}
