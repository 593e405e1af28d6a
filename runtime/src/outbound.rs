//! wasi:http's hook for a guest's outgoing requests: requests to the guest's own app stay in the
//! process (through [`SelfRequests`]), those the [`AllowList`] refuses get `HTTP-request-denied`,
//! the rest are sent. A relative URL (no host, as SDKs send for `/path`) is a request to the app
//! itself by route, as in Spin, allowed by an `http://self` entry.

use std::{future::Future, pin::Pin, sync::Arc, sync::Weak};

use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::allow_list::AllowList;

/// Where a guest's request to its own app goes, without leaving the process.
pub enum Local {
    /// `http://self.alt/path`: through the app's routes, as from outside.
    ByRoute,
    /// `http://<component>.spin.internal/path` (Spin's local service chaining): straight to the
    /// component, routed or private.
    Component(String),
}

/// What outbound calls need of their app: answering a request that stays inside it
/// (`depth` requests deep). The HTTP trigger implements it for the running app.
pub trait SelfRequests: Send + Sync {
    /// Answers `request` inside the app.
    fn answer(
        self: Arc<Self>,
        target: Local,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        depth: u8,
    ) -> Pin<Box<dyn Future<Output = http::Response<HyperOutgoingBody>> + Send>>;
}

/// The pseudo-host of requests to the component's own app by route.
const SELF_HOST: &str = "self.alt";
/// Hosts under this domain name components of the same app.
const CHAINING_DOMAIN: &str = ".spin.internal";
/// How deep requests from an app to itself may nest before they are refused.
const MAX_LOCAL_DEPTH: u8 = 10;

/// wasi:http's hook for outgoing requests: requests to the app itself are answered in-process,
/// those the allow-list refuses are denied, the rest are sent.
pub struct Outbound {
    allow: AllowList,
    app: Weak<dyn SelfRequests>,
    depth: u8,
}

impl Outbound {
    /// The hook of one instance of a component of `app`, `depth` requests deep.
    pub fn new(allow: AllowList, app: Weak<dyn SelfRequests>, depth: u8) -> Self {
        Outbound { allow, app, depth }
    }

    /// Where a request to `scheme://host:port` stays in the app, if it does and may. No host (a
    /// relative URL) is the app itself.
    fn local(&self, scheme: &str, host: &str, port: Option<u16>) -> Option<Result<Local, ()>> {
        let host = host.to_ascii_lowercase();
        if host == SELF_HOST || host.is_empty() {
            return Some(self.allow.allows_self().then_some(Local::ByRoute).ok_or(()));
        }
        let component = host.strip_suffix(CHAINING_DOMAIN)?;
        Some(
            self.allow
                .allows(scheme, &host, port)
                .then(|| Local::Component(component.to_owned()))
                .ok_or(()),
        )
    }
}

type Sent = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

/// `HTTP-request-denied`, as Spin answers. The request's body is still read to its end (and
/// dropped) in the background: a guest that writes the body while it waits for the response (the
/// Python SDK does both at once) sees its writes succeed and then the denial, not a closed stream.
fn denied(request: http::Request<wasmtime_wasi_http::WasiBody>) -> Sent {
    let mut body = request.into_body();
    tokio::spawn(async move {
        use http_body_util::BodyExt as _;
        // Ends when the guest finishes or drops the body (its store goes at the deadline).
        while let Some(Ok(_)) = body.frame().await {}
    });
    Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
}

impl wasmtime_wasi_http::WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Sent {
        drop(fut);
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_owned();
        let host = uri.host().unwrap_or_default().to_owned();
        match self.local(&scheme, &host, uri.port_u16()) {
            Some(Ok(target)) => {
                let Some(app) = self.app.upgrade() else {
                    return denied(request);
                };
                if self.depth >= MAX_LOCAL_DEPTH {
                    tracing::warn!(%host, "request to the app itself refused: {MAX_LOCAL_DEPTH} requests deep");
                    return denied(request);
                }
                let depth = self.depth + 1;
                return Box::new(async move {
                    let response = app.answer(target, request, depth).await;
                    Ok((
                        response,
                        Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                    ))
                });
            }
            Some(Err(())) => {
                tracing::warn!(%scheme, %host, "request to the app itself denied: not in allowed_outbound_hosts");
                return denied(request);
            }
            None => {}
        }
        if !self.allow.allows(&scheme, &host, uri.port_u16()) {
            tracing::warn!(%scheme, %host, "outbound request denied: not in allowed_outbound_hosts");
            return denied(request);
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(http_body_util::BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}
