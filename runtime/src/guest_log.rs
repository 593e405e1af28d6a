//! Guests' stdout and stderr, line by line, prefixed with the component's id, onto spindle's own
//! stdout and stderr (which a container runtime collects: `kubectl logs` shows them). A line
//! longer than [`MAX_LINE`] is cut there (and marked), so a guest writing without newlines cannot
//! grow the host's memory.

use std::{
    io::Write as _,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// The longest line kept whole, in bytes.
const MAX_LINE: usize = 16 << 10;

/// Where a component's output goes.
#[derive(Clone)]
pub struct GuestLog {
    component: Arc<str>,
    stderr: bool,
}

impl GuestLog {
    /// The component's stdout, onto the process's stdout.
    pub fn stdout(component: &str) -> Self {
        GuestLog {
            component: component.into(),
            stderr: false,
        }
    }

    /// The component's stderr, onto the process's stderr.
    pub fn stderr(component: &str) -> Self {
        GuestLog {
            component: component.into(),
            stderr: true,
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(Lines {
            log: self.clone(),
            partial: Vec::new(),
        })
    }
}

/// Collects bytes into lines and writes each complete one with the prefix.
struct Lines {
    log: GuestLog,
    partial: Vec<u8>,
}

impl Lines {
    /// Adds bytes without a newline to the line being collected, emitting it whenever it reaches
    /// [`MAX_LINE`].
    fn collect(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.partial.len();
            let (now, later) = bytes.split_at(bytes.len().min(room));
            self.partial.extend_from_slice(now);
            bytes = later;
            if self.partial.len() == MAX_LINE {
                let line = std::mem::take(&mut self.partial);
                self.emit(&line, true);
            }
        }
    }

    fn emit(&mut self, line: &[u8], cut: bool) {
        let text = format!(
            "[{}] {}{}\n",
            self.log.component,
            String::from_utf8_lossy(line),
            if cut { " [line cut at 16 KiB]" } else { "" }
        );
        // Writes to the process's own streams are short and not worth a thread.
        let _ = if self.log.stderr {
            std::io::stderr().lock().write_all(text.as_bytes())
        } else {
            std::io::stdout().lock().write_all(text.as_bytes())
        };
    }
}

impl AsyncWrite for Lines {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        // Only the new bytes are scanned for newlines.
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.collect(&rest[..end]);
            let line = std::mem::take(&mut self.partial);
            self.emit(&line, false);
            rest = &rest[end + 1..];
        }
        self.collect(rest);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit(&rest, false);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit(&rest, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_without_newlines_is_cut_into_bounded_lines() {
        let mut lines = Lines {
            log: GuestLog::stderr("flood"),
            partial: Vec::new(),
        };
        let chunk = vec![b'x'; 4096];
        for _ in 0..10 {
            lines.collect(&chunk);
            assert!(lines.partial.len() < MAX_LINE);
        }
        lines.collect(b"tail");
        assert_eq!(lines.partial.len(), (10 * 4096 + 4) % MAX_LINE);
    }
}
