//! `duroxide new` creates a project that builds its guest and runs it on
//! the first `cargo run`.

mod common;

use std::path::Path;
use std::process::Command;

use common::Run;

#[test]
fn a_new_project_runs_on_the_first_cargo_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let project = dir.path().join("demo");
    let created = Run::of(
        Command::new(env!("CARGO_BIN_EXE_duroxide"))
            .args(["new", "demo", "--path"])
            .arg(&project)
            .output()?,
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(created.stdout.contains("cargo run"), "{}", created.stdout);

    // This repository's dependency versions and target directory, so the
    // run reuses what its own build compiled.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(repo.join("Cargo.lock"), project.join("Cargo.lock"))?;
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?;
    let run = Run::of(
        Command::new(env!("CARGO"))
            .current_dir(&project)
            .args(["run", "-q"])
            .env("CARGO_TARGET_DIR", target)
            .env_remove("RUSTFLAGS")
            .output()?,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), r#"Completed: "Hello, world!""#);

    // A second `new` into the same place is refused and changes nothing.
    let again = Run::of(
        Command::new(env!("CARGO_BIN_EXE_duroxide"))
            .args(["new", "demo", "--path"])
            .arg(&project)
            .output()?,
    );
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("is not empty"), "{}", again.stderr);
    Ok(())
}
