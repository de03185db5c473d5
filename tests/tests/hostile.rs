//! Hostile guests beside a benign load, on real sandboxes: guests that loop
//! (in a turn and in an activity), allocate to their limit, fan out
//! allocators to exhaust their component's memory budget, recurse until the
//! stack overflows, hand over, fail with, log or name texts larger than
//! allowed, trap mid-execution, grow their history past its limit, or
//! import what the host does not provide. Each offending instance or
//! attempt ends with a reason naming the limit and its value; the benign
//! instances all complete; and the process's resident memory stays within a
//! bound derived from the components' memory budgets (measured and printed).
//!
//! One test in this file, run with the execution cache on and then off: the
//! resident memory is the process's, which other tests running alongside
//! would share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::runtime::RuntimeError;
use duroxide::{Client, ComponentPolicy, DuroxideRuntime, LoadError, OrchestrationStatus};
use duroxide_tests::{WAIT_MS, guests, options};

/// Benign instances running beside the hostile ones.
const BENIGN: usize = 200;

/// Memory budget of the hostile component: all its sandboxes together.
const HOSTILE_BUDGET: usize = 128 << 20;

/// Memory budget of the benign component: less than its 200 executions
/// would hold if all stayed parked (about 1.1 MiB each), so its parked
/// executions are evicted, and its turns given back, to stay within it.
const BENIGN_BUDGET: usize = 128 << 20;

/// What the process may hold beyond its start and the components' budgets:
/// the store's pages and caches, compiled code, the runtime's tasks, and
/// the sandboxes the pool has freed but not yet handed back to the kernel
/// (it does so in batches).
const HOST_ALLOWANCE: usize = 128 << 20;

/// The hostile component's policy: small limits, so each is reached fast.
fn hostile_policy() -> ComponentPolicy {
    let mut policy = ComponentPolicy::default();
    policy.memory_budget_bytes = HOSTILE_BUDGET;
    policy.max_history_events = 50;
    policy.max_concurrent_activities = 16;
    let limits = &mut policy.limits;
    limits.max_memory_bytes = 32 << 20;
    limits.orchestration_turn_budget = Duration::from_millis(300);
    limits.activity_cpu_budget = Duration::from_millis(300);
    limits.activity_budget = Duration::from_secs(20);
    limits.max_payload_bytes = 4096;
    limits.max_name_bytes = 64;
    limits.max_instance_id_bytes = 64;
    limits.max_error_bytes = 1024;
    limits.max_log_line_bytes = 1024;
    policy
}

/// The benign component's policy: the defaults, within its own budget.
fn benign_policy() -> ComponentPolicy {
    let mut policy = ComponentPolicy::default();
    policy.memory_budget_bytes = BENIGN_BUDGET;
    policy
}

/// How a hostile instance must end.
enum Ends {
    /// Failed, its error holding every one of these.
    Failed(&'static [&'static str]),
    /// Completed, its output holding every one of these.
    Completed(&'static [&'static str]),
}

/// The hostile instances of the first wave: memory hogs, alone and fanned
/// out, which share their component's memory budget.
const MEMORY: &[Hostile] = &[
    (
        "hoard",
        "Hoards",
        "",
        // Its own limit, or the component's budget if the fan-out holds it:
        // "(max_memory_bytes)" or "(memory_budget_bytes)".
        Ends::Failed(&["bytes (m", "more than"]),
    ),
    (
        "fan-out",
        "FanOutHogs",
        // 16 at once of 28 MiB each: 448 MiB without the budget, more than
        // the bound the process is held to.
        "16:28",
        Ends::Completed(&["\"[DX012]\""]),
    ),
];

/// One hostile instance: id, orchestration, input, how it must end.
type Hostile = (&'static str, &'static str, &'static str, Ends);

/// The hostile instances of the second wave: each reaches one limit of its
/// own. (Run after the first, whose memory hogs would fail their
/// activities for want of the component's memory, a reason of its own.)
const LIMITS: &[Hostile] = &[
    (
        "spin-turn",
        "SpinsAfterActivity",
        "x",
        Ends::Failed(&[
            "[DX006] ",
            "CPU budget of 300 ms (orchestration_turn_budget)",
        ]),
    ),
    (
        "spin-activity",
        "CallActivity",
        "SpinActivity|x",
        Ends::Completed(&[
            "err: [DX006] ",
            "CPU budget of 300 ms (activity_cpu_budget)",
        ]),
    ),
    (
        "stack",
        "OverflowsStack",
        "x",
        Ends::Failed(&["[DX008] ", "stack overflow"]),
    ),
    (
        "stack-activity",
        "CallActivity",
        "OverflowActivity|x",
        Ends::Completed(&["err: [DX008] ", "stack overflow"]),
    ),
    (
        "big-output",
        "CallActivity",
        "BigOutput|5000",
        Ends::Completed(&[
            "err: [DX004] activity output is 5000 bytes, more than the limit of 4096 bytes (max_payload_bytes)",
        ]),
    ),
    (
        "big-activity-error",
        "CallActivity",
        "FailsLong|5000",
        Ends::Completed(&[
            "err: [DX004] activity error is 5000 bytes, more than the limit of 1024 bytes (max_error_bytes)",
        ]),
    ),
    (
        "big-error",
        "BigError",
        "5000",
        Ends::Failed(&[
            "[DX004] ",
            "more than the limit of 1024 bytes (max_error_bytes)",
        ]),
    ),
    (
        "big-status",
        "BigStatus",
        "5000",
        Ends::Failed(&[
            "[DX004] ",
            "more than the limit of 4096 bytes (max_payload_bytes)",
        ]),
    ),
    (
        "long-activity-name",
        "LongText",
        "activity-name:100",
        Ends::Failed(&[
            "[DX004] activity name",
            "more than the limit of 64 bytes (max_name_bytes)",
        ]),
    ),
    (
        "long-event-name",
        "LongText",
        "event-name:100",
        Ends::Failed(&[
            "[DX004] event name",
            "more than the limit of 64 bytes (max_name_bytes)",
        ]),
    ),
    (
        "long-child-id",
        "LongText",
        "child-id:100",
        Ends::Failed(&[
            "[DX004] child instance id",
            "more than the limit of 64 bytes (max_instance_id_bytes)",
        ]),
    ),
    // A long log line is cut, not refused: the instance completes.
    ("big-log", "BigLog", "50000", Ends::Completed(&["logged"])),
    (
        "trap",
        "TrapsAfterActivity",
        "x",
        Ends::Failed(&["[DX008] the guest trapped"]),
    ),
    (
        "history",
        "ManyEvents",
        "100",
        Ends::Failed(&["[DX013] ", "more than the limit of 50 (max_history_events)"]),
    ),
];

/// A field of `/proc/self/status` in bytes ("VmRSS", "VmHWM").
fn proc_status_bytes(field: &str) -> anyhow::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = (status.lines())
        .find(|l| l.starts_with(&format!("{field}:")))
        .ok_or_else(|| anyhow::anyhow!("no {field} in /proc/self/status"))?;
    let kib: usize = (line.split_whitespace().nth(1))
        .ok_or_else(|| anyhow::anyhow!("malformed {line:?}"))?
        .parse()?;
    Ok(kib * 1024)
}

fn mib(bytes: usize) -> usize {
    bytes >> 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_end_alone_with_named_limits_beside_a_benign_load() -> anyhow::Result<()> {
    let baseline = proc_status_bytes("VmRSS")?;
    let bound = baseline + HOSTILE_BUDGET + BENIGN_BUDGET + HOST_ALLOWANCE;
    for cache in [true, false] {
        let peak = run(cache).await?;
        println!(
            "hostile suite, cache {}: RSS at start {} MiB, peak sampled {} MiB, VmHWM {} MiB; bound {} MiB (start + hostile budget {} + benign budget {} + host {})",
            if cache { "on" } else { "off" },
            mib(baseline),
            mib(peak),
            mib(proc_status_bytes("VmHWM")?),
            mib(bound),
            mib(HOSTILE_BUDGET),
            mib(BENIGN_BUDGET),
            mib(HOST_ALLOWANCE),
        );
        assert!(
            peak <= bound,
            "resident memory peaked at {} MiB, above the bound of {} MiB",
            mib(peak),
            mib(bound)
        );
    }
    let hwm = proc_status_bytes("VmHWM")?;
    assert!(
        hwm <= bound,
        "resident memory peaked (VmHWM) at {} MiB, above the bound of {} MiB",
        mib(hwm),
        mib(bound)
    );
    Ok(())
}

/// Starts the `hostile` instances and [`BENIGN`] benign ones (numbered by
/// `wave`) at once; checks that every benign one completes and each
/// hostile one ends as it must.
async fn beside_benign(client: &Client, wave: usize, hostile: &[Hostile]) -> anyhow::Result<()> {
    for (id, name, input, _) in hostile {
        client.start_orchestration(id, name, input, None).await?;
    }
    for i in 0..BENIGN {
        let id = format!("benign-{wave}-{i}");
        let input = format!("guest {i}");
        client
            .start_orchestration(&id, "HelloWorld", &input, None)
            .await?;
    }
    for i in 0..BENIGN {
        let id = format!("benign-{wave}-{i}");
        let status = client.wait_for_completion(&id, Some(WAIT_MS)).await?;
        assert_eq!(
            status,
            OrchestrationStatus::Completed {
                output: format!("Hello, guest {i}!")
            },
            "{id}"
        );
    }
    for (id, name, _, ends) in hostile {
        let status = client.wait_for_completion(id, Some(WAIT_MS)).await?;
        let (text, wanted) = match (&status, ends) {
            (OrchestrationStatus::Failed { error }, Ends::Failed(wanted)) => (error, wanted),
            (OrchestrationStatus::Completed { output }, Ends::Completed(wanted)) => {
                (output, wanted)
            }
            _ => anyhow::bail!("{id} ({name}) ended otherwise than expected: {status:?}"),
        };
        for needle in *wanted {
            assert!(
                text.contains(needle),
                "{id} ({name}): {needle:?} not in {text}"
            );
        }
        println!("{id}: {}", text.lines().next().unwrap_or_default());
    }
    Ok(())
}

/// One run of the suite; returns the peak resident memory sampled.
async fn run(cache: bool) -> anyhow::Result<usize> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("hostile.db").display());
    let store = Arc::new(SqliteHistoryStore::new(&url).await?);
    let mut runtime = DuroxideRuntime::with_options(store.clone(), options(cache));
    runtime
        .load_component_file_with_policy(guests::HELLO_WORLD, benign_policy())
        .await?;
    runtime
        .load_component_file_with_policy(guests::MISBEHAVING, hostile_policy())
        .await?;
    // A component importing what the host does not provide is refused when
    // it is loaded, naming the import; the runtime goes on.
    let refused = runtime.load_component_file(guests::FORBIDDEN_IMPORT).await;
    let Err(RuntimeError::Load(LoadError::ForbiddenImport(import))) = refused else {
        anyhow::bail!("expected a forbidden import, got {refused:?}");
    };
    assert!(import.starts_with("wasi:http/"), "{import}");
    runtime.start().await?;
    let client = Client::new(store.clone());

    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                if let Ok(rss) = proc_status_bytes("VmRSS") {
                    peak.fetch_max(rss as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    for (wave, hostile) in [MEMORY, LIMITS].into_iter().enumerate() {
        beside_benign(&client, wave, hostile).await?;
    }
    sampler.abort();
    runtime.stop().await;
    Ok(peak.load(Ordering::Relaxed) as usize)
}
