//! Guest stdout and stderr: forwarded line by line to `tracing`, suppressed
//! while an orchestration replays, with the tail of stderr kept so a trap can
//! be reported with the guest's last words (a Rust panic message, say).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A partial line longer than this is cut, so a guest cannot grow host memory.
const MAX_LINE: usize = 16 * 1024;
/// Lines of stderr kept for error reports.
const TAIL_LINES: usize = 16;

/// Which standard stream a [`GuestOutput`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
    stderr_tail: VecDeque<String>,
}

/// Shared sink for one guest instance's stdout and stderr.
#[derive(Clone)]
pub(crate) struct OutputSink {
    label: Arc<str>,
    replaying: Arc<AtomicBool>,
    stdout: Arc<Mutex<Lines>>,
    stderr: Arc<Mutex<Lines>>,
}

impl OutputSink {
    /// A sink whose lines are tagged with `label` (the instance id or activity
    /// name) and dropped while `replaying` is set.
    pub(crate) fn new(label: &str, replaying: Arc<AtomicBool>) -> Self {
        Self {
            label: label.into(),
            replaying,
            stdout: Arc::default(),
            stderr: Arc::default(),
        }
    }

    /// The stream the guest writes `stream` to.
    pub(crate) fn stream(&self, stream: Stream) -> GuestOutput {
        GuestOutput {
            sink: self.clone(),
            stream,
        }
    }

    /// The last lines the guest wrote to stderr, partial line included.
    pub(crate) fn stderr_tail(&self) -> String {
        let Ok(lines) = self.stderr.lock() else {
            return String::new();
        };
        let mut out: Vec<String> = lines.stderr_tail.iter().cloned().collect();
        if !lines.partial.is_empty() {
            out.push(String::from_utf8_lossy(&lines.partial).into_owned());
        }
        out.join("\n")
    }

    fn write(&self, stream: Stream, bytes: &[u8]) {
        let lines = match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        };
        let Ok(mut lines) = lines.lock() else { return };
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&lines.partial).into_owned();
                lines.partial.clear();
                self.emit(stream, &mut lines, line);
            } else if lines.partial.len() < MAX_LINE {
                lines.partial.push(b);
            }
        }
    }

    fn emit(&self, stream: Stream, lines: &mut Lines, line: String) {
        let replaying = self.replaying.load(Ordering::Relaxed);
        match stream {
            Stream::Stdout if !replaying => {
                tracing::info!(target: "duroxide::guest", guest = %self.label, "{line}");
            }
            Stream::Stderr => {
                if !replaying {
                    tracing::warn!(target: "duroxide::guest", guest = %self.label, "{line}");
                }
                if lines.stderr_tail.len() == TAIL_LINES {
                    lines.stderr_tail.pop_front();
                }
                lines.stderr_tail.push_back(line);
            }
            Stream::Stdout => {}
        }
    }
}

/// One of a guest's standard output streams.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    sink: OutputSink,
    stream: Stream,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.sink.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.sink.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
