use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::{http_component, variables};

/// `/variables/NAME` answers the component variable NAME, or the error getting it.
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let name = req.path().rsplit('/').next().unwrap_or_default().to_owned();
    let body = match variables::get(&name) {
        Ok(value) => value,
        Err(err) => format!("error: {err:?}"),
    };
    Ok(Response::new(200, body))
}
