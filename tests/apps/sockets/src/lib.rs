use std::io::{Read, Write};

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

/// `GET /sockets?ADDRESS`: connects a TCP socket (`wasi:sockets`) to ADDRESS, sends `ping`, and
/// answers `echo: REPLY`, or `error: KIND` when the connect or the exchange fails.
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let address = req.query().to_owned();
    let answer = match exchange(&address) {
        Ok(reply) => format!("echo: {reply}"),
        Err(err) => format!("error: {:?}", err.kind()),
    };
    Ok(Response::new(200, answer))
}

fn exchange(address: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.write_all(b"ping")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}
