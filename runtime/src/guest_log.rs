//! Guests' stdout and stderr, line by line, prefixed with the component's id, onto spindle's own
//! stdout and stderr (which a container runtime collects: `kubectl logs` shows them).

use std::{
    io::Write as _,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Where a component's output goes.
#[derive(Clone)]
pub struct GuestLog {
    component: Arc<str>,
    stderr: bool,
}

impl GuestLog {
    pub fn stdout(component: &str) -> Self {
        GuestLog {
            component: component.into(),
            stderr: false,
        }
    }

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
    fn emit(&mut self, line: &[u8]) {
        let text = format!(
            "[{}] {}\n",
            self.log.component,
            String::from_utf8_lossy(line)
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
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.emit(&line[..line.len() - 1]);
        }
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit(&rest);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit(&rest);
        }
    }
}
