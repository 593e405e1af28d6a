//! `spindle run` serving real Spin SDK guests (built from `tests/apps`) over real HTTP on loopback.

use std::{
    io::{Read, Write},
    net::TcpListener,
};

use crate::support::{
    Served, http,
    otlp::{Collector, hex},
    required_env, spindle, test_apps, unique,
};

pub(crate) fn serve(extra: &[&str]) -> (Served, tempfile::TempDir) {
    serve_with_env(extra, &[])
}

fn serve_with_env(extra: &[&str], env: &[(&str, &str)]) -> (Served, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("temp dir");
    let apps = test_apps().to_str().expect("utf-8 path").to_owned();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let mut args = vec![
        apps.as_str(),
        "--state-dir",
        state_dir.as_str(),
        "--request-timeout",
        "2",
    ];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(("SPIN_VARIABLE_SECRET_TOKEN", "s3cret"));
    let served = Served::start(&args, &env);
    (served, state)
}

/// Fails unless each of `expected` is a whole line of `answer`.
fn assert_has_lines(answer: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            answer.lines().any(|l| l == *line),
            "missing `{line}` in:\n{answer}"
        );
    }
}

fn header<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

#[test]
fn routes_and_spin_headers_follow_spin() {
    let (served, _state) = serve(&[]);
    let address = &served.address;

    let echoed = http(address, "GET", "/headers/a/b?x=y", "");
    assert_eq!(echoed.status, 200, "{echoed:?}");
    let body = &echoed.body;
    assert_eq!(
        header(body, "spin-full-url"),
        Some(format!("http://{address}/headers/a/b?x=y").as_str())
    );
    assert_eq!(header(body, "spin-path-info"), Some("/a/b"));
    assert_eq!(header(body, "spin-matched-route"), Some("/headers/..."));
    assert_eq!(
        header(body, "spin-raw-component-route"),
        Some("/headers/...")
    );
    assert_eq!(header(body, "spin-component-route"), Some("/headers"));
    assert_eq!(header(body, "spin-base-path"), Some("/"));
    assert!(header(body, "spin-client-addr").is_some_and(|a| a.starts_with("127.0.0.1:")));

    let param = http(address, "GET", "/users/42", "");
    assert_eq!(
        header(&param.body, "spin-path-match-user-id"),
        Some("42"),
        "{}",
        param.body
    );
    assert_eq!(
        header(&param.body, "spin-matched-route"),
        Some("/users/:user_id")
    );

    let posted = http(address, "POST", "/headers/upload", "0123456789");
    assert_eq!(
        header(&posted.body, "body-bytes"),
        Some("10"),
        "{}",
        posted.body
    );

    assert_eq!(http(address, "GET", "/nothing-here", "").status, 404);
    assert_eq!(
        http(address, "GET", "/.well-known/spin/health", "").status,
        200
    );
    // A client cannot pose as the router.
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /headers/x HTTP/1.1\r\nHost: h\r\nspin-path-info: /forged\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.contains("spin-path-info: /x\n"), "{raw}");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let (served, _state) = serve(&[]);
    let mut stream = std::net::TcpStream::connect(&served.address).unwrap();
    for _ in 0..3 {
        write!(stream, "GET /misbehave/ok HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        // The head and the chunked body may come in separate segments: read to the last chunk.
        let mut text = String::new();
        while !text.ends_with("\r\n0\r\n\r\n") {
            let mut buffer = [0u8; 1024];
            let n = stream.read(&mut buffer).unwrap();
            assert!(n > 0, "the connection closed: {text}");
            text.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("fine"), "{text}");
    }
}

#[test]
fn key_value_counts_and_survives_a_restart_and_refuses_undeclared_stores() {
    let state = tempfile::tempdir().unwrap();
    let apps = test_apps().to_str().unwrap().to_owned();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let args = [apps.as_str(), "--state-dir", state_dir.as_str()];
    let env = [("SPIN_VARIABLE_SECRET_TOKEN", "t")];
    let served = Served::start(&args, &env);
    assert_eq!(
        http(&served.address, "GET", "/kv/count", "").body,
        "count: 1"
    );
    assert_eq!(
        http(&served.address, "GET", "/kv/count", "").body,
        "count: 2"
    );
    let denied = http(&served.address, "GET", "/kv/open/other", "");
    assert!(denied.body.contains("AccessDenied"), "{}", denied.body);
    assert!(served.stop().success());

    let again = Served::start(&args, &env);
    assert_eq!(
        http(&again.address, "GET", "/kv/count", "").body,
        "count: 3"
    );
}

#[test]
fn variables_come_from_templates_defaults_and_the_environment() {
    let (served, _state) = serve(&["--variable", "greeting=Howdy"]);
    assert_eq!(
        http(&served.address, "GET", "/variables/message", "").body,
        "Howdy, world"
    );
    assert_eq!(
        http(&served.address, "GET", "/variables/token", "").body,
        "s3cret"
    );
    let undefined = http(&served.address, "GET", "/variables/nope", "");
    assert!(undefined.body.contains("Undefined"), "{}", undefined.body);
}

#[test]
fn a_missing_required_variable_stops_the_start() {
    let out = spindle(&[
        "run",
        test_apps().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--ephemeral",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.assert_stderr_contains(
        "required variable `secret_token` not set (set SPIN_VARIABLE_SECRET_TOKEN)",
    );
}

#[test]
fn sqlite_databases_keep_rows() {
    let (served, _state) = serve(&[]);
    http(&served.address, "GET", "/sqlite?first", "");
    let listed = http(&served.address, "GET", "/sqlite?second", "");
    assert_eq!(listed.body, "1 first\n2 second", "{listed:?}");
}

#[test]
fn outbound_http_goes_only_where_the_manifest_allows() {
    // The manifest allows `http://{{ upstream_host }}:*`, with `127.0.0.1` as the default.
    let port = http_upstream();
    let (served, _state) = serve(&[]);
    let allowed = http(
        &served.address,
        "GET",
        &format!("/outbound?http://127.0.0.1:{port}/"),
        "",
    );
    assert_eq!(allowed.body, "status 200: upstream", "{allowed:?}");
    let denied = http(
        &served.address,
        "GET",
        &format!("/outbound?http://localhost:{port}/"),
        "",
    );
    assert!(denied.body.contains("HttpRequestDenied"), "{denied:?}");
}

#[test]
fn components_reach_their_own_app_only_as_the_manifest_allows() {
    let (served, _state) = serve(&[]);
    let outbound = |url: &str| http(&served.address, "GET", &format!("/outbound?{url}"), "").body;

    // `http://self` allows requests by route, through the app's router.
    let by_route = outbound("http://self.alt/users/42");
    assert!(by_route.starts_with("status 200: "), "{by_route}");
    assert!(
        by_route.contains("spin-path-match-user-id: 42"),
        "{by_route}"
    );
    assert!(
        by_route.contains("spin-matched-route: /users/:user_id"),
        "{by_route}"
    );

    // Local service chaining reaches a private component directly ...
    let chained = outbound("http://hidden.spin.internal/private/path");
    assert!(chained.starts_with("status 200: "), "{chained}");
    assert!(
        chained.contains("uri: http://hidden.spin.internal/private/path"),
        "{chained}"
    );
    // ... but only a component the list names.
    let other = outbound("http://kv.spin.internal/kv/x");
    assert!(other.contains("HttpRequestDenied"), "{other}");
    // No route, no component: 404 from the app, not a network request.
    assert!(outbound("http://self.alt/nowhere").starts_with("status 404"));
    // A relative URL goes through the app's own routes too, as in Spin.
    let relative = outbound("/users/42");
    assert!(relative.starts_with("status 200: "), "{relative}");
    assert!(
        relative.contains("spin-path-match-user-id: 42"),
        "{relative}"
    );
}

#[test]
fn files_are_mounted_read_only() {
    let (served, _state) = serve(&[]);
    let page = http(&served.address, "GET", "/static/index.html", "");
    assert_eq!(
        (page.status, page.body.as_str()),
        (200, "<h1>static</h1>\n")
    );
    assert_eq!(
        http(&served.address, "GET", "/static/css/site.css", "").body,
        "body{}\n"
    );
    let write = http(&served.address, "GET", "/static/write", "");
    assert!(write.body.starts_with("refused"), "{write:?}");
}

#[test]
fn requests_are_logged_and_sigterm_stops_cleanly() {
    let (served, _state) = serve(&[]);
    http(&served.address, "GET", "/misbehave/ok", "");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let log = served.stderr();
    assert!(
        log.contains("path=/misbehave/ok") && log.contains("status=200"),
        "{log}"
    );
    assert!(served.stop().success());
}

#[test]
fn request_spans_are_exported_over_otlp_when_the_environment_asks() {
    let collector = Collector::start();
    let (served, _state) = serve_with_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    );
    let answered = http(&served.address, "GET", "/headers/a", "");
    assert_eq!(answered.status, 200);
    let forwarded = header(&answered.body, "traceparent").expect("the guest gets a traceparent");
    // Probes of Spin's well-known paths are not traced.
    assert_eq!(
        http(&served.address, "GET", "/.well-known/spin/health", "").status,
        200
    );
    assert!(served.stop().success());

    let spans = collector.spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0].span;
    assert_eq!(
        spans[0].service, "spindle-test-apps",
        "the app's name by default"
    );
    assert_eq!(span.name, "GET /headers/...");
    assert!(span.parent_span_id.is_empty(), "a root span");
    assert_eq!(
        forwarded,
        format!("00-{}-{}-01", hex(&span.trace_id), hex(&span.span_id))
    );
}

#[test]
fn file_mounts_cannot_leave_the_app_in_run_or_push() {
    let outside = tempfile::tempdir().unwrap();
    let owned = outside.path().join("owned.txt");
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let attack = |files: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.path().join("x.txt"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("link"))
            .unwrap();
        std::fs::write(
            dir.path().join("spin.toml"),
            format!(
                "spin_manifest_version = 2\n[application]\nname = \"x\"\n\n[[trigger.http]]\n\
                 route = \"/\"\ncomponent = \"c\"\n\n[component.c]\nsource = \"app.wasm\"\n\
                 files = [{files}]\n"
            ),
        )
        .unwrap();
        dir
    };
    let traversal = attack(&format!(
        "{{ source = \"x.txt\", destination = \"/../../../../../..{}\" }}",
        owned.display()
    ));
    let symlink = attack("{ source = \"link\", destination = \"/secret.txt\" }");
    for (dir, error) in [
        (&traversal, "must not contain `..`"),
        (&symlink, "leads outside the app's folder"),
    ] {
        let app = dir.path().to_str().unwrap();
        let out = spindle(&["run", app]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        out.assert_stderr_contains(error);
        let out = spindle(&["push", app, "127.0.0.1:1/never/pushed:1"]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        out.assert_stderr_contains(error);
    }
    assert!(!owned.exists(), "a manifest wrote outside its app");
}

#[test]
fn private_components_have_no_route_and_bad_manifests_name_their_line() {
    let (served, _state) = serve(&[]);
    assert_eq!(http(&served.address, "GET", "/hidden", "").status, 404);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"missing\"\n",
    )
    .unwrap();
    let out = spindle(&["run", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 1);
    out.assert_stderr_contains("spin.toml:7:13: trigger refers to component `missing`");
}

/// The test servers' Redis and PostgreSQL, allowed through the manifest's templated
/// `allowed_outbound_hosts`.
fn serve_with_services() -> (Served, tempfile::TempDir) {
    let redis = required_env("SPINDLE_TEST_REDIS");
    let postgres = required_env("SPINDLE_TEST_POSTGRES");
    serve_with_env(
        &[],
        &[
            ("SPIN_VARIABLE_REDIS_HOST", redis.as_str()),
            ("SPIN_VARIABLE_POSTGRES_HOST", postgres.as_str()),
        ],
    )
}

#[test]
fn outbound_redis_talks_to_a_real_server() {
    let (served, _state) = serve_with_services();
    let answer = http(&served.address, "GET", "/services/redis", "");
    assert_eq!(answer.status, 200, "{answer:?}");
    let expected = [
        "set: Ok(())",
        "get: Ok(Some(\"value\"))",
        "incr: Ok(1)",
        "incr: Ok(2)",
        "smembers: Ok([\"a\", \"b\"])",
        "srem: Ok(1)",
        "publish: Ok(())",
        "execute: Ok([RedisResult::Status(\"PONG\")])",
    ];
    assert_has_lines(&answer.body, &expected);
}

/// A result over the cap on what a database query hands a guest fails its query, and the
/// connection answers the next one.
const CAPPED_RESULT: [&str; 2] = [
    "oversized: Err(Error::Other(\"the result is larger than the 16777216 bytes spindle hands \
     to a guest\"))",
    "after: Ok(1)",
];

#[test]
fn outbound_postgres_talks_to_a_real_server_through_both_interfaces() {
    let (served, _state) = serve_with_services();
    let pg4 = http(&served.address, "GET", "/services/pg4", "").body;
    assert_has_lines(
        &pg4,
        &[
            "insert: Ok(1)",
            "columns: id:DbDataType::Int32 name:DbDataType::Str good:DbDataType::Boolean weight:DbDataType::Floating64 born:DbDataType::Date tags:DbDataType::ArrayStr meta:DbDataType::Jsonb note:DbDataType::Str",
            "row: [DbValue::Int32(1), DbValue::Str(\"Rex\"), DbValue::Boolean(true), DbValue::Floating64(12.5), DbValue::Date((2020, 2, 29)), DbValue::ArrayStr([Some(\"loud\"), None]), DbValue::Jsonb([123, 34, 116, 111, 121, 34, 58, 34, 98, 97, 108, 108, 34, 125]), DbValue::DbNull]",
        ],
    );
    let bad = pg4.lines().find(|l| l.starts_with("bad-sql: ")).unwrap();
    assert!(
        bad.contains("code: \"42P01\"")
            && bad.contains("relation \\\"no_such_table\\\" does not exist"),
        "{bad}"
    );
    assert_has_lines(&pg4, &CAPPED_RESULT);

    let pg2 = http(&served.address, "GET", "/services/pg2", "").body;
    assert!(
        pg2.lines()
            .any(|l| l == "query: Ok([[DbValue::Int64(7), DbValue::Str(\"Tom\")]])"),
        "{pg2}"
    );
}

/// `mosquitto_sub` on `topic` of the broker at `address` until `count` messages (or 20 s), one
/// `TOPIC PAYLOAD` line each; started and given a moment to subscribe.
fn subscriber(address: &str, topic: &str, count: usize, auth: &[&str]) -> std::process::Child {
    let (host, port) = address.rsplit_once(':').unwrap();
    let child = std::process::Command::new("mosquitto_sub")
        .args(["-h", host, "-p", port, "-t", topic, "-q", "2", "-v"])
        .args(["-C", &count.to_string(), "-W", "20"])
        .args(auth)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs");
    std::thread::sleep(std::time::Duration::from_millis(500));
    child
}

#[test]
fn outbound_mqtt_publishes_at_each_qos_to_a_real_subscriber() {
    let mqtt = required_env("SPINDLE_TEST_MQTT");
    let (served, _state) = serve_with_env(&[], &[("SPIN_VARIABLE_MQTT_HOST", mqtt.as_str())]);
    let topic = unique("outbound");
    let subscriber = subscriber(&mqtt, &topic, 3, &[]);
    let answer = http(
        &served.address,
        "GET",
        &format!("/services/mqtt?{topic}"),
        "",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    for n in 0..3 {
        assert!(
            answer.body.contains(&format!("publish {n}: Ok(())")),
            "{}",
            answer.body
        );
    }
    assert!(
        answer.body.contains(
            "publish oversized: Err(Error::Other(\"the payload is 1048577 bytes, more than the \
             1048576 spindle sends\"))"
        ),
        "{}",
        answer.body
    );
    let received = subscriber.wait_with_output().unwrap();
    let received = String::from_utf8_lossy(&received.stdout);
    assert_eq!(
        received.lines().collect::<Vec<_>>(),
        [
            format!("{topic} message 0 at Qos::AtMostOnce"),
            format!("{topic} message 1 at Qos::AtLeastOnce"),
            format!("{topic} message 2 at Qos::ExactlyOnce"),
        ],
        "{received}"
    );
}

#[test]
fn outbound_mqtt_gives_the_broker_its_credentials_and_reports_a_refusal() {
    let mqtt = required_env("SPINDLE_TEST_MQTT_AUTH");
    let topic = unique("outbound");
    let (served, _state) = serve_with_env(
        &[],
        &[
            ("SPIN_VARIABLE_MQTT_HOST", mqtt.as_str()),
            ("SPIN_VARIABLE_MQTT_USER", "spindle"),
            ("SPIN_VARIABLE_MQTT_PASSWORD", "s3cret"),
        ],
    );
    let subscriber = subscriber(&mqtt, &topic, 1, &["-u", "spindle", "-P", "s3cret"]);
    let answer = http(
        &served.address,
        "GET",
        &format!("/services/mqtt?{topic}"),
        "",
    );
    assert!(answer.body.contains("publish 0: Ok(())"), "{}", answer.body);
    let received = subscriber.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&received.stdout).trim(),
        format!("{topic} message 0 at Qos::AtMostOnce")
    );

    let (served, _state) = serve_with_env(
        &[],
        &[
            ("SPIN_VARIABLE_MQTT_HOST", mqtt.as_str()),
            ("SPIN_VARIABLE_MQTT_USER", "spindle"),
            ("SPIN_VARIABLE_MQTT_PASSWORD", "wrong-password"),
        ],
    );
    let answer = http(
        &served.address,
        "GET",
        &format!("/services/mqtt?{topic}"),
        "",
    );
    assert!(
        answer.body.contains(
            "publish 0: Err(Error::ConnectionFailed(\"Connection refused, return code: `NotAuthorized`\"))"
        ),
        "{}",
        answer.body
    );
    assert!(
        !served.stderr().contains("wrong-password"),
        "{}",
        served.stderr()
    );
}

#[test]
fn outbound_mysql_round_trips_rows_with_a_real_mariadb() {
    let mysql = required_env("SPINDLE_TEST_MYSQL");
    let (served, _state) = serve_with_env(&[], &[("SPIN_VARIABLE_MYSQL_HOST", mysql.as_str())]);
    let answer = http(&served.address, "GET", "/services/mysql", "").body;
    assert_has_lines(
        &answer,
        &[
            "drop: Ok(())",
            "create: Ok(())",
            "insert: Ok(())",
            "columns: id:DbDataType::Int32 small:DbDataType::Int8 big:DbDataType::Uint64 \
         name:DbDataType::Str weight:DbDataType::Floating64 ratio:DbDataType::Floating32 \
         price:DbDataType::Str photo:DbDataType::Binary born:DbDataType::Other note:DbDataType::Str",
            "row: [DbValue::Int32(1), DbValue::Int8(-5), DbValue::Uint64(18446744073709551615), \
         DbValue::Str(\"Rex\"), DbValue::Floating64(12.5), DbValue::Floating32(0.25), \
         DbValue::Str(\"19.99\"), DbValue::Binary([0, 1, 255]), DbValue::Unsupported, DbValue::DbNull]",
        ],
    );
    let bad = answer.lines().find(|l| l.starts_with("bad-sql: ")).unwrap();
    assert!(
        bad.starts_with("bad-sql: Err(Error::QueryFailed(") && bad.contains("no_such_table"),
        "{bad}"
    );
    assert_has_lines(&answer, &CAPPED_RESULT);
    assert!(!served.stderr().contains("s3cret"), "{}", served.stderr());
}

#[test]
fn postgres_4_types_round_trip_as_parameters_and_columns() {
    let (served, _state) = serve_with_services();
    let answer = http(&served.address, "GET", "/services/pg4-types", "").body;
    assert_has_lines(
        &answer,
        &[
            "create: Ok(0)",
            "insert: Ok(1)",
            "columns: price:DbDataType::Decimal tiny:DbDataType::Decimal born:DbDataType::Date \
         alarm:DbDataType::Time seen:DbDataType::Datetime stamped:DbDataType::Timestamp \
         wait:DbDataType::Interval ages:DbDataType::RangeInt32 ids:DbDataType::RangeInt64 \
         band:DbDataType::RangeDecimal prices:DbDataType::ArrayDecimal",
            "value: DbValue::Decimal(\"-1234567890.123456789\")",
            "value: DbValue::Decimal(\"0.0005\")",
            "value: DbValue::Date((2020, 2, 29))",
            "value: DbValue::Time((13, 5, 9, 250000000))",
            "value: DbValue::Datetime((1999, 12, 31, 23, 59, 58, 0))",
            "value: DbValue::Timestamp(1700000000)",
            "value: DbValue::Interval(Interval { micros: 1500000, days: 2, months: 14 })",
            // PostgreSQL keeps integer ranges as [lower, upper).
            "value: DbValue::RangeInt32((Some((1, RangeBoundKind::Inclusive)), Some((10, RangeBoundKind::Exclusive))))",
            "value: DbValue::RangeInt64((Some((6, RangeBoundKind::Inclusive)), None))",
            "value: DbValue::RangeDecimal((Some((\"1.5\", RangeBoundKind::Inclusive)), Some((\"2.25\", RangeBoundKind::Inclusive))))",
            "value: DbValue::ArrayDecimal([Some(\"1.10\"), None, Some(\"-3\")])",
        ],
    );
    let bad = answer
        .lines()
        .find(|l| l.starts_with("bad decimal: "))
        .unwrap();
    assert!(
        bad.contains("BadParameter(\"`12,5` is not a decimal number\")"),
        "{bad}"
    );
    assert!(
        answer.lines().any(|l| l.starts_with("wrong type: Err(")
            && l.contains("a date value cannot be a numeric parameter")),
        "{answer}"
    );
}

#[test]
fn postgres_3_is_served_as_4_0_0s_subset() {
    let (served, _state) = serve_with_services();
    let answer = http(&served.address, "GET", "/services/pg3", "").body;
    assert_has_lines(
        &answer,
        &[
            "create: Ok(0)",
            "insert: Ok(1)",
            "columns: name:DbDataType::Str born:DbDataType::Date seen:DbDataType::Timestamp price:DbDataType::Other",
            "row: [DbValue::Str(\"Rex\"), DbValue::Date((2020, 2, 29)), DbValue::Timestamp(1700000000), DbValue::Unsupported]",
        ],
    );
    let bad = answer.lines().find(|l| l.starts_with("bad-sql: ")).unwrap();
    assert!(
        bad.starts_with("bad-sql: Err(Error::QueryFailed(") && bad.contains("no_such_table"),
        "{bad}"
    );
    assert_has_lines(&answer, &CAPPED_RESULT);
}

#[test]
fn outbound_services_the_manifest_does_not_allow_are_refused() {
    let (served, _state) = serve_with_services();
    let denied = http(&served.address, "GET", "/services/denied", "").body;
    assert!(
        denied.contains("redis: Some(Error::InvalidAddress)"),
        "{denied}"
    );
    assert!(
        denied.contains(
            "pg4: Some(Error::ConnectionFailed(\"address host=127.0.0.1 port=1 user=x is not permitted\"))"
        ),
        "{denied}"
    );
    let hostaddr = denied
        .lines()
        .find(|line| line.starts_with("pg4 hostaddr:"))
        .unwrap_or_default();
    assert!(
        hostaddr.contains("hostaddr=10.255.255.1 is not permitted"),
        "{denied}"
    );
    // MQTT and MySQL are refused by address first, as Spin does, credentials masked.
    assert!(
        denied.contains(
            "mqtt: Some(Error::ConnectionFailed(\"address mqtt://127.0.0.1:1 is not permitted\"))"
        ),
        "{denied}"
    );
    assert!(
        denied.contains("mysql: Some(Error::ConnectionFailed(\"address mysql://root:***@127.0.0.1:1/db is not permitted\"))"),
        "{denied}"
    );
    assert!(
        denied.contains("mysql socket: Some(Error::ConnectionFailed(\"address mysql://spindle:***@127.0.0.1:3306/spindle?socket=/run/mysqld/mysqld.sock: Unix sockets are not allowed\"))"),
        "{denied}"
    );
    assert!(!denied.contains("hunter2"), "{denied}");
}

/// An HTTP server on loopback that answers every request `200 upstream`; its port.
pub(crate) fn http_upstream() -> u16 {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in upstream.incoming().flatten() {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nupstream",
            );
        }
    });
    port
}

/// A TCP server on loopback that answers each connection with what it read; its port.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut got = Vec::new();
            let _ = stream.read_to_end(&mut got);
            let _ = stream.write_all(&got);
        }
    });
    port
}

#[test]
fn tcp_sockets_go_only_where_the_manifest_allows() {
    let (port, other) = (echo_server(), echo_server());
    for (allowed, target, expected) in [
        (format!("127.0.0.1:{port}"), port, "echo: ping"),
        (
            format!("127.0.0.1:{port}"),
            other,
            "error: PermissionDenied",
        ),
        (format!("127.0.0.0/8:{port}"), port, "echo: ping"),
        (
            format!("10.0.0.0/8:{port}"),
            port,
            "error: PermissionDenied",
        ),
        (format!("localhost:{port}"), port, "echo: ping"),
        ("127.0.0.1:*".to_owned(), other, "echo: ping"),
    ] {
        let (served, _state) = serve_with_env(&[], &[("SPIN_VARIABLE_TCP_ALLOWED", &allowed)]);
        let answer = http(
            &served.address,
            "GET",
            &format!("/sockets?127.0.0.1:{target}"),
            "",
        );
        assert_eq!(answer.body, expected, "tcp://{allowed} to port {target}");
    }
}

#[test]
fn spin_3_wasi_keyvalue_and_config_share_the_stores_and_variables_of_spin_2() {
    let (served, _state) = serve(&[]);
    let get = |path: &str| {
        let answer = http(&served.address, "GET", path, "");
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        answer.body.trim().to_owned()
    };
    // Written through fermyon:spin/key-value, read through wasi:keyvalue, and back.
    assert_eq!(get("/kv/count"), "count: 1");
    assert_eq!(get("/spin3/get/count"), "Ok(Some(\"1\"))");
    assert_eq!(get("/spin3/set/count?41"), "Ok(())");
    assert_eq!(get("/kv/count"), "count: 42");

    assert_eq!(get("/spin3/increment/hits?5"), "Ok(5)");
    assert_eq!(get("/spin3/increment/hits?-2"), "Ok(3)");
    // A value that is not an integer is refused, not overwritten.
    assert!(get("/spin3/increment/count?1").starts_with("Err(Error::Other("));
    assert_eq!(
        get("/spin3/cas/flag?on"),
        "swap: Ok(()); stale swap: CasFailed"
    );
    assert_eq!(get("/spin3/get/flag"), "Ok(Some(\"on\"))");
    assert_eq!(
        get("/spin3/batch"),
        "set: Ok(()); get: Ok([(\"b1\", Some([111, 110, 101])), (\"b2\", Some([116, 119, 111])), \
         (\"b3\", None)]); delete: Ok(()); keys: Ok([\"b2\", \"count\", \"flag\", \"hits\"])"
    );
    // A store the component did not declare.
    assert_eq!(get("/spin3/open/other"), "Err(Error::AccessDenied)");

    // wasi:config reads the component's variables.
    assert_eq!(
        get("/spin3/config/greeting"),
        "Ok(Some(\"Hello from wasi:config\"))"
    );
    assert_eq!(get("/spin3/config/nothing"), "Ok(None)");

    // spin:sqlite@3.0.0, with what the last statement did.
    assert_eq!(
        get("/spin3/sqlite"),
        "create: Ok(()); insert: Ok(()); changes: 2; last-insert-rowid: 2; select: \
         Ok(([\"name\", \"age\"], [[Value::Text(\"Rex\"), Value::Integer(3)], \
         [Value::Text(\"Tom\"), Value::Null]])); undeclared: Err(Error::AccessDenied)"
    );
}
