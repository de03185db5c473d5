//! Orchestration logs are replay-safe: every line is written once, even when
//! each turn replays the orchestration from its beginning.

use std::io::Write;
use std::sync::{Arc, Mutex};

use duroxide_tests::{Harness, completed, guests};

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn count(&self, needle: &str) -> usize {
        let text = self
            .0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        text.matches(needle).count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_written_once_with_and_without_the_cache() -> anyhow::Result<()> {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    for cache in [true, false] {
        let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        let id = format!("chatty-{cache}");
        assert_eq!(completed(h.run(&id, "Chatty", &id).await?)?, "chatted");
        for line in ["step 1", "step 2", "step 3", "stdout"] {
            let needle = format!("chatty {id} {line}");
            assert_eq!(captured.count(&needle), 1, "'{needle}' (cache {cache})");
        }
    }
    Ok(())
}
