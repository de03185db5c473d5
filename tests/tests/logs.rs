//! Orchestration logs are replay-safe: every line is written once, even when
//! each turn replays the orchestration from its beginning.

use duroxide_tests::{Captured, Harness, completed, guests};

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
