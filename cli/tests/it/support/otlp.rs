//! An OTLP/HTTP trace receiver on loopback, standing in for an OpenTelemetry collector: it
//! answers `POST /v1/traces` with 200 and decodes each export with the OpenTelemetry project's
//! own protobuf types (`opentelemetry-proto`).

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpListener,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

pub use opentelemetry_proto::tonic::{common::v1::any_value::Value, trace::v1::Span};

/// One exported span with its resource's `service.name`.
#[derive(Clone, Debug)]
pub struct Received {
    pub service: String,
    pub span: Span,
}

pub struct Collector {
    pub endpoint: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// Exports that were not valid OTLP.
    invalid: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    pub fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let invalid = Arc::new(Mutex::new(Vec::new()));
        let (sink, errors) = (received.clone(), invalid.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (sink, errors) = (sink.clone(), errors.clone());
                std::thread::spawn(move || serve(stream, &sink, &errors));
            }
        });
        Collector {
            endpoint,
            received,
            invalid,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        self.assert_valid();
        self.received.lock().unwrap().clone()
    }

    fn assert_valid(&self) {
        let invalid = self.invalid.lock().unwrap();
        assert!(invalid.is_empty(), "invalid exports: {invalid:?}");
    }

    /// Waits until a span matching `wanted` arrives.
    pub fn wait_for(&self, wanted: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.assert_valid();
            if let Some(found) = self.received.lock().unwrap().iter().find(|r| wanted(r)) {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no such span within 30 s; received: {:#?}",
                self.received.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Answers the requests of one keep-alive connection.
fn serve(stream: std::net::TcpStream, sink: &Mutex<Vec<Received>>, errors: &Mutex<Vec<String>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        let mut content_type = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => content_type = value.trim().to_owned(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let export = if !request_line.starts_with("POST /v1/traces ") {
            Err(format!("unexpected request: {}", request_line.trim()))
        } else if content_type != "application/x-protobuf" {
            Err(format!("content type `{content_type}`"))
        } else {
            ExportTraceServiceRequest::decode(body.as_slice()).map_err(|err| err.to_string())
        };
        let status = match export {
            Ok(export) => {
                record(export, sink);
                "200 OK"
            }
            Err(err) => {
                errors.lock().unwrap().push(err);
                "400 Bad Request"
            }
        };
        let response = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        let _ = writer.write_all(response.as_bytes());
    }
}

fn record(export: ExportTraceServiceRequest, sink: &Mutex<Vec<Received>>) {
    let mut sink = sink.lock().unwrap();
    for resource in export.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|value| match value {
                Value::StringValue(name) => name.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                sink.push(Received {
                    service: service.clone(),
                    span,
                });
            }
        }
    }
}

/// Lowercase hex, as W3C trace context writes ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
