//! OpenTelemetry traces: a server span for every request the app answers, exported over OTLP/HTTP
//! (protobuf) when the standard `OTEL_*` variables name an endpoint, as SpinKube's pods set them.
//! A request's `traceparent` header (W3C Trace Context) makes its span a child of the caller's.
//!
//! Spans go through a bounded queue to one exporter task, which sends a batch every second
//! (`OTEL_BSP_SCHEDULE_DELAY`), or sooner when 512 are waiting. A full queue or an unreachable collector drops spans, never
//! slows or fails a request; the first failure of a run is logged.

pub mod otlp;

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{HeaderMap, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};

const QUEUE: usize = 4096;
const BATCH: usize = 512;
const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_secs(1);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and as what traces are exported.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The traces URL (`…/v1/traces`).
    pub endpoint: Uri,
    /// Headers for the collector (`OTEL_EXPORTER_OTLP_HEADERS`), e.g. credentials.
    pub headers: Vec<(String, String)>,
    /// The resource: `service.name` first, then `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource: Vec<(String, String)>,
    /// How long spans wait for their batch (`OTEL_BSP_SCHEDULE_DELAY`, in milliseconds).
    pub schedule_delay: Duration,
}

impl Config {
    /// Reads the `OTEL_*` variables through `var`. `None` when no endpoint is set or
    /// `OTEL_SDK_DISABLED=true`; an error names a setting spindle cannot honour.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        default_service: &str,
    ) -> Result<Option<Config>, String> {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none")
        {
            return Ok(None);
        }
        let endpoint = match (
            set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            set("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let not_a_url =
            || format!("OTLP endpoint `{endpoint}`: an http:// or https:// URL is needed");
        let endpoint: Uri = endpoint.trim().parse().map_err(|_| not_a_url())?;
        if !matches!(endpoint.scheme_str(), Some("http" | "https")) || endpoint.host().is_none() {
            return Err(not_a_url());
        }
        let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "http/protobuf".to_owned());
        if protocol.trim() != "http/protobuf" {
            return Err(format!(
                "OTLP protocol `{protocol}` is not supported: spindle exports http/protobuf"
            ));
        }
        let headers = list(
            &set("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
                .or_else(|| set("OTEL_EXPORTER_OTLP_HEADERS"))
                .unwrap_or_default(),
        );
        for (name, value) in &headers {
            if http::HeaderName::try_from(name.as_str()).is_err()
                || http::HeaderValue::try_from(value.as_str()).is_err()
            {
                return Err(format!("OTLP header `{name}` is not a valid HTTP header"));
            }
        }
        let schedule_delay = match set("OTEL_BSP_SCHEDULE_DELAY") {
            None => DEFAULT_SCHEDULE_DELAY,
            Some(ms) => ms
                .trim()
                .parse()
                .map(Duration::from_millis)
                .ok()
                .filter(|delay| !delay.is_zero())
                .ok_or_else(|| {
                    format!("OTEL_BSP_SCHEDULE_DELAY=`{ms}` is not a number of milliseconds")
                })?,
        };
        let mut attributes: BTreeMap<String, String> =
            list(&set("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default())
                .into_iter()
                .collect();
        let service = set("OTEL_SERVICE_NAME")
            .or_else(|| attributes.remove("service.name"))
            .unwrap_or_else(|| default_service.to_owned());
        attributes.remove("service.name");
        let mut resource = vec![("service.name".to_owned(), service)];
        resource.extend(attributes);
        Ok(Some(Config {
            endpoint,
            headers,
            resource,
            schedule_delay,
        }))
    }
}

/// `key=value,key=value`, as the OTEL variables write lists (values may be percent-encoded).
fn list(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), percent_decode(value.trim())))
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Hands finished spans to the exporter; cheap to clone, one per app.
#[derive(Clone)]
pub struct Tracer {
    spans: mpsc::Sender<otlp::Span>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

/// The exporter task; [`Exporter::finish`] sends what is left.
pub struct Exporter {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the exporter on the current tokio runtime.
fn start(config: Config) -> (Tracer, Exporter) {
    let (spans, queue) = mpsc::channel(QUEUE);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(export(config, queue, stopped));
    (Tracer { spans }, Exporter { stop, task })
}

/// Starts exporting when the `OTEL_*` variables `var` reads ask for it, saying so in the log; a
/// setting spindle cannot honour is logged and leaves traces off.
pub fn start_if_configured(
    var: impl Fn(&str) -> Option<String>,
    default_service: &str,
) -> Option<(Tracer, Exporter)> {
    match Config::from_vars(var, default_service) {
        Ok(Some(config)) => {
            tracing::info!("exporting traces to {}", config.endpoint);
            Some(start(config))
        }
        Ok(None) => None,
        Err(err) => {
            tracing::warn!("traces are not exported: {err}");
            None
        }
    }
}

impl Exporter {
    /// Sends the spans still queued: the export under way, then the last one, each bounded by
    /// `EXPORT_TIMEOUT`.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(2 * EXPORT_TIMEOUT, self.task)
            .await
            .is_err()
        {
            tracing::warn!("traces: the last spans were not exported in time");
        }
    }
}

async fn export(
    config: Config,
    mut queue: mpsc::Receiver<otlp::Span>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut batch = Vec::new();
    let mut failed_before = false;
    let mut tick = tokio::time::interval(config.schedule_delay);
    loop {
        let stopping = tokio::select! {
            span = queue.recv() => match span {
                Some(span) => {
                    batch.push(span);
                    if batch.len() < BATCH {
                        continue;
                    }
                    false
                }
                None => true,
            },
            _ = tick.tick() => false,
            _ = &mut stopped => true,
        };
        if stopping {
            while let Ok(span) = queue.try_recv() {
                batch.push(span);
            }
        }
        if !batch.is_empty() {
            let spans = std::mem::take(&mut batch);
            let count = spans.len();
            match send(&config, spans).await {
                Ok(()) => failed_before = false,
                Err(err) if !failed_before => {
                    failed_before = true;
                    tracing::warn!(
                        "traces: {count} span(s) not exported to {}: {err}",
                        config.endpoint
                    );
                }
                Err(_) => {}
            }
        }
        if stopping {
            return;
        }
    }
}

async fn send(config: &Config, spans: Vec<otlp::Span>) -> Result<(), String> {
    let body = otlp::ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: Some(otlp::Resource {
                attributes: config
                    .resource
                    .iter()
                    .map(|(key, value)| otlp::KeyValue::string(key, value.clone()))
                    .collect(),
            }),
            scope_spans: vec![otlp::ScopeSpans {
                scope: Some(otlp::InstrumentationScope {
                    name: "spindle".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                }),
                spans,
            }],
        }],
    }
    .encode_to_vec();
    let mut request = Request::post(config.endpoint.clone())
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .header(
            http::header::HOST,
            config.endpoint.authority().map_or("", |a| a.as_str()),
        );
    for (name, value) in &config.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .map_err(|err| err.to_string())?;
    let options = wasmtime_wasi_http::RequestOptions {
        connect_timeout: Some(EXPORT_TIMEOUT),
        first_byte_timeout: Some(EXPORT_TIMEOUT),
        between_bytes_timeout: Some(EXPORT_TIMEOUT),
    };
    let exchange = async {
        let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options))
            .await
            .map_err(|err| err.to_string())?;
        let _driver = AbortOnDrop(tokio::spawn(io));
        let status = response.status();
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        match (status.is_success(), body) {
            (true, _) => Ok(()),
            (false, Ok(body)) => Err(format!(
                "the collector answered {status}: {}",
                String::from_utf8_lossy(&body).trim()
            )),
            (false, Err(_)) => Err(format!("the collector answered {status}")),
        }
    };
    tokio::time::timeout(EXPORT_TIMEOUT, exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Stops the connection's task however the exchange ends, a timeout included.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A request's span while it is being answered.
pub struct RequestSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    /// The caller's span, from `traceparent`.
    parent: Option<[u8; 8]>,
    /// W3C trace flags (bit 0: sampled).
    flags: u8,
    start: SystemTime,
}

impl RequestSpan {
    /// `traceparent` for the guest: this span in the caller's trace, so that what the guest
    /// forwards continues from here.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }
}

/// What the finished span says about the request.
pub struct Answered<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The route that matched, as the manifest has it with its base.
    pub route: Option<&'a str>,
    pub component: Option<&'a str>,
    pub status: u16,
}

impl Tracer {
    /// Opens the span of a request, the child of its `traceparent` when it has a valid one.
    pub fn begin(&self, headers: &HeaderMap) -> RequestSpan {
        let parent = headers
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .and_then(traceparent);
        let (trace_id, parent, flags) = match parent {
            Some((trace, span, flags)) => (trace, Some(span), flags),
            None => (rand::random(), None, SAMPLED),
        };
        RequestSpan {
            trace_id,
            span_id: rand::random(),
            parent,
            flags,
            start: SystemTime::now(),
        }
    }

    /// Closes the span and queues it for export (unless the caller said not to sample it).
    pub fn end(&self, span: RequestSpan, answered: Answered<'_>) {
        if span.flags & SAMPLED == 0 {
            return;
        }
        let nanos = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        };
        let mut attributes = vec![
            otlp::KeyValue::string("http.request.method", answered.method),
            otlp::KeyValue::string("url.path", answered.path),
            otlp::KeyValue::int("http.response.status_code", i64::from(answered.status)),
        ];
        if let Some(route) = answered.route {
            attributes.push(otlp::KeyValue::string("http.route", route));
        }
        if let Some(component) = answered.component {
            attributes.push(otlp::KeyValue::string("spin.component", component));
        }
        let error = answered.status >= 500;
        let finished = otlp::Span {
            trace_id: span.trace_id.to_vec(),
            span_id: span.span_id.to_vec(),
            trace_state: String::new(),
            parent_span_id: span.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: match answered.route {
                Some(route) => format!("{} {route}", answered.method),
                None => answered.method.to_owned(),
            },
            kind: 2,
            start_time_unix_nano: nanos(span.start),
            end_time_unix_nano: nanos(SystemTime::now()),
            attributes,
            status: Some(otlp::Status {
                message: String::new(),
                code: if error { 2 } else { 0 },
            }),
            // The trace flags, and whether the parent's remoteness is known (it is: a caller).
            flags: u32::from(span.flags)
                | HAS_IS_REMOTE
                | if span.parent.is_some() { IS_REMOTE } else { 0 },
        };
        // A full queue drops the span: tracing must not hold a request up.
        let _ = self.spans.try_send(finished);
    }
}

const SAMPLED: u8 = 1;
/// OTLP span flags: bit 8 says whether bit 9 (the parent is remote) is known.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// `version-traceid-parentid-flags`: the trace, the caller's span, and the trace flags.
fn traceparent(value: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let lower_hex = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let valid = lower_hex(version, 2)
        && version != "ff"
        && !(version == "00" && parts.next().is_some())
        && lower_hex(trace, 32)
        && lower_hex(span, 16)
        && lower_hex(flags, 2);
    if !valid {
        return None;
    }
    let trace: [u8; 16] = hex::decode(trace).ok()?.try_into().ok()?;
    let span: [u8; 8] = hex::decode(span).ok()?.try_into().ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if trace == [0; 16] || span == [0; 8] {
        return None;
    }
    Some((trace, span, flags))
}

#[cfg(test)]
mod tests;
