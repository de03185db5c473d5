//! `duroxide build` turns the Python and JavaScript order-processing
//! examples into components, which deploy and run through the CLI like
//! the Rust one: each step a separate process on one store file.

mod common;

use std::path::Path;

use common::Store;

/// The workspace's root: the examples and the SDKs are there.
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn build_deploy_and_run(example: &str) {
    let store = Store::new();
    let wasm = store.dir().join(format!("{example}.wasm"));
    let wasm = wasm.to_string_lossy();
    let example_dir = root().join("examples").join(example);
    let built = store
        .run(&["build", &example_dir.to_string_lossy(), "-o", &wasm])
        .ok();
    assert!(built.stdout.starts_with("built "), "{}", built.stdout);
    store.deploy(&wasm);
    let worker = store.worker();

    let order = r#"{"order_id": 7}"#;
    store
        .run(&["start", "ProcessOrder", "--id", "o7", "--input", order])
        .ok();
    store.wait_for_event_wait("o7");
    store
        .run(&[
            "raise",
            "o7",
            "ShippingReady",
            "--data",
            r#"{"carrier": "UPS"}"#,
        ])
        .ok();
    let done = store.json(&["wait", "o7", "--timeout", "30000"]);
    assert_eq!(done["status"], "Completed", "{done}");
    let output: serde_json::Value = serde_json::from_str(done["output"].as_str().unwrap_or(""))
        .unwrap_or_else(|e| panic!("output is not JSON ({e}): {done}"));
    assert_eq!(
        output,
        serde_json::json!({"status": "completed", "shipping": {"carrier": "UPS"}})
    );

    // A declined payment fails the instance with the activity's error,
    // named as the guest's language names it.
    let declined = r#"{"order_id": 8, "decline": true}"#;
    store
        .run(&["start", "ProcessOrder", "--id", "o8", "--input", declined])
        .ok();
    // `wait` exits non-zero for an instance that failed.
    let failed = store
        .run(&["--json", "wait", "o8", "--timeout", "30000"])
        .json();
    assert_eq!(failed["status"], "Failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("ActivityError: ") && error.contains("payment for order 8 declined"),
        "{failed}"
    );
    assert_eq!(worker.stop().code, 0);
}

#[test]
fn the_python_example_builds_deploys_and_runs() {
    build_deploy_and_run("order-processing-py");
}

#[test]
fn the_javascript_example_builds_deploys_and_runs() {
    build_deploy_and_run("order-processing-js");
}

#[test]
fn a_directory_without_a_guest_is_refused_clearly() {
    let store = Store::new();
    let run = store.run(&["build", &store.dir().to_string_lossy()]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("holds neither app.py") && run.stderr.contains("app.js"),
        "{}",
        run.stderr
    );
}

/// `duroxide build` on a Python guest whose `app.py` is `app` must fail,
/// saying `message`.
fn python_build_fails_saying(app: &str, message: &str) {
    let store = Store::new();
    let dir = store.dir().join("guest");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    std::fs::write(dir.join("app.py"), app).unwrap_or_else(|e| panic!("cannot write app.py: {e}"));
    let wasm = store.dir().join("guest.wasm");
    let run = store.run(&[
        "build",
        &dir.to_string_lossy(),
        "-o",
        &wasm.to_string_lossy(),
    ]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains(message), "{}", run.stderr);
}

#[test]
fn http_beside_orchestrations_fails_the_python_build_clearly() {
    python_build_fails_saying(
        "import duroxide\nimport duroxide.http\n\n\
         @duroxide.orchestration(\"Fetches\")\ndef fetches(ctx, url):\n    return url\n\n\
         from duroxide.exports import Orchestrator, Activities, Component\n",
        "duroxide.http is only for activity-only components",
    );
}

#[test]
fn orchestrations_in_an_activity_only_python_build_fail_it_clearly() {
    python_build_fails_saying(
        "import duroxide\n\n\
         @duroxide.orchestration(\"Lost\")\ndef lost(ctx, _):\n    return 1\n\n\
         from duroxide.exports import Activities, Component\n",
        "registers orchestrations, but it is built as an activity-only",
    );
}
