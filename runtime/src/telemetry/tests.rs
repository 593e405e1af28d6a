use super::*;

fn config(vars: &[(&str, &str)]) -> Result<Option<Config>, String> {
    Config::from_vars(
        |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        },
        "my-app",
    )
}

#[test]
fn no_endpoint_or_a_disabled_sdk_exports_nothing() {
    assert_eq!(config(&[]), Ok(None));
    assert_eq!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Ok(None));
    assert_eq!(
        config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]),
        Ok(None)
    );
}

#[test]
fn the_base_endpoint_gets_the_traces_path_and_the_traces_endpoint_is_taken_as_is() {
    let base = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
        .unwrap()
        .unwrap();
    assert_eq!(base.endpoint, "http://collector:4318/v1/traces");
    assert_eq!(
        base.resource,
        [("service.name".to_owned(), "my-app".to_owned())]
    );
    let traces = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://traces.example/in",
        ),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(traces.endpoint, "https://traces.example/in");
}

#[test]
fn service_name_resource_attributes_and_headers_come_from_their_variables() {
    let config = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attributes, deployment.environment=staging,team=a%2Cb",
        ),
        ("OTEL_SERVICE_NAME", "checkout"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20xyz"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        config.resource,
        [
            ("service.name".to_owned(), "checkout".to_owned()),
            ("deployment.environment".to_owned(), "staging".to_owned()),
            ("team".to_owned(), "a,b".to_owned()),
        ]
    );
    assert_eq!(
        config.headers,
        [("authorization".to_owned(), "Bearer xyz".to_owned())]
    );
}

#[test]
fn the_exporter_none_turns_traces_off_and_the_batch_delay_is_read() {
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    assert_eq!(
        config(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]),
        Ok(None)
    );
    let config_with = |delay| config(&[endpoint, ("OTEL_BSP_SCHEDULE_DELAY", delay)]);
    assert_eq!(
        config_with("250").unwrap().unwrap().schedule_delay,
        Duration::from_millis(250)
    );
    assert!(
        config_with("soon")
            .unwrap_err()
            .contains("OTEL_BSP_SCHEDULE_DELAY")
    );
}

#[test]
fn settings_spindle_cannot_honour_are_named() {
    let bad_header = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "bad header=x"),
    ]);
    assert!(bad_header.unwrap_err().contains("`bad header`"));
    let grpc = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    assert!(grpc.unwrap_err().contains("`grpc` is not supported"));
    let no_scheme = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
    assert!(no_scheme.unwrap_err().contains("http:// or https://"));
}

#[test]
fn traceparent_is_read_as_w3c_trace_context_writes_it() {
    let (trace, span, flags) =
        traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    assert_eq!(hex::encode(trace), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex::encode(span), "00f067aa0ba902b7");
    assert_eq!(flags, 1);
    let unsampled = traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    assert_eq!(unsampled.unwrap().2, 0);
    // A later version may add fields after the flags.
    assert!(traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more").is_some());
    for invalid in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
    ] {
        assert_eq!(traceparent(invalid), None, "{invalid}");
    }
}

/// Headers with the caller's `traceparent`, trace flags `flags`.
fn from_caller(flags: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let traceparent = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
    headers.insert("traceparent", traceparent.parse().unwrap());
    headers
}

fn tracer() -> (Tracer, mpsc::Receiver<otlp::Span>) {
    let (spans, queue) = mpsc::channel(8);
    (Tracer { spans }, queue)
}

fn answered(status: u16) -> Answered<'static> {
    Answered {
        method: "GET",
        path: "/hello/world",
        route: Some("/hello/..."),
        component: Some("hello"),
        status,
    }
}

#[test]
fn a_request_with_traceparent_is_a_child_span_of_the_caller() {
    let (tracer, mut queue) = tracer();
    let headers = from_caller("01");
    let span = tracer.begin(&headers);
    let forwarded = span.traceparent();
    tracer.end(span, answered(200));
    let span = queue.try_recv().unwrap();
    // The guest is handed this span as its parent.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let own = hex::encode(&span.span_id);
    assert_eq!(forwarded, format!("00-{trace}-{own}-01"));
    assert_eq!(span.flags, 0x301, "sampled, with a remote parent");
    assert_eq!(hex::encode(&span.trace_id), trace);
    assert_eq!(hex::encode(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(span.span_id.len(), 8);
    assert_ne!(span.span_id, span.parent_span_id);
    assert_eq!(span.name, "GET /hello/...");
    assert_eq!(span.kind, 2);
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    assert_eq!(span.status.unwrap().code, 0);
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    };
    assert_eq!(
        attribute("http.response.status_code"),
        Some(otlp::Value::Int(200))
    );
    assert_eq!(
        attribute("spin.component"),
        Some(otlp::Value::String("hello".into()))
    );
}

#[test]
fn a_request_without_context_starts_a_trace_and_a_server_error_marks_the_span() {
    let (tracer, mut queue) = tracer();
    let span = tracer.begin(&HeaderMap::new());
    tracer.end(span, answered(500));
    let span = queue.try_recv().unwrap();
    assert_eq!(span.trace_id.len(), 16);
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.flags, 0x101, "sampled, a root span");
    assert_eq!(span.status.unwrap().code, 2);
}

#[test]
fn a_caller_that_does_not_sample_gets_no_span() {
    let (tracer, mut queue) = tracer();
    let headers = from_caller("00");
    let span = tracer.begin(&headers);
    tracer.end(span, answered(200));
    assert!(queue.try_recv().is_err());
}
