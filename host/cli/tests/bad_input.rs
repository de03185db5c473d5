//! Bad input: each is one line on stderr, a non-zero exit, and nothing
//! written.

mod common;

use common::{Run, Store, guests};

/// Asserts `run` failed with `code` and one line naming `needle`.
fn refused(run: &Run, code: i32, needle: &str) {
    assert_eq!(
        run.code, code,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    assert!(lines[0].starts_with("error: "), "{}", run.stderr);
    assert!(
        run.stderr.contains(needle),
        "names {needle}: {}",
        run.stderr
    );
}

#[test]
fn a_missing_file_is_not_found_and_creates_no_store() {
    let store = Store::new();
    let missing = store.dir().join("nope.wasm");
    let run = store.run(&["deploy", &missing.display().to_string()]);
    refused(&run, 3, "nope.wasm");
    assert!(!store.db.exists(), "nothing written");
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let store = Store::new();
    let text = store.dir().join("notes.wasm");
    std::fs::write(&text, "just some text").unwrap_or_else(|e| panic!("{e}"));
    refused(
        &store.run(&["deploy", &text.display().to_string()]),
        1,
        "not WebAssembly",
    );
    assert!(!store.db.exists(), "nothing written");
}

#[test]
fn a_core_module_is_refused_as_not_a_component() {
    let store = Store::new();
    let module = store.dir().join("core.wasm");
    // The smallest core module: magic and version 1.
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap_or_else(|e| panic!("{e}"));
    refused(
        &store.run(&["deploy", &module.display().to_string()]),
        1,
        "core WebAssembly module",
    );
    assert!(!store.db.exists(), "nothing written");
}

#[test]
fn a_component_importing_what_the_host_lacks_is_refused_naming_the_import() {
    let store = Store::new();
    refused(
        &store.run(&["deploy", guests::FORBIDDEN_IMPORT]),
        1,
        "wasi:http/",
    );
    assert!(!store.db.exists(), "nothing written");
}

#[test]
fn unknown_instances_and_components_are_not_found() {
    let store = Store::new();
    store.deploy(guests::HELLO_WORLD);
    for args in [
        &["status", "ghost"][..],
        &["show", "ghost"],
        &["history", "ghost"],
        &["wait", "ghost", "--timeout", "100"],
        &["raise", "ghost", "go"],
        &["remove", "ffff"],
    ] {
        let run = store.run(args);
        refused(&run, 3, if args[0] == "remove" { "ffff" } else { "ghost" });
    }
    // A start of an orchestration nobody deployed names what is deployed.
    refused(&store.run(&["start", "Nope"]), 3, "HelloWorld 1.0.0");
    assert_eq!(store.json(&["list"]).as_array().map(Vec::len), Some(0));
}

#[test]
fn a_command_on_a_missing_store_creates_nothing() {
    let store = Store::new();
    refused(&store.run(&["list"]), 3, "no store");
    assert!(!store.db.exists());
}

#[test]
fn a_database_of_another_application_or_a_newer_build_is_refused_untouched() {
    let store = Store::new();
    let theirs = store.dir().join("theirs.db");
    let newer = store.dir().join("newer.db");
    for (file, setup) in [
        (&theirs, "CREATE TABLE customers (id INTEGER PRIMARY KEY);"),
        (
            &newer,
            "CREATE TABLE future (x); PRAGMA user_version = 999;",
        ),
    ] {
        let conn = rusqlite::Connection::open(file).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(setup).unwrap_or_else(|e| panic!("{e}"));
    }
    for (file, needle) in [(&theirs, "another application"), (&newer, "newer duroxide")] {
        let before = std::fs::read(file).unwrap_or_else(|e| panic!("{e}"));
        let run = Store::run_on(file, &["deploy", guests::HELLO_WORLD]);
        refused(&run, 1, needle);
        let after = std::fs::read(file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(before, after, "{} was changed", file.display());
    }
}

#[test]
fn a_wrong_command_line_is_a_usage_error() {
    let store = Store::new();
    assert_eq!(store.run(&["deploy"]).code, 2);
    assert_eq!(store.run(&["frobnicate"]).code, 2);
    assert_eq!(store.run(&["--help"]).code, 0);
}
