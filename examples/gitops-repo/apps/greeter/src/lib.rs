use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::{http_component, variables};

/// Greets with the `greeting` variable; says whether an API token is configured without showing it.
#[http_component]
fn handle(_req: Request) -> anyhow::Result<impl IntoResponse> {
    let greeting = variables::get("greeting")?;
    let token_set = variables::get("api_token").map(|t| !t.is_empty()).unwrap_or(false);
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(format!("{greeting}! (api token configured: {token_set})\n"))
        .build())
}
