//! What an operator sees of a running host: Prometheus metrics (rendered
//! and served over HTTP) and one tracing span per turn and activity attempt,
//! each naming its instance, execution, outcome and duration.

use std::io::{Read, Write};
use std::time::Duration;

use duroxide_tests::{Captured, Harness, completed, eventually, guests};
use tracing_subscriber::fmt::format::FmtSpan;

/// The value of the sample `name{labels}` in `text`, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_runtime_did_and_are_served_over_http() -> anyhow::Result<()> {
    let h = Harness::start(true, &[guests::SCENARIOS]).await?;
    let server = duroxide::metrics::serve("127.0.0.1:0".parse()?)?;
    // FanOut runs in no other test of this file, which counts in the same
    // process.
    let done = "duroxide_orchestrations_completed_total{name=\"FanOut\"}";
    let before = sample(&duroxide::metrics::encode(), done).unwrap_or(0.0);
    for i in 0..3 {
        let id = format!("counted-{i}");
        assert_eq!(completed(h.run(&id, "FanOut", "2").await?)?, "ITEM0,ITEM1");
    }
    // The waiter hears of an end at its commit; the turn counts it a moment
    // later.
    let text = eventually(Duration::from_secs(10), || async {
        let text = duroxide::metrics::encode();
        Ok((sample(&text, done) == Some(before + 3.0)).then_some(text))
    })
    .await?;
    for series in [
        "duroxide_orchestrations_started_total{name=\"FanOut\"}",
        "duroxide_turns_total{kind=\"started\"}",
        "duroxide_turn_duration_seconds_count",
        "duroxide_activity_duration_seconds_count",
        "duroxide_store_commit_duration_seconds_count",
        "duroxide_store_commit_writes_count",
        "duroxide_queue_depth{queue=\"orchestrator\"}",
        "duroxide_queue_oldest_age_milliseconds{queue=\"activity\"}",
        "duroxide_pooled_sandboxes_in_use",
    ] {
        assert!(sample(&text, series).is_some(), "{series} missing:\n{text}");
    }
    assert!(sample(&text, "duroxide_activity_duration_seconds_count").unwrap_or(0.0) >= 6.0);

    // A scrape over HTTP gets the same text.
    let mut stream = std::net::TcpStream::connect(server.addr())?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("application/openmetrics-text"),
        "{response}"
    );
    assert!(response.contains(done), "{response}");
    let mut other = std::net::TcpStream::connect(server.addr())?;
    other.write_all(b"GET /other HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    other.read_to_string(&mut response)?;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_turn_and_activity_has_a_span_naming_its_instance_and_outcome() -> anyhow::Result<()> {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber)?;
    // Without the cache, each activity goes through the dispatcher.
    let h = Harness::start(false, &[guests::SCENARIOS]).await?;
    assert_eq!(
        completed(h.run("traced", "Sequence", "t").await?)?,
        "T:A!:B!"
    );
    // The waiter hears of the end at the commit; the spans close a moment
    // later: the last turn's, and each activity's.
    let turn_done = |l: &str| {
        l.contains("close")
            && l.contains("turn{instance=traced execution=1 name=Sequence")
            && l.contains(r#"outcome="completed""#)
            && l.contains("duration_ms=")
    };
    let activity_done = |l: &str| {
        l.contains("close")
            && l.contains("activity{instance=traced execution=1")
            && l.contains(r#"outcome="ok""#)
            && (l.contains("name=Append") || l.contains("name=Upper"))
    };
    let text = eventually(Duration::from_secs(10), || {
        let text = captured.text();
        let done =
            text.lines().any(turn_done) && text.lines().filter(|l| activity_done(l)).count() >= 3;
        async move { Ok(done.then_some(text)) }
    })
    .await?;
    let activities = text.lines().filter(|l| activity_done(l)).count();
    assert_eq!(activities, 3, "{text}");
    Ok(())
}
