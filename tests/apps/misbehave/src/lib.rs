use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use std::sync::atomic::{AtomicU8, Ordering};

/// 3 MiB of zeroed statics: one end within the first 2 MiB of linear memory, the other past it.
static MARKS: [AtomicU8; 3 << 20] = [const { AtomicU8::new(0) }; 3 << 20];

/// Guests that go wrong: `/misbehave/trap` panics, `/misbehave/loop` never returns,
/// `/misbehave/alloc` allocates without bound, `/misbehave/sleep` waits ten minutes on a host
/// clock, `/misbehave/shout` writes 4 MiB to stdout without a newline, `/misbehave/remember`
/// says what an earlier request left in its memory (below and past the first 2 MiB) and leaves
/// a mark there; anything else answers normally.
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
        "/misbehave/sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(600));
            Ok(Response::new(200, "woke up"))
        }
        "/misbehave/shout" => {
            use std::io::Write;
            let chunk = [b'a'; 64 << 10];
            let mut out = std::io::stdout();
            for _ in 0..64 {
                out.write_all(&chunk)?;
            }
            out.flush()?;
            Ok(Response::new(200, "shouted"))
        }
        "/misbehave/remember" => {
            let (first, last) = (&MARKS[0], &MARKS[MARKS.len() - 1]);
            let seen = format!(
                "first {} last {}",
                first.load(Ordering::Relaxed),
                last.load(Ordering::Relaxed)
            );
            first.store(7, Ordering::Relaxed);
            last.store(7, Ordering::Relaxed);
            Ok(Response::new(200, seen))
        }
        _ => Ok(Response::new(200, "fine")),
    }
}
