//! The CLI flow end to end, each step a separate process on one store
//! file: deploy, a worker, start and raise from other processes, live
//! deployments, upgrades and offline replay checks.

mod common;

use common::{Store, guests};

#[test]
fn a_worker_runs_what_was_deployed_for_starts_and_events_from_other_processes() {
    let store = Store::new();
    let digest = store.deploy(guests::UPGRADE_V1);
    let listed = store.json(&["components"]);
    assert_eq!(listed[0]["digest"], digest.as_str());
    assert_eq!(listed[0]["manifest"]["orchestrations"][0][0], "Upgrade");
    let worker = store.worker();

    store
        .run(&["start", "Upgrade", "--id", "u1", "--input", "plain"])
        .ok();
    store.wait_for_event_wait("u1");
    let status = store.json(&["status", "u1"]);
    assert_eq!(status["status"], "Running");
    assert_eq!(
        status["component"],
        digest.as_str(),
        "pinned to what it started on"
    );
    store.run(&["raise", "u1", "go", "--data", "now"]).ok();
    let done = store.json(&["wait", "u1", "--timeout", "30000"]);
    assert_eq!(done["status"], "Completed");
    assert_eq!(done["output"], "v1:a:now");

    let listed = store.json(&["list", "--status", "completed"]);
    assert_eq!(listed[0]["instance"], "u1");
    let history = store.json(&["history", "u1"]);
    assert_eq!(history[0]["kind"], "OrchestrationStarted");
    let health = store.json(&["health"]);
    assert_eq!(health["completed"], 1);

    let stopped = worker.stop();
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    assert!(stopped.stderr.contains("stopped"), "{}", stopped.stderr);
}

#[test]
fn a_running_worker_picks_up_a_new_deployment() {
    let store = Store::new();
    store.deploy(guests::UPGRADE_V1);
    let worker = store.worker();
    // Deployed while the worker runs: it loads the component by itself.
    store.deploy(guests::HELLO_WORLD);
    store
        .run(&["start", "HelloWorld", "--id", "h1", "--input", "\"World\""])
        .ok();
    let done = store.json(&["wait", "h1", "--timeout", "30000"]);
    assert_eq!(done["status"], "Completed", "{done}");
    assert_eq!(worker.stop().code, 0);
}

#[test]
fn an_upgrade_moves_the_instances_that_replay_and_leaves_the_others_on_the_old_code() {
    let store = Store::new();
    let old = store.deploy(guests::UPGRADE_V1);
    let worker = store.worker();
    store
        .run(&["start", "Upgrade", "--id", "plain", "--input", "plain"])
        .ok();
    store
        .run(&["start", "Upgrade", "--id", "extra", "--input", "extra"])
        .ok();
    store.wait_for_event_wait("plain");
    store.wait_for_event_wait("extra");

    // The check deploys nothing and says which would diverge (exit 4).
    let check = store.run(&["--json", "deploy", guests::UPGRADE_V2, "--check"]);
    assert_eq!(check.code, 4, "{}", check.stderr);
    assert_eq!(
        store.json(&["components"]).as_array().map(Vec::len),
        Some(1)
    );

    let report = store.json(&["deploy", guests::UPGRADE_V2, "--upgrade"]);
    let new = report["deployed"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(new, old);
    let rows = report["instances"].as_array().cloned().unwrap_or_default();
    let row = |id: &str| {
        rows.iter()
            .find(|r| r["instance"] == id)
            .unwrap_or_else(|| panic!("{id} is in the report: {report}"))
            .clone()
    };
    assert_eq!(row("plain")["clean"], true);
    assert_eq!(row("plain")["moved"], true);
    assert_eq!(row("extra")["clean"], false);
    assert_eq!(row("extra")["moved"], false);
    let divergence = row("extra")["divergence"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        divergence.contains("extra-v1") && divergence.contains("extra-v2"),
        "the report names both decisions: {divergence}"
    );
    assert_eq!(store.json(&["status", "plain"])["component"], new.as_str());
    assert_eq!(store.json(&["status", "extra"])["component"], old.as_str());

    // The old component stays while an instance is pinned to it.
    let refused = store.run(&["remove", &old]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("extra"), "{}", refused.stderr);

    store.run(&["raise", "plain", "go", "--data", "p"]).ok();
    store.run(&["raise", "extra", "go", "--data", "e"]).ok();
    let plain = store.json(&["wait", "plain", "--timeout", "30000"]);
    assert_eq!(
        plain["output"], "v2:a:p",
        "moved onto the new code: {plain}"
    );
    let extra = store.json(&["wait", "extra", "--timeout", "30000"]);
    assert_eq!(
        extra["output"], "v1:a:e",
        "finished on the old code: {extra}"
    );

    store.run(&["remove", &old[..12]]).ok();
    assert_eq!(
        store.json(&["components"]).as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(worker.stop().code, 0);
}

#[test]
fn replay_finds_where_a_new_build_diverges() {
    let store = Store::new();
    store.deploy(guests::UPGRADE_V1);
    let worker = store.worker();
    store
        .run(&["start", "Upgrade", "--id", "r1", "--input", "extra"])
        .ok();
    store.wait_for_event_wait("r1");
    assert_eq!(worker.stop().code, 0);

    let same = store.run(&["--json", "replay", "r1", "--component", guests::UPGRADE_V1]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert_eq!(same.json()["deterministic"], true);

    let changed = store.run(&["--json", "replay", "r1", "--component", guests::UPGRADE_V2]);
    assert_eq!(changed.code, 4, "{}", changed.stderr);
    let verdict = changed.json();
    assert_eq!(verdict["deterministic"], false);
    let divergence = verdict["divergence"].as_str().unwrap_or_default();
    assert!(divergence.contains("DX001"), "{divergence}");
    assert!(
        divergence.contains("extra-v1") && divergence.contains("extra-v2"),
        "{divergence}"
    );
    let people = store.run(&["replay", "r1", "--component", guests::UPGRADE_V2]);
    assert!(people.stdout.contains("diverges"), "{}", people.stdout);
}

#[test]
fn a_worker_serves_metrics_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};

    let store = Store::new();
    store.deploy(guests::HELLO_WORLD);
    let mut child = store
        .command(&["run", "--metrics", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting the worker: {e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let mut lines = BufReader::new(stderr).lines();
    // The worker prints where it serves before anything else.
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the worker ended before serving metrics"))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(rest) = line.strip_prefix("metrics at http://") {
            break rest.trim_end_matches("/metrics").to_owned();
        }
    };
    store
        .run(&["start", "HelloWorld", "--id", "m1", "--input", "\"M\""])
        .ok();
    store.json(&["wait", "m1", "--timeout", "30000"]);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("{e}"));
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(body.contains("duroxide_orchestrations_started"), "{body}");

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(exit.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
}
