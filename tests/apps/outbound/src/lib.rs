use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;

/// Fetches the URL given as the query string and answers its status and body, or the error.
#[http_component]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let url = req.query().to_owned();
    let outgoing = Request::builder().method(Method::Get).uri(url).build();
    let body = match spin_sdk::http::send::<_, Response>(outgoing).await {
        Ok(response) => format!(
            "status {}: {}",
            response.status(),
            String::from_utf8_lossy(response.body())
        ),
        Err(err) => format!("error: {err}"),
    };
    Ok(Response::new(200, body))
}
