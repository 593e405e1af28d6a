use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

/// Answers every path with a greeting and the path it was asked for.
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(format!("Hello from spindle! You asked for {}\n", req.path()))
        .build())
}
