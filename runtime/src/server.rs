//! The HTTP trigger: route each request to a component, give it Spin's `spin-*` headers, run it in
//! a fresh instance and stream its response back. HTTP/1.1 with keep-alive; a shutdown stops
//! accepting and lets in-flight requests finish.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Instant};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, StatusCode, body::Incoming, header::HeaderValue};
use tokio::net::TcpListener;
use wasmtime_wasi_http::{
    WasiHttpView as _,
    p2::{bindings::http::types::Scheme, body::HyperOutgoingBody},
};

use crate::{
    accept::{Acceptor, Limits},
    app::App,
    outbound::{Local, SelfRequests},
    routes::{self, spin_headers},
    runtime::{DeadlineExceeded, Options, Runtime},
    telemetry,
    trigger::{Listeners, command},
};

/// Paths Spin answers itself.
const WELL_KNOWN: &str = "/.well-known/spin/";

/// The largest request body announced with `Content-Length`; a larger one gets 413 before the
/// guest runs. A chunked body is bounded by the request's deadline.
const MAX_BODY: u64 = 64 << 20;

/// The runtime a listener serves, replaceable while it serves: each request (or message) takes
/// the current one and keeps it to the end, so a replacement drains the old runtime without
/// failing a request or dropping a message being handled.
pub struct Slot(tokio::sync::watch::Sender<Arc<Runtime>>);

impl Slot {
    /// A slot serving `runtime` until it is replaced.
    pub fn new(runtime: Runtime) -> Arc<Slot> {
        Arc::new(Slot(tokio::sync::watch::Sender::new(Arc::new(runtime))))
    }

    /// The runtime that serves new requests now.
    pub fn current(&self) -> Arc<Runtime> {
        self.0.borrow().clone()
    }

    /// Puts `runtime` in place for the next requests; its triggers replace the old one's.
    pub fn replace(&self, runtime: Runtime) {
        self.0.send_replace(Arc::new(runtime));
    }
}

/// Runs the message triggers of the runtime in `slot`, and of each that replaces it, until
/// `shutdown`; then closes their subscriptions and waits for the handlers they started.
///
/// On a replacement the old subscriptions close before the new ones open, so no message is
/// handled twice; a message published in that instant may be missed by a Redis trigger (Redis
/// keeps nothing for absent subscribers). Handlers of the old runtime run to their end.
async fn run_triggers(slot: Arc<Slot>, shutdown: impl Future<Output = ()>) {
    let mut replaced = slot.0.subscribe();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut listeners = Listeners::start(&replaced.borrow_and_update().clone());
    let mut draining = Vec::new();
    loop {
        tokio::select! {
            changed = replaced.changed() => {
                if changed.is_err() {
                    break;
                }
                let runtime = replaced.borrow_and_update().clone();
                let old = std::mem::replace(&mut listeners, Listeners::closed());
                draining.push(tokio::spawn(old.stop()));
                listeners = Listeners::start(&runtime);
            }
            () = &mut shutdown => break,
        }
    }
    listeners.stop().await;
    for old in draining {
        let _ = old.await;
    }
}

/// Serves the runtime in `slot` on `listener` until `shutdown` resolves, then waits for in-flight
/// requests.
pub async fn serve(
    slot: Arc<Slot>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let (stop_triggers, triggers_stopped) = tokio::sync::oneshot::channel::<()>();
    let triggers = tokio::spawn(run_triggers(slot.clone(), async {
        let _ = triggers_stopped.await;
    }));
    let acceptor = Acceptor::new(listener, Limits::default());
    loop {
        let accepted = tokio::select! {
            accepted = acceptor.accept() => accepted,
            () = &mut shutdown => break,
        };
        let client = accepted.client;
        let share = slot.current().cpu_share().clone();
        let slot = slot.clone();
        let service = hyper::service::service_fn(move |request| {
            let runtime = slot.current();
            async move { Ok::<_, Infallible>(handle(&runtime, request, client).await) }
        });
        let connection = acceptor.http1().serve_connection(accepted.io, service);
        // Reading requests and writing responses count against the app's share of the cores,
        // as its guests do.
        let connection = share.run(graceful.watch(connection));
        let permit = accepted.permit;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%client, "connection ended: {err}");
            }
            drop(permit);
        });
    }
    drop(acceptor);
    let _ = stop_triggers.send(());
    graceful.shutdown().await;
    let _ = triggers.await;
    Ok(())
}

/// Prepares `app` and serves it on `listen` until Ctrl-C or SIGTERM, exporting request spans
/// when the `OTEL_*` variables (read through `var`) ask for it; `ready` is told the prepared
/// runtime and the bound address before the first request is accepted. What `spindle run` and
/// the containerd shim do; `spindle up` serves several apps through [`serve`].
///
/// Its HTTP routes and message triggers are served together; the listener also answers the
/// health endpoint of an app without HTTP routes. A command app (`[[trigger.command]]`) is run
/// once instead, without a listener. The exit status: the command's, 143 when SIGTERM stopped
/// it, 0 for a server stopped.
pub async fn run(
    app: App,
    mut options: Options,
    listen: SocketAddr,
    var: impl Fn(&str) -> Option<String>,
    ready: impl FnOnce(&Runtime, SocketAddr),
) -> Result<i32> {
    let (tracer, exporter) = telemetry::start_if_configured(var, &app.name).unzip();
    options.tracer = tracer;
    let runtime = Runtime::new(app, options).context("the app cannot start")?;
    if runtime.app.is_command() {
        let runtime = Arc::new(runtime);
        return tokio::select! {
            status = command::run(&runtime, &[]) => status,
            () = termination() => Ok(128 + 15),
        };
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    ready(&runtime, listener.local_addr()?);
    serve(Slot::new(runtime), listener, termination()).await?;
    if let Some(exporter) = exporter {
        exporter.finish().await;
    }
    Ok(0)
}

/// Resolves on Ctrl-C or SIGTERM: what stops a server.
pub async fn termination() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Answers one request.
pub async fn handle(
    runtime: &Arc<Runtime>,
    mut request: Request<Incoming>,
    client: SocketAddr,
) -> Response<HyperOutgoingBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // Probes of Spin's well-known paths are not traced.
    let span = runtime
        .tracer()
        .filter(|_| !path.starts_with(WELL_KNOWN))
        .map(|tracer| tracer.begin(request.headers()));
    if let Some(span) = &span
        && let Ok(value) = HeaderValue::try_from(span.traceparent())
    {
        request.headers_mut().insert("traceparent", value);
    }
    let (response, target) = route(runtime, request, client).await;
    let status = response.status().as_u16();
    let component = target.map(|(_, component)| component);
    tracing::info!(
        target: "spindle::request",
        %method,
        %path,
        status,
        component = %component.unwrap_or("-"),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    if let (Some(tracer), Some(span)) = (runtime.tracer(), span) {
        let route = target.map(|(pattern, _)| pattern.to_string());
        let answered = telemetry::Answered {
            method: method.as_str(),
            path: &path,
            route: route.as_deref(),
            component,
            status,
        };
        tracer.end(span, answered);
    }
    response
}

/// The response, and the route and component that answered it (none for a 404 or Spin's
/// well-known paths).
async fn route(
    runtime: &Arc<Runtime>,
    request: Request<Incoming>,
    client: SocketAddr,
) -> (
    Response<HyperOutgoingBody>,
    Option<(&routes::RoutePattern, &str)>,
) {
    let path = request.uri().path().to_owned();
    if let Some(reserved) = path.strip_prefix(WELL_KNOWN) {
        return (well_known(runtime, reserved), None);
    }
    let announced = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_BODY) {
        return (
            text(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n"),
            None,
        );
    }
    // Probes above answer whatever the load (under `spindle up`, after waiting for the app's
    // next turn of its CPU share, one guest poll at most); requests beyond the app's share of
    // the instance pool wait for nothing: they are told to come back.
    let Ok(_permit) = runtime.in_flight.try_acquire() else {
        let mut busy = text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n");
        busy.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return (busy, None);
    };
    let Some((pattern, id, matched)) = routes::best(&runtime.app.routes, &path) else {
        return (text(StatusCode::NOT_FOUND, "Not Found\n"), None);
    };
    let response = dispatch(runtime, pattern, id, &matched, request, client, 0).await;
    (response, Some((pattern, id.as_str())))
}

impl SelfRequests for Runtime {
    fn answer(
        self: Arc<Self>,
        target: Local,
        request: Request<wasmtime_wasi_http::WasiBody>,
        depth: u8,
    ) -> std::pin::Pin<Box<dyn Future<Output = Response<HyperOutgoingBody>> + Send>> {
        Box::pin(local(self, target, request, depth))
    }
}

/// Answers a guest's request to its own app (`depth` requests deep).
async fn local<B>(
    runtime: Arc<Runtime>,
    target: Local,
    request: Request<B>,
    depth: u8,
) -> Response<HyperOutgoingBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let path = request.uri().path().to_owned();
    let client = SocketAddr::from(([127, 0, 0, 1], 0));
    let wildcard;
    let (pattern, id, matched) = match &target {
        Local::ByRoute => match routes::best(&runtime.app.routes, &path) {
            Some(found) => found,
            None => return text(StatusCode::NOT_FOUND, "Not Found\n"),
        },
        Local::Component(id) => {
            let serves_http = runtime
                .component(id)
                .is_some_and(|c| matches!(c.handler, crate::handler::Handler::Http(_)));
            if !serves_http {
                return text(StatusCode::NOT_FOUND, "Not Found\n");
            }
            let own = runtime.app.routes.iter().find(|(_, target)| target == id);
            let pattern = match own {
                Some((pattern, _)) if pattern.matches(&path).is_some() => pattern,
                _ => {
                    wildcard = routes::RoutePattern::parse("/...").expect("a valid route");
                    &wildcard
                }
            };
            let matched = pattern
                .matches(&path)
                .expect("the pattern matches the path");
            (pattern, id, matched)
        }
    };
    let response = dispatch(&runtime, pattern, id, &matched, request, client, depth).await;
    tracing::debug!(component = %id, %path, status = response.status().as_u16(), "local request");
    response
}

/// Gives `request` the `spin-*` headers of its match and runs component `id` on it.
async fn dispatch<B>(
    runtime: &Arc<Runtime>,
    pattern: &routes::RoutePattern,
    id: &str,
    matched: &routes::RouteMatch,
    mut request: Request<B>,
    client: SocketAddr,
    depth: u8,
) -> Response<HyperOutgoingBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let Some(component) = runtime.component(id) else {
        return text(StatusCode::NOT_FOUND, "Not Found\n");
    };
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_owned(), |pq| pq.to_string());
    let full_url = format!("http://{host}{path_and_query}");
    let headers = request.headers_mut();
    // A client may not pose as the router.
    let spoofed: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
    for (name, value) in spin_headers(pattern, matched, &full_url, &client.to_string()) {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            headers.insert(name, value);
        }
    }
    // wasi:http wants an absolute URI.
    if let Ok(uri) = full_url.parse() {
        *request.uri_mut() = uri;
    }
    match invoke(runtime, component, request, depth).await {
        Ok(response) => response,
        Err(err) if err.downcast_ref::<DeadlineExceeded>().is_some() => {
            tracing::warn!(component = %id, "{err:#}");
            text(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout\n")
        }
        Err(err) => {
            tracing::error!(component = %id, "request failed: {err:?}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
        }
    }
}

/// Runs the component on the request in a fresh instance.
async fn invoke<B>(
    runtime: &Arc<Runtime>,
    component: &crate::runtime::Prepared,
    request: Request<B>,
    depth: u8,
) -> Result<Response<HyperOutgoingBody>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let crate::handler::Handler::Http(pre) = &component.handler else {
        anyhow::bail!("the component is not an HTTP handler: its trigger is not HTTP");
    };
    let pre = pre.clone();
    let mut store = runtime.store(component, depth)?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    let outparam = store.data_mut().http().new_response_outparam(sender)?;
    // The request's wall-clock deadline covers everything the guest does, waiting on host I/O
    // (a trickled body, an outbound call, a poll) included, not only wasm execution (which the
    // epoch deadline stops): past it the instance and its host resources are dropped. The guest
    // may keep running after it sent the response head (streaming the body); the deadline cuts
    // that too, and the connection then closes.
    let timeout = runtime.request_timeout();
    // The deadline runs outside the app's CPU share: waiting for a turn counts.
    let handled = runtime.cpu_share().run(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, outparam)
            .await
    });
    let task = tokio::spawn(async move {
        tokio::time::timeout(timeout, handled)
            .await
            .unwrap_or_else(|_| Err(wasmtime::Error::new(DeadlineExceeded(timeout))))
    });
    // At the deadline the task drops the store, and with it the response outparam: the
    // receiver then ends, and the task's own error says why.
    match receiver.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => anyhow::bail!("the guest answered with an error: {code:?}"),
        Err(_) => match task.await {
            Ok(Ok(())) => anyhow::bail!("the guest returned without sending a response"),
            Ok(Err(err)) if err.is::<DeadlineExceeded>() => {
                Err(anyhow::Error::new(DeadlineExceeded(timeout)))
            }
            Ok(Err(err)) => Err(anyhow::anyhow!("{err:?}")),
            Err(join) => Err(join.into()),
        },
    }
}

fn well_known(runtime: &Runtime, path: &str) -> Response<HyperOutgoingBody> {
    match path {
        // Ready once every trigger receives: what a pod's probes ask, for any app.
        "health" => match runtime.health.not_ready().as_slice() {
            [] => text(StatusCode::OK, "OK"),
            waiting => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: waiting for triggers {}\n", waiting.join(", ")),
            ),
        },
        "info" => {
            let triggers: serde_json::Map<String, serde_json::Value> = runtime
                .health
                .snapshot()
                .into_iter()
                .map(|(id, health)| {
                    let state = serde_json::json!({
                        "ready": health.ready,
                        "handled": health.handled,
                        "failed": health.failed,
                    });
                    (id, state)
                })
                .collect();
            let info = serde_json::json!({
                "name": runtime.app.name,
                "runtime": "spindle",
                "version": env!("CARGO_PKG_VERSION"),
                "triggers": triggers,
            });
            let mut response = text(StatusCode::OK, &info.to_string());
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            response
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(body.to_owned()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}
