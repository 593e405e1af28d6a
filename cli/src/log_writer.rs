//! spindle's own log lines, written to stderr in batches instead of one `write(2)` each: request
//! logs are a line per request, and on a busy server those system calls cost more than the lines
//! (about a tenth of the requests per second at concurrency 1). Pending lines are written every
//! 50 ms, whenever 64 KiB are pending, before spindle prints its own errors, on a panic, and when
//! it exits; only a process killed outright (SIGKILL) can lose its last 50 ms of lines.

use std::{
    io::{self, Write},
    sync::{Mutex, MutexGuard, Once},
    time::Duration,
};

const FLUSH_EVERY: Duration = Duration::from_millis(50);
const FLUSH_AT: usize = 64 << 10;

static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static FLUSHER: Once = Once::new();

fn pending() -> MutexGuard<'static, Vec<u8>> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes out the lines still pending; the lock is held, so lines keep their order.
fn write_out(pending: &mut Vec<u8>) {
    if !pending.is_empty() {
        let _ = io::stderr().lock().write_all(pending);
        pending.clear();
    }
}

/// Writes the pending lines now.
pub fn flush() {
    write_out(&mut pending());
}

/// Batched lines to stderr, as a `tracing_subscriber` writer.
#[derive(Debug, Clone, Copy)]
pub struct Batched;

impl Batched {
    /// The writer; the first one starts the thread that writes pending lines out, and a panic
    /// hook that writes them before the panic's message.
    pub fn new() -> Batched {
        FLUSHER.call_once(|| {
            std::thread::Builder::new()
                .name("log-flush".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(FLUSH_EVERY);
                        flush();
                    }
                })
                .expect("a thread for the logs");
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                flush();
                default(info);
            }));
        });
        Batched
    }
}

impl Write for Batched {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut pending = pending();
        pending.extend_from_slice(bytes);
        if pending.len() >= FLUSH_AT {
            write_out(&mut pending);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Batched {
    type Writer = Batched;

    fn make_writer(&'a self) -> Batched {
        *self
    }
}
