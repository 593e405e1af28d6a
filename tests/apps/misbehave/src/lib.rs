use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

/// Guests that go wrong: `/misbehave/trap` panics, `/misbehave/loop` never returns,
/// `/misbehave/alloc` allocates without bound; anything else answers normally.
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    match req.path() {
        "/misbehave/trap" => panic!("this guest traps on purpose"),
        "/misbehave/loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "/misbehave/alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        _ => Ok(Response::new(200, "fine")),
    }
}
