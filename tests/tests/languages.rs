//! One conformance suite for guests in every language: each scenario is
//! written once, as what a client does and what it must see, and runs
//! against the Rust, Python and JavaScript builds of the same orchestrations
//! (tests/guests/conformance, tests/guests-py/conformance,
//! tests/guests-js/conformance), with the execution cache on and off.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use duroxide::history::Event;
use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::{Client, DuroxideRuntime, OrchestrationStatus, RuntimeOptions};
use duroxide_tests::{WAIT_MS, completed, count, eventually, options, timer_delays};
use serde_json::{Value, json};

/// A runtime serving one language's conformance component, and a client.
struct Run {
    _dir: tempfile::TempDir,
    store: Arc<SqliteHistoryStore>,
    cache: bool,
    /// The language's builds.
    builds: &'static components::Builds,
    client: Client,
    runtime: DuroxideRuntime,
}

/// A started runtime on `store` serving `component`, with the suite's
/// options as `tweak` leaves them.
async fn runtime_on(
    store: &Arc<SqliteHistoryStore>,
    cache: bool,
    component: &str,
    tweak: impl FnOnce(&mut RuntimeOptions),
) -> anyhow::Result<DuroxideRuntime> {
    let mut options = options(cache);
    // Room for the 1 MiB payload scenario, and for the language runtimes
    // built to Wasm.
    options.limits.max_payload_bytes = 4 << 20;
    options.limits.max_memory_bytes = 256 << 20;
    // The default turn budget rather than the tests' short one: a fan-out's
    // turn in an interpreter takes a large share of 2 s when the machine is
    // loaded (the meter counts wall time while the guest runs), and no
    // scenario here depends on the budget.
    options.limits.orchestration_turn_budget =
        RuntimeOptions::default().limits.orchestration_turn_budget;
    // And the default lock, which outlasts that budget: the tests' 5 s lock
    // is shorter, so a fan-out turn of 10 s would lose it (and, retried,
    // end as poison) on a loaded machine. No scenario here recovers from a
    // crash, the one thing the short lock is for.
    options.orchestration_lock = RuntimeOptions::default().orchestration_lock;
    tweak(&mut options);
    let mut runtime = DuroxideRuntime::with_options(store.clone(), options);
    runtime.load_component_file(component).await?;
    runtime.start().await?;
    Ok(runtime)
}

impl Run {
    async fn start(builds: &'static components::Builds, cache: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite:{}", dir.path().join("conformance.db").display());
        let store = Arc::new(SqliteHistoryStore::new(&url).await?);
        let runtime = runtime_on(&store, cache, builds.first, |_| {}).await?;
        Ok(Self {
            _dir: dir,
            client: Client::new(store.clone()),
            store,
            cache,
            builds,
            runtime,
        })
    }

    /// Stop the runtime and start one serving the language's changed build:
    /// what a deploy of changed code under the same version does.
    async fn redeploy_changed(&mut self) -> anyhow::Result<()> {
        self.runtime.stop().await;
        self.runtime = runtime_on(&self.store, self.cache, self.builds.changed, |_| {}).await?;
        Ok(())
    }

    /// Stop the runtime and start it again with the options `tweak` sets.
    async fn restart_with(
        &mut self,
        tweak: impl FnOnce(&mut RuntimeOptions),
    ) -> anyhow::Result<()> {
        self.runtime.stop().await;
        self.runtime = runtime_on(&self.store, self.cache, self.builds.first, tweak).await?;
        Ok(())
    }

    /// Start `name` as `id` with the JSON `input`.
    async fn start_instance(&self, id: &str, name: &str, input: &Value) -> anyhow::Result<()> {
        self.client
            .start_orchestration(id, name, &input.to_string(), None)
            .await?;
        Ok(())
    }

    /// Wait for `id` and return its output as JSON, failing unless it
    /// completed.
    async fn output(&self, id: &str) -> anyhow::Result<Value> {
        let status = self.client.wait_for_completion(id, Some(WAIT_MS)).await?;
        Ok(serde_json::from_str(&completed(status)?)?)
    }

    /// Start `name` and return its output.
    async fn call(&self, id: &str, name: &str, input: Value) -> anyhow::Result<Value> {
        self.start_instance(id, name, &input).await?;
        self.output(id).await
    }

    async fn raise(&self, id: &str, event: &str, data: &Value) -> anyhow::Result<()> {
        Ok(self
            .client
            .raise_event(id, event, &data.to_string())
            .await?)
    }

    /// Wait until `id` publishes a custom status, and return it.
    async fn status_of(&self, id: &str) -> anyhow::Result<String> {
        eventually(Duration::from_millis(WAIT_MS), || async {
            Ok(self.client.get_custom_status(id).await.ok().flatten())
        })
        .await
    }
}

/// The guest components of each language.
mod components {
    /// A language's builds of the conformance guest.
    pub struct Builds {
        /// Every scenario's orchestrations.
        pub first: &'static str,
        /// Changing, changed under the same name and version.
        pub changed: &'static str,
    }

    pub static RUST: Builds = Builds {
        first: env!("GUEST_CONFORMANCE"),
        changed: env!("GUEST_CONFORMANCE_CHANGED"),
    };
    pub static PYTHON: Builds = Builds {
        first: env!("GUEST_PY_CONFORMANCE"),
        changed: env!("GUEST_PY_CONFORMANCE_CHANGED"),
    };
    pub static JAVASCRIPT: Builds = Builds {
        first: env!("GUEST_JS_CONFORMANCE"),
        changed: env!("GUEST_JS_CONFORMANCE_CHANGED"),
    };
}

/// Declare `$scenario` for every language, cache on and off.
macro_rules! conformance {
    ($scenario:ident) => {
        mod $scenario {
            use super::*;

            async fn run(builds: &'static components::Builds, cache: bool) -> anyhow::Result<()> {
                let mut run = Run::start(builds, cache).await?;
                let result = super::scenarios::$scenario(&mut run).await;
                run.runtime.stop().await;
                result
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rust_cached() -> anyhow::Result<()> {
                run(&components::RUST, true).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rust_uncached() -> anyhow::Result<()> {
                run(&components::RUST, false).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn python_cached() -> anyhow::Result<()> {
                run(&components::PYTHON, true).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn python_uncached() -> anyhow::Result<()> {
                run(&components::PYTHON, false).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn js_cached() -> anyhow::Result<()> {
                run(&components::JAVASCRIPT, true).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn js_uncached() -> anyhow::Result<()> {
                run(&components::JAVASCRIPT, false).await
            }
        }
    };
}

/// The expectations, one function per scenario.
mod scenarios {
    use super::*;

    pub async fn hello(run: &mut Run) -> anyhow::Result<()> {
        let out = run.call("hello", "Hello", json!("Wörld")).await?;
        assert_eq!(out, json!("Hello, Wörld!"));
        Ok(())
    }

    pub async fn sequence(run: &mut Run) -> anyhow::Result<()> {
        let out = run.call("seq", "Sequence", json!(5)).await?;
        assert_eq!(out, json!([0, 2, 4, 6, 8]));
        Ok(())
    }

    pub async fn fan_out_of_1000(run: &mut Run) -> anyhow::Result<()> {
        let out = run.call("fan", "FanOut", json!(1000)).await?;
        // 2 * (0 + 1 + ... + 999)
        assert_eq!(out, json!(999_000));
        Ok(())
    }

    pub async fn activity_error_handled(run: &mut Run) -> anyhow::Result<()> {
        let out = run.call("err", "ErrorHandled", json!("boom")).await?;
        let text = out.as_str().unwrap_or_default();
        assert!(
            text.starts_with("handled: ") && text.ends_with("boom"),
            "{out}"
        );
        Ok(())
    }

    pub async fn retries_until_the_activity_succeeds(run: &mut Run) -> anyhow::Result<()> {
        // A native activity failing its first two calls: each attempt is a
        // call, so the count shows the host retried.
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        run.runtime.register_activity("Flaky", move |input| {
            let call = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if call <= 2 {
                    Err(format!("flaky failure {call}"))
                } else {
                    Ok(json!(format!("ok on call {call} with {input}")).to_string())
                }
            }
        })?;
        let out = run.call("flaky", "RetryFlaky", json!("x")).await?;
        assert_eq!(out, json!("ok on call 3 with \"x\""));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let history = run.client.get_execution_history("flaky", None).await?;
        let scheduled = count(&history, |e| matches!(e, Event::ActivityScheduled { .. }));
        let failed = count(&history, |e| matches!(e, Event::ActivityFailed { .. }));
        assert_eq!((scheduled, failed), (3, 2), "{history:?}");
        // 10 ms after the first failure, doubling after the second.
        assert_eq!(timer_delays(&history), [10, 20]);
        Ok(())
    }

    pub async fn retries_exhausted_fail_with_the_last_error(run: &mut Run) -> anyhow::Result<()> {
        let out = run
            .call("exhausted", "RetryExhausted", json!("boom"))
            .await?;
        let text = out.as_str().unwrap_or_default();
        assert!(
            text.starts_with("handled: ")
                && text.contains("activity 'Fail' failed after 3 attempts: ")
                && text.ends_with("boom"),
            "{out}"
        );
        let history = run.client.get_execution_history("exhausted", None).await?;
        let scheduled = count(&history, |e| matches!(e, Event::ActivityScheduled { .. }));
        assert_eq!(scheduled, 3, "{history:?}");
        assert_eq!(timer_delays(&history), [10, 20]);
        Ok(())
    }

    pub async fn activity_knows_the_call_it_serves(run: &mut Run) -> anyhow::Result<()> {
        let out = run.call("who", "AskWhoAmI", json!(null)).await?;
        assert_eq!(out, json!(["who", 1, "WhoAmI", 1, false]));
        Ok(())
    }

    pub async fn activity_that_lost_its_race_is_stopped(run: &mut Run) -> anyhow::Result<()> {
        // One activity slot, and a budget far beyond the test's wait: the
        // activity after the race runs only if the runtime stopped the
        // loser, which spins for ever, once its result was no longer wanted.
        run.restart_with(|options| {
            options.activity_concurrency = 1;
            options.limits.activity_budget = Duration::from_secs(120);
        })
        .await?;
        let out = run.call("spin", "RaceSpin", json!(null)).await?;
        assert_eq!(out, json!(["timer", "Hello, after!"]));
        Ok(())
    }

    pub async fn timer_race_won_by_the_event(run: &mut Run) -> anyhow::Result<()> {
        run.start_instance("race", "TimerRace", &json!(3600))
            .await?;
        run.raise("race", "go", &json!("now")).await?;
        assert_eq!(run.output("race").await?, json!("event:now"));
        Ok(())
    }

    pub async fn timer_race_won_by_the_timer(run: &mut Run) -> anyhow::Result<()> {
        let out = run.call("race", "TimerRace", json!(0.2)).await?;
        assert_eq!(out, json!("timer"));
        Ok(())
    }

    pub async fn buffered_events(run: &mut Run) -> anyhow::Result<()> {
        run.start_instance("buf", "BufferedEvents", &json!(null))
            .await?;
        // Raised in the other order, before the orchestration waits: each
        // wait takes the event of its own name.
        run.raise("buf", "b", &json!("second")).await?;
        run.raise("buf", "a", &json!("first")).await?;
        assert_eq!(run.output("buf").await?, json!(["first", "second"]));
        Ok(())
    }

    pub async fn children_and_their_failure(run: &mut Run) -> anyhow::Result<()> {
        let out = run.call("parent", "Parent", json!(3)).await?;
        assert_eq!(out[0], json!(30), "{out}");
        let failure = out[1].as_str().unwrap_or_default();
        assert!(
            failure.starts_with("failed: ") && failure.contains("negative input -3"),
            "{out}"
        );
        Ok(())
    }

    pub async fn detached_start(run: &mut Run) -> anyhow::Result<()> {
        let out = run.call("starter", "Detached", json!("loose")).await?;
        assert_eq!(out, json!("started"));
        assert_eq!(run.output("loose").await?, json!("Hello, detached!"));
        Ok(())
    }

    pub async fn continue_as_new_carries_events(run: &mut Run) -> anyhow::Result<()> {
        run.start_instance("gen", "Generations", &json!(0)).await?;
        // Raised while the first executions run: it carries over to the
        // one that waits for it.
        run.raise("gen", "done", &json!("carried")).await?;
        assert_eq!(run.output("gen").await?, json!("carried at 3"));
        Ok(())
    }

    pub async fn custom_status(run: &mut Run) -> anyhow::Result<()> {
        run.start_instance("st", "Status", &json!(null)).await?;
        assert_eq!(run.status_of("st").await?, "step1");
        run.raise("st", "next", &json!(null)).await?;
        assert_eq!(run.output("st").await?, json!("ok"));
        let last = run
            .client
            .get_custom_status("st")
            .await?
            .unwrap_or_default();
        assert_eq!(serde_json::from_str::<Value>(&last)?, json!({"step": 2}));
        Ok(())
    }

    pub async fn cancellation(run: &mut Run) -> anyhow::Result<()> {
        run.start_instance("forever", "WaitForever", &json!(null))
            .await?;
        eventually(Duration::from_millis(WAIT_MS), || async {
            let status = run.client.get_orchestration_status("forever").await?;
            Ok(matches!(status, OrchestrationStatus::Running).then_some(()))
        })
        .await?;
        run.client.cancel_orchestration("forever").await?;
        let status = run
            .client
            .wait_for_completion("forever", Some(WAIT_MS))
            .await?;
        assert!(
            matches!(status, OrchestrationStatus::Cancelled { .. }),
            "{status:?}"
        );
        Ok(())
    }

    pub async fn deterministic_now_guid_random(run: &mut Run) -> anyhow::Result<()> {
        run.start_instance("det", "Deterministic", &json!(null))
            .await?;
        let first: Value = serde_json::from_str(&run.status_of("det").await?)?;
        run.raise("det", "again", &json!(null)).await?;
        // The output is computed again by the last turn (a replay when the
        // cache is off): it must equal what the first turn published.
        assert_eq!(run.output("det").await?, first);
        assert!(
            first[0].as_u64().is_some_and(|ms| ms > 1_600_000_000_000),
            "{first}"
        );
        assert_eq!(first[1].as_str().map(str::len), Some(36), "{first}");
        Ok(())
    }

    pub async fn nondeterminism_detected_after_a_code_change(run: &mut Run) -> anyhow::Result<()> {
        run.start_instance("changing", "Changing", &json!("x"))
            .await?;
        eventually(Duration::from_millis(WAIT_MS), || async {
            let history = run.client.get_execution_history("changing", None).await?;
            Ok(history
                .iter()
                .any(|e| matches!(e, duroxide::history::Event::EventSubscribed { .. }))
                .then_some(()))
        })
        .await?;
        run.redeploy_changed().await?;
        run.raise("changing", "go", &json!("now")).await?;
        let status = run
            .client
            .wait_for_completion("changing", Some(WAIT_MS))
            .await?;
        let error = duroxide_tests::failed(status)?;
        assert!(
            error.starts_with("[DX001] nondeterministic orchestration"),
            "{error}"
        );
        assert!(error.contains("decision #1"), "{error}");
        assert!(
            error.contains(r#"history holds ActivityScheduled(name: "Greet""#),
            "{error}"
        );
        assert!(
            error.contains(r#"the code asked for ActivityScheduled(name: "Double""#),
            "{error}"
        );
        Ok(())
    }

    pub async fn unicode_and_1_mib_payloads(run: &mut Run) -> anyhow::Result<()> {
        let unicode =
            json!({"text": "zażółć gęślą jaźń — 日本語 — 🦀\u{0}", "list": [1.5, null, true]});
        assert_eq!(
            run.call("uni", "EchoPayload", unicode.clone()).await?,
            unicode
        );
        let big = json!("é".repeat(512 * 1024));
        assert_eq!(run.call("big", "EchoPayload", big.clone()).await?, big);
        Ok(())
    }
}

conformance!(hello);
conformance!(sequence);
conformance!(fan_out_of_1000);
conformance!(activity_error_handled);
conformance!(retries_until_the_activity_succeeds);
conformance!(retries_exhausted_fail_with_the_last_error);
conformance!(activity_knows_the_call_it_serves);
conformance!(activity_that_lost_its_race_is_stopped);
conformance!(timer_race_won_by_the_event);
conformance!(timer_race_won_by_the_timer);
conformance!(buffered_events);
conformance!(children_and_their_failure);
conformance!(detached_start);
conformance!(continue_as_new_carries_events);
conformance!(custom_status);
conformance!(cancellation);
conformance!(deterministic_now_guid_random);
conformance!(nondeterminism_detected_after_a_code_change);
conformance!(unicode_and_1_mib_payloads);

/// Guests that fail in their own language: each fails its instance with a
/// reason naming the language-level error, and the runtime goes on (the
/// last case completes). (`ImportsMissing` and the names bound before the
/// SDK was imported are Python's alone: a JavaScript guest's imports are
/// resolved when it is built, and its globals are not module attributes.)
mod bad_guests {
    use super::*;

    /// (orchestration, what the Python failure names, what the JS one names)
    const CASES: &[(&str, &str, &str)] = &[
        (
            "Raises",
            "KeyError: 'missing-key'",
            "TypeError: missing-key",
        ),
        (
            "ImportsMissing",
            "ModuleNotFoundError: No module named 'requests'",
            "",
        ),
        (
            "ReadsClock",
            "NondeterminismError: time.time() differs on replay",
            "NondeterminismError: Date.now() differs on replay",
        ),
        (
            "ReadsRandom",
            "NondeterminismError: random.random() differs on replay",
            "NondeterminismError: Math.random() differs on replay",
        ),
        (
            "ReadsClockBoundEarly",
            "NondeterminismError: time.time() differs on replay",
            "",
        ),
        (
            "ReadsRandomBoundEarly",
            "NondeterminismError: random.random() differs on replay",
            "",
        ),
        (
            "ReturnsNonJson",
            "PayloadError: the output of orchestration ReturnsNonJson is not JSON-serialisable",
            "PayloadError: the output of orchestration ReturnsNonJson is not JSON-serialisable",
        ),
    ];

    async fn run(
        builds: &'static components::Builds,
        python: bool,
        cache: bool,
    ) -> anyhow::Result<()> {
        let mut run = Run::start(builds, cache).await?;
        for (name, in_python, in_js) in CASES {
            let expected = if python { in_python } else { in_js };
            if expected.is_empty() {
                continue;
            }
            run.start_instance(name, name, &json!(null)).await?;
            let status = run.client.wait_for_completion(name, Some(WAIT_MS)).await?;
            let error = duroxide_tests::failed(status)?;
            assert!(error.contains(expected), "{name}: {error}");
        }
        if python {
            // The names bound before the SDK still work in activities.
            let out = run
                .call("early", "ActivityReadsClockBoundEarly", json!(null))
                .await?;
            assert_eq!(out, json!(true));
        }
        assert_eq!(
            run.call("after", "Hello", json!("still")).await?,
            json!("Hello, still!")
        );
        run.runtime.stop().await;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn python_cached() -> anyhow::Result<()> {
        run(&components::PYTHON, true, true).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn python_uncached() -> anyhow::Result<()> {
        run(&components::PYTHON, true, false).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn js_cached() -> anyhow::Result<()> {
        run(&components::JAVASCRIPT, false, true).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn js_uncached() -> anyhow::Result<()> {
        run(&components::JAVASCRIPT, false, false).await
    }
}
