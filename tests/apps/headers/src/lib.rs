use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

/// Echoes the request: method, path and query, body length, then every header, one per line.
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let mut lines = vec![
        format!("method: {:?}", req.method()),
        format!("uri: {}", req.uri()),
        format!("body-bytes: {}", req.body().len()),
    ];
    let mut headers: Vec<String> = req
        .headers()
        .map(|(name, value)| format!("{name}: {}", value.as_str().unwrap_or("<binary>")))
        .collect();
    headers.sort();
    lines.extend(headers);
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(lines.join("\n") + "\n")
        .build())
}
