//! PostgreSQL going down and coming back, on a server of the test's own
//! (see `postgres_faults/server.rs`): opening a store whose server is down
//! fails at once with a typed error naming the URL and the cause; calls on
//! an open store fail with a retryable error while the server is away and
//! work again, on the same store objects, once it returns; a running
//! runtime's dispatchers wait it out with backoff and lose nothing.

#[path = "postgres_faults/server.rs"]
mod server;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use duroxide::history::Event;
use duroxide::providers::{self, HistoryStore};
use duroxide::{Client, DuroxideRuntime, OrchestrationStatus};
use duroxide_tests::{Captured, completed, eventually, guests, options};
use server::Server;
use tokio::sync::Mutex;

/// Each test stops and starts servers and runs hundreds of instances: one
/// at a time, so they neither starve each other on a small machine nor mix
/// their lines in the captured log.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The log of every test of this binary (a subscriber is process-wide).
fn log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        captured
    })
}

/// `e` and its sources, as one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The events of `history` but the turn markers, each as a short line.
fn outline(history: &[Event]) -> Vec<String> {
    history
        .iter()
        .filter_map(|event| {
            Some(match event {
                Event::TurnStarted { .. } => return None,
                Event::OrchestrationStarted { name, input, .. } => format!("start {name} {input}"),
                Event::ActivityScheduled { id, name, input } => format!("#{id} {name} {input}"),
                Event::ActivityCompleted { id, output } => format!("#{id} -> {output}"),
                Event::TimerCreated { id, .. } => format!("#{id} timer"),
                Event::TimerFired { id } => format!("#{id} fired"),
                Event::OrchestrationCompleted { output } => format!("done {output}"),
                other => format!("{other:?}"),
            })
        })
        .collect()
}

/// The outline of a finished `Sequence` of `input`.
fn sequence(input: &str) -> Vec<String> {
    let upper = input.to_uppercase();
    vec![
        format!("start Sequence {input}"),
        format!("#1 Append {input}:a"),
        format!("#1 -> {input}:a!"),
        format!("#2 Append {input}:a!:b"),
        format!("#2 -> {input}:a!:b!"),
        format!("#3 Upper {input}:a!:b!"),
        format!("#3 -> {upper}:A!:B!"),
        format!("done {upper}:A!:B!"),
    ]
}

/// The instances of one run: id, orchestration, input, and the outline of
/// the history it must end with (so a duplicated or missing event fails).
fn workload(n: usize) -> Vec<(String, &'static str, String, Vec<String>)> {
    (0..n)
        .map(|i| {
            let id = format!("i{i}");
            if i % 2 == 0 {
                let expected = vec![
                    "start ActivityTimerActivity 1500".to_owned(),
                    "#1 Append first".to_owned(),
                    "#1 -> first!".to_owned(),
                    "#2 timer".to_owned(),
                    "#2 fired".to_owned(),
                    "#3 Append second".to_owned(),
                    "#3 -> second!".to_owned(),
                    "done first!,second!".to_owned(),
                ];
                (id, "ActivityTimerActivity", "1500".to_owned(), expected)
            } else {
                let input = format!("s{i}");
                (id, "Sequence", input.clone(), sequence(&input))
            }
        })
        .collect()
}

/// Waits for every instance of `work` and checks its output and history.
async fn check_all(
    client: &Client,
    work: &[(String, &'static str, String, Vec<String>)],
) -> anyhow::Result<()> {
    for (id, _, _, expected) in work {
        let status = client.wait_for_completion(id, Some(60_000)).await?;
        let output = completed(status).map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
        let history = client.get_execution_history(id, None).await?;
        let got = outline(&history);
        anyhow::ensure!(
            &got == expected,
            "{id}: history {got:#?}, expected {expected:#?}"
        );
        anyhow::ensure!(expected.last() == Some(&format!("done {output}")));
    }
    Ok(())
}

/// The notice listeners connected to `server` (one per store object).
fn listeners(server: &Server) -> anyhow::Result<usize> {
    let n = server.query(
        "SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND query LIKE 'LISTEN %'",
    )?;
    Ok(n.parse()?)
}

/// A server that is down when the store is opened, and when the runtime
/// starts: each call fails with a clear, retryable error in bounded time,
/// and once the server is up the same store objects work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_gives_clear_errors_and_nothing_is_lost() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let Some(server) = Server::create()? else {
        return Ok(());
    };
    // A connect timeout of 2 s: how long a call waits for a server that
    // does not answer before it fails.
    let url = format!("{}?connect_timeout=2", server.url());

    // Opening fails at once, with the URL and the cause, and is worth retrying.
    let began = Instant::now();
    let error = match providers::open(&url).await {
        Ok(_) => anyhow::bail!("a store opened on a server that is down"),
        Err(e) => e,
    };
    let text = chain(&error);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert!(text.contains(&server.url()), "names the URL: {text}");
    assert!(text.contains("refused"), "names the cause: {text}");
    assert!(error.is_retryable(), "{text}");

    server.start()?;
    let store = providers::open(&url).await?;
    let client = Client::new(providers::open(&url).await?);
    let mut runtime = DuroxideRuntime::with_options(store.clone(), options(true));
    runtime.load_component_file(guests::SCENARIOS).await?;

    // The server goes away before anything runs.
    server.stop("fast")?;
    let began = Instant::now();
    let start = client
        .start_orchestration("early", "Sequence", "early", None)
        .await;
    let error = start.expect_err("a start on a server that is down");
    let text = chain(&error);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    assert!(
        matches!(&error, duroxide::ClientError::Storage(e) if e.is_retryable()),
        "{text}"
    );
    // Why: the pool found no connection, or the server ended its session.
    assert!(
        text.contains("no connection") || text.contains("terminating connection"),
        "says why: {text}"
    );
    let began = Instant::now();
    let started = runtime.start().await;
    let error = started.expect_err("a runtime started on a server that is down");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    assert!(chain(&error).contains("no connection"), "{}", chain(&error));
    assert!(!runtime.is_running());

    // Back: the same store objects reconnect, nothing to reopen.
    server.start()?;
    runtime.start().await?;
    let work = workload(20);
    for (id, name, input, _) in &work {
        client.start_orchestration(id, name, input, None).await?;
    }
    check_all(&client, &work).await?;
    runtime.stop().await;
    Ok(())
}

/// Stops the server under hundreds of instances in flight, once as a crash
/// would and once as an operator would, and starts it again: every instance
/// completes with the right output and history, the dispatchers retried
/// with backoff meanwhile (a handful of log lines, not one per poll), and
/// every store object's notice listener reconnected and hears notices again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_mid_run_loses_and_repeats_nothing() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let log = log();
    let Some(server) = Server::create()? else {
        return Ok(());
    };
    server.start()?;
    let url = format!("{}?connect_timeout=2", server.url());
    let store = providers::open(&url).await?;
    let client_store: Arc<dyn HistoryStore> = providers::open(&url).await?;
    let client = Client::new(client_store);
    // A store object nobody else waits on, whose wake-ups the test watches.
    let watcher: Arc<dyn HistoryStore> = providers::open(&url).await?;
    let woken = watcher.orchestrator_signal();
    let mut runtime = DuroxideRuntime::with_options(store, options(true));
    runtime.load_component_file(guests::SCENARIOS).await?;
    runtime.start().await?;
    assert_eq!(listeners(&server)?, 3, "one listener per store object");

    let finished = || async {
        let health = client.get_system_health().await?;
        anyhow::Ok(health.completed_instances)
    };
    let mut all = Vec::new();
    for mode in ["immediate", "fast"] {
        let base = finished().await?;
        let work = workload(300)
            .into_iter()
            .map(|(id, name, input, expected)| (format!("{mode}-{id}"), name, input, expected))
            .collect::<Vec<_>>();
        for (id, name, input, _) in &work {
            client.start_orchestration(id, name, input, None).await?;
        }
        // Some finished, most still in flight.
        let at_stop = eventually(Duration::from_secs(60), || async {
            let done = finished().await?;
            Ok((done >= base + 20).then_some(done))
        })
        .await?;
        assert!(at_stop < base + 300, "everything finished before the stop");
        let lines_before = log.text().lines().count();
        server.stop(mode)?;
        // The outage itself: the runtime runs on without its database.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let outage = log
            .text()
            .lines()
            .skip(lines_before)
            .collect::<Vec<_>>()
            .join("\n");
        server.start()?;
        assert!(
            outage.contains("the store is unreachable"),
            "the outage is logged:\n{outage}"
        );
        let fetch_lines = outage.lines().filter(|l| l.contains("fetching")).count();
        assert!(
            fetch_lines <= 4,
            "the dispatchers back off and say so once ({fetch_lines} lines):\n{outage}"
        );
        // Both stores listen again, and everything finishes.
        eventually(Duration::from_secs(30), || async {
            Ok((listeners(&server)? == 3).then_some(()))
        })
        .await?;
        check_all(&client, &work).await?;
        // The watcher hears another store's write after its listener came
        // back (the wake-up of the reconnection itself consumed first).
        let _ = tokio::time::timeout(Duration::from_millis(100), woken.notified()).await;
        client
            .start_orchestration(&format!("{mode}-heard"), "Sequence", "h", None)
            .await?;
        tokio::time::timeout(Duration::from_secs(10), woken.notified())
            .await
            .map_err(|_| anyhow::anyhow!("no notice reached the watcher after the outage"))?;
        all.extend(work);
        all.push((
            format!("{mode}-heard"),
            "Sequence",
            "h".to_owned(),
            sequence("h"),
        ));
    }
    // The second outage left the first batch as it was, and the counts agree.
    check_all(&client, &all).await?;
    assert_eq!(finished().await?, 602);

    // A start after the outages wakes the runtime through its listener.
    let late = workload(401).split_off(400);
    for (id, name, input, _) in &late {
        client.start_orchestration(id, name, input, None).await?;
    }
    check_all(&client, &late).await?;
    let health = client.get_system_health().await?;
    assert_eq!(
        (health.completed_instances, health.failed_instances),
        (603, 0)
    );
    assert!(matches!(
        client.get_orchestration_status("fast-i0").await?,
        OrchestrationStatus::Completed { .. }
    ));
    runtime.stop().await;
    Ok(())
}
