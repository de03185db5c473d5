//! `deploy --policy FILE`: the policy is stored with the component and a
//! worker in another process runs the component under it; a policy file
//! that is not a policy is refused before anything is written.

mod common;

use common::{Store, guests};

#[test]
fn a_worker_runs_a_component_under_the_policy_it_was_deployed_with() {
    let store = Store::new();
    let policy = store.dir().join("policy.toml");
    // HelloWorld's history holds more than three events: the limit ends it.
    std::fs::write(
        &policy,
        "max_history_events = 3\n[limits]\nmax_memory_bytes = 33554432\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let deployed = store.json(&[
        "deploy",
        guests::HELLO_WORLD,
        "--policy",
        &policy.display().to_string(),
    ]);
    assert_eq!(deployed["policy"]["max_history_events"], 3, "{deployed}");
    assert_eq!(
        deployed["policy"]["limits"]["max_memory_bytes"], 33_554_432,
        "{deployed}"
    );
    let worker = store.worker();
    store
        .run(&["start", "HelloWorld", "--id", "h1", "--input", "\"World\""])
        .ok();
    // A failed instance makes `wait` exit with a failure, its JSON still out.
    let waited = store.run(&["--json", "wait", "h1", "--timeout", "30000"]);
    assert_ne!(waited.code, 0, "{}", waited.stdout);
    let done = waited.json();
    assert_eq!(done["status"], "Failed", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("[DX013] "), "{done}");
    assert!(
        error.contains("more than the limit of 3 (max_history_events)"),
        "{done}"
    );
    assert_eq!(worker.stop().code, 0);
}

#[test]
fn the_same_component_under_another_policy_is_refused() {
    let store = Store::new();
    let policy = store.dir().join("policy.json");
    std::fs::write(&policy, r#"{"max_concurrent_activities": 2}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let path = policy.display().to_string();
    store
        .run(&["deploy", guests::HELLO_WORLD, "--policy", &path])
        .ok();
    // Again with the same policy: nothing changes.
    store
        .run(&["deploy", guests::HELLO_WORLD, "--policy", &path])
        .ok();
    let run = store.run(&["deploy", guests::HELLO_WORLD]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("with another policy"), "{}", run.stderr);
}

#[test]
fn a_policy_file_with_an_unknown_field_is_refused_naming_it() {
    let store = Store::new();
    let policy = store.dir().join("policy.toml");
    std::fs::write(&policy, "[limits]\nmax_memory = 1\n").unwrap_or_else(|e| panic!("{e}"));
    let run = store.run(&[
        "deploy",
        guests::HELLO_WORLD,
        "--policy",
        &policy.display().to_string(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("max_memory"), "{}", run.stderr);
    assert!(!store.db.exists(), "nothing written");
    let missing = store.run(&["deploy", guests::HELLO_WORLD, "--policy", "nope.json"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
}
