//! Client and runtime in different OS processes sharing one SQLite file; a
//! runtime process killed mid-orchestration is replaced and the work finishes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use duroxide::Client;
use duroxide::history::Event;
use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide_tests::{WAIT_MS, completed, guests, history_reaches};

/// Start a runtime process on `url` with the scenario guests and wait until
/// it says it is ready.
fn spawn_runtime(url: &str, lock_ms: u64) -> anyhow::Result<Child> {
    spawn_runtime_with(url, lock_ms, &[guests::SCENARIOS], &[], Stdio::inherit())
}

/// [`spawn_runtime`] with other components, extra environment variables,
/// and its log (its stderr) sent to `log`.
fn spawn_runtime_with(
    url: &str,
    lock_ms: u64,
    components: &[&str],
    env: &[(&str, &str)],
    log: Stdio,
) -> anyhow::Result<Child> {
    let lock_ms = lock_ms.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_duroxide-test-host"))
        .args([url, &lock_ms])
        .args(components)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    anyhow::ensure!(line.trim() == "ready", "runtime process said {line:?}");
    Ok(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_beyond_a_full_sandbox_pool_run_in_mapped_sandboxes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("pool.db").display());
    let client = Client::new(Arc::new(SqliteHistoryStore::new(&url).await?));
    // A pool of two sandboxes, which the first parked executions fill.
    let mut runtime = spawn_runtime_with(
        &url,
        5_000,
        &[guests::SCENARIOS],
        &[("DUROXIDE_SANDBOX_POOL", "2")],
        Stdio::inherit(),
    )?;

    let waiting: Vec<String> = (0..5).map(|i| format!("waits-{i}")).collect();
    for id in &waiting {
        client
            .start_orchestration(id, "TwoEvents", "", None)
            .await?;
    }
    for id in &waiting {
        history_reaches(&client, id, |h| {
            h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
        })
        .await?;
    }
    // Five executions are parked now; these activities find the pool full.
    client
        .start_orchestration("fan", "FanOut", "6", None)
        .await?;
    assert_eq!(
        completed(client.wait_for_completion("fan", Some(WAIT_MS)).await?)?,
        "ITEM0,ITEM1,ITEM2,ITEM3,ITEM4,ITEM5"
    );
    for id in &waiting {
        client.raise_event(id, "approval", "one").await?;
        client.raise_event(id, "approval", "two").await?;
    }
    for id in &waiting {
        assert_eq!(
            completed(client.wait_for_completion(id, Some(WAIT_MS)).await?)?,
            "one+two"
        );
    }
    drop(runtime.stdin.take());
    let status = runtime.wait()?;
    assert!(status.success(), "runtime process exited with {status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_runtime_in_separate_processes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("shared.db").display());
    let client = Client::new(Arc::new(SqliteHistoryStore::new(&url).await?));
    let mut runtime = spawn_runtime(&url, 5_000)?;

    client
        .start_orchestration("seq", "Sequence", "p", None)
        .await?;
    client
        .start_orchestration("events", "TwoEvents", "", None)
        .await?;
    client.raise_event("events", "approval", "one").await?;
    client.raise_event("events", "approval", "two").await?;
    assert_eq!(
        completed(client.wait_for_completion("seq", Some(WAIT_MS)).await?)?,
        "P:A!:B!"
    );
    assert_eq!(
        completed(client.wait_for_completion("events", Some(WAIT_MS)).await?)?,
        "one+two"
    );

    // Closing stdin stops the runtime gracefully.
    drop(runtime.stdin.take());
    let status = runtime.wait()?;
    assert!(status.success(), "runtime process exited with {status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runtime_process_is_replaced() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("crash.db").display());
    let client = Client::new(Arc::new(SqliteHistoryStore::new(&url).await?));
    let mut first = spawn_runtime(&url, 1_000)?;

    client
        .start_orchestration("crash", "ActivityTimerActivity", "1000", None)
        .await?;
    history_reaches(&client, "crash", |h| {
        h.iter().any(|e| matches!(e, Event::TimerCreated { .. }))
    })
    .await?;
    first.kill()?;
    first.wait()?;

    let mut second = spawn_runtime(&url, 1_000)?;
    let output = completed(client.wait_for_completion("crash", Some(WAIT_MS)).await?)?;
    assert_eq!(output, "first!,second!");
    let history = client.get_execution_history("crash", None).await?;
    let completions = history
        .iter()
        .filter(|e| matches!(e, Event::ActivityCompleted { .. }))
        .count();
    assert_eq!(completions, 2, "{history:?}");
    drop(second.stdin.take());
    second.wait()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_without_the_code_leaves_work_to_one_with_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("fleet.db").display());
    let client = Client::new(Arc::new(SqliteHistoryStore::new(&url).await?));
    // A runtime with other code only, up first.
    let mut lacking = spawn_runtime_with(&url, 5_000, &[guests::HELLO_WORLD], &[], Stdio::piped())?;
    let ids: Vec<String> = (0..200).map(|i| format!("mixed-{i}")).collect();
    for id in &ids {
        client.start_orchestration(id, "Sequence", id, None).await?;
    }
    // It takes the work first and gives it back, saying what it lacks.
    let stderr = lacking
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let (lines, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(WAIT_MS);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = log.recv_timeout(left)?;
        if line.contains("this runtime lacks orchestration 'Sequence'") {
            break;
        }
    }
    // The runtime with the code serves every instance.
    let mut having = spawn_runtime(&url, 5_000)?;
    for id in &ids {
        let status = client.wait_for_completion(id, Some(WAIT_MS)).await?;
        assert_eq!(completed(status)?, format!("{}:A!:B!", id.to_uppercase()));
    }
    drop(lacking.stdin.take());
    assert!(lacking.wait()?.success());
    drop(having.stdin.take());
    having.wait()?;
    Ok(())
}
