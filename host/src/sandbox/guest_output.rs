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

use crate::limits::{TextKind, TextLimits};

/// Lines of stderr kept for error reports.
const TAIL_LINES: usize = 16;
/// Bytes of the stderr tail kept for error reports, the newest.
const TAIL_BYTES: usize = 4 * 1024;

/// Which standard stream a [`GuestOutput`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

#[derive(Default)]
struct Lines {
    /// The start of the line being written, up to the line limit.
    partial: Vec<u8>,
    /// How long the line being written is, kept or not.
    partial_len: usize,
    stderr_tail: VecDeque<String>,
}

/// Shared sink for one guest instance's stdout and stderr.
#[derive(Clone)]
pub(crate) struct OutputSink {
    /// Set again for each call a warm activity sandbox serves.
    label: Arc<Mutex<Arc<str>>>,
    /// Lines longer than their limit are cut, so a guest cannot grow host
    /// memory.
    limits: TextLimits,
    replaying: Arc<AtomicBool>,
    stdout: Arc<Mutex<Lines>>,
    stderr: Arc<Mutex<Lines>>,
}

impl OutputSink {
    /// A sink whose lines are tagged with `label` (the instance id or activity
    /// name), dropped while `replaying` is set, and cut at the log line
    /// limit of `limits`.
    pub(crate) fn new(label: &str, replaying: Arc<AtomicBool>, limits: TextLimits) -> Self {
        Self {
            label: Arc::new(Mutex::new(label.into())),
            limits,
            replaying,
            stdout: Arc::default(),
            stderr: Arc::default(),
        }
    }

    /// A warm sandbox starts another call, `label`: its lines are tagged
    /// with that name, and what the last call wrote is forgotten (a failure
    /// reports only its own call's stderr).
    pub(crate) fn begin_call(&self, label: &str) {
        if let Ok(mut current) = self.label.lock() {
            *current = label.into();
        }
        for lines in [&self.stdout, &self.stderr] {
            if let Ok(mut lines) = lines.lock() {
                *lines = Lines::default();
            }
        }
    }

    /// The name its lines are tagged with.
    fn label(&self) -> Arc<str> {
        self.label
            .lock()
            .map_or_else(|_| Arc::from(""), |label| label.clone())
    }

    /// The stream the guest writes `stream` to.
    pub(crate) fn stream(&self, stream: Stream) -> GuestOutput {
        GuestOutput {
            sink: self.clone(),
            stream,
        }
    }

    /// The last lines the guest wrote to stderr, partial line included: at
    /// most the last [`TAIL_BYTES`], the start of the first line kept cut.
    pub(crate) fn stderr_tail(&self) -> String {
        let Ok(lines) = self.stderr.lock() else {
            return String::new();
        };
        let mut out: Vec<String> = lines.stderr_tail.iter().cloned().collect();
        if !lines.partial.is_empty() {
            out.push(self.line(&lines));
        }
        let tail = out.join("\n");
        let Some(mut start) = tail.len().checked_sub(TAIL_BYTES) else {
            return tail;
        };
        while !tail.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &tail[start..])
    }

    /// The line being written, cut to the line limit.
    fn line(&self, lines: &Lines) -> String {
        let text = String::from_utf8_lossy(&lines.partial);
        (self.limits)
            .cut(TextKind::LogLine, &text, lines.partial_len)
            .into_owned()
    }

    fn write(&self, stream: Stream, bytes: &[u8]) {
        let lines = match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        };
        let Ok(mut lines) = lines.lock() else { return };
        let max_line = self.limits.max_log_line_bytes;
        for &b in bytes {
            if b == b'\n' {
                let line = self.line(&lines);
                lines.partial.clear();
                lines.partial_len = 0;
                self.emit(stream, &mut lines, line);
            } else {
                lines.partial_len = lines.partial_len.saturating_add(1);
                if lines.partial.len() < max_line {
                    lines.partial.push(b);
                }
            }
        }
    }

    fn emit(&self, stream: Stream, lines: &mut Lines, line: String) {
        let replaying = self.replaying.load(Ordering::Relaxed);
        match stream {
            Stream::Stdout if !replaying => {
                tracing::info!(target: "duroxide::guest", guest = %self.label(), "{line}");
            }
            Stream::Stderr => {
                if !replaying {
                    tracing::warn!(target: "duroxide::guest", guest = %self.label(), "{line}");
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
