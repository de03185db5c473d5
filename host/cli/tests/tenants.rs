//! `--tenant` (and `DUROXIDE_TENANT`) end to end, each step a separate
//! process on one store file: what one tenant deploys and starts, another
//! does not see; one worker serves every tenant; a bad name is refused.

mod common;

use common::{Store, guests};

#[test]
fn each_tenant_sees_its_own_components_and_instances() {
    let store = Store::new();
    let deployed = store.json(&["--tenant", "acme", "deploy", guests::HELLO_WORLD]);
    assert!(deployed["digest"].is_string(), "{deployed}");
    assert_eq!(
        store
            .json(&["--tenant", "acme", "components"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        store.json(&["components"]).as_array().map(Vec::len),
        Some(0),
        "the default tenant deployed nothing"
    );

    let worker = store.worker();
    store
        .run(&[
            "--tenant",
            "acme",
            "start",
            "HelloWorld",
            "--id",
            "h1",
            "--input",
            "\"World\"",
        ])
        .ok();
    let done = store.json(&["--tenant", "acme", "wait", "h1", "--timeout", "30000"]);
    assert_eq!(done["status"], "Completed", "{done}");

    // The environment variable names the tenant too.
    let listed = store
        .command(&["--json", "list"])
        .env("DUROXIDE_TENANT", "acme")
        .output()
        .unwrap_or_else(|e| panic!("running duroxide list: {e}"));
    let listed = common::Run::of(listed).ok().json();
    assert_eq!(listed[0]["instance"], "h1", "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // Another tenant, and the default one, see nothing of it.
    for tenant in ["default", "other"] {
        let status = store.run(&["--tenant", tenant, "status", "h1"]);
        assert_eq!(status.code, 3, "{tenant}: {}", status.stderr);
        assert_eq!(
            store
                .json(&["--tenant", tenant, "list"])
                .as_array()
                .map(Vec::len),
            Some(0)
        );
    }
    assert_eq!(worker.stop().code, 0);
}

#[test]
fn a_bad_tenant_name_or_a_key_shaped_id_is_refused() {
    let store = Store::new();
    store.deploy(guests::HELLO_WORLD);
    let bad = store.run(&["--tenant", "Acme", "list"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("tenant name 'Acme' is invalid"),
        "{}",
        bad.stderr
    );
    let key = store.run(&["start", "HelloWorld", "--id", "@acme/h1"]);
    assert_ne!(key.code, 0);
    assert!(
        key.stderr.contains("may not start with '@'"),
        "{}",
        key.stderr
    );
}
