use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

/// Serves the file at the request's path-info from the component's read-only files, and says
/// whether it may write there.
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let info = req
        .header("spin-path-info")
        .and_then(|value| value.as_str())
        .unwrap_or("/")
        .to_owned();
    if info == "/write" {
        let outcome = match std::fs::write("/written.txt", "x") {
            Ok(()) => "written".to_owned(),
            Err(err) => format!("refused: {err}"),
        };
        return Ok(Response::new(200, outcome));
    }
    match std::fs::read(&info) {
        Ok(bytes) => Ok(Response::new(200, bytes)),
        Err(err) => Ok(Response::new(404, format!("{info}: {err}"))),
    }
}
