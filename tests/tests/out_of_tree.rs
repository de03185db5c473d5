//! A workspace of a user's own, outside this repository — a host crate and a
//! guest crate depending on this repository's crates by path, no profile of
//! its own — builds its guest with the build helper, runs it, builds again
//! without rerunning anything, and rebuilds when the guest's source changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// This repository.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The workspace's files, with path dependencies on `repo`.
fn files(repo: &Path) -> Vec<(&'static str, String)> {
    let repo = repo.display();
    vec![
        (
            "Cargo.toml",
            r#"[workspace]
resolver = "3"
members = ["host", "guest"]
default-members = ["host"]

# Dependencies optimised in dev builds, as this repository does, so the
# test reuses what its own build compiled.
[profile.dev.package."*"]
opt-level = 2
debug = false

[profile.dev]
debug = "line-tables-only"
"#
            .into(),
        ),
        (
            "host/Cargo.toml",
            format!(
                r#"[package]
name = "my-host"
version = "0.1.0"
edition = "2024"

[dependencies]
duroxide = {{ path = "{repo}/host" }}
tokio = {{ version = "1", features = ["rt-multi-thread", "macros"] }}

[build-dependencies]
duroxide-guest-build = {{ path = "{repo}/guest-sdk/build" }}
"#
            ),
        ),
        (
            "host/build.rs",
            r#"fn main() -> Result<(), duroxide_guest_build::BuildError> {
    duroxide_guest_build::export(&["my-guest"])
}
"#
            .into(),
        ),
        (
            "host/src/main.rs",
            r#"use std::sync::Arc;

use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::{Client, DuroxideRuntime};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteHistoryStore::new_in_memory().await?);
    let mut runtime = DuroxideRuntime::new(store.clone());
    runtime.load_component_file(env!("GUEST_MY_GUEST")).await?;
    runtime.start().await?;
    let client = Client::new(store);
    client.start_orchestration("greet-1", "Greet", "world", None).await?;
    let status = client.wait_for_completion("greet-1", Some(30_000)).await?;
    println!("{status}");
    runtime.stop().await;
    Ok(())
}
"#
            .into(),
        ),
        (
            "guest/Cargo.toml",
            format!(
                r#"[package]
name = "my-guest"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
duroxide-guest = {{ path = "{repo}/guest-sdk/rust" }}
"#
            ),
        ),
        ("guest/src/lib.rs", guest_source("Hello")),
    ]
}

/// The guest's code, greeting with `greeting`.
fn guest_source(greeting: &str) -> String {
    format!(
        r#"use duroxide_guest::{{OrchestrationContext, Registry}};

async fn greet(ctx: OrchestrationContext, input: String) -> Result<String, String> {{
    ctx.schedule_activity("Say", &input).await
}}

fn say(input: String) -> Result<String, String> {{
    Ok(format!("{greeting}, {{input}}!"))
}}

fn register(registry: &mut Registry) {{
    registry.orchestration("Greet", greet).activity("Say", say);
}}

duroxide_guest::component!(register);
"#
    )
}

/// Runs cargo with `args` in `dir`, on this repository's target directory
/// (so dependencies compiled for its own tests are reused); fails the test
/// with cargo's output if cargo fails.
fn cargo(dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?;
    let output = Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "cargo {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

#[test]
fn a_workspace_of_its_own_builds_runs_and_rebuilds_only_when_the_guest_changes()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let repo = repo();
    for (path, text) in files(&repo) {
        let path = dir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    // The same toolchain and dependency versions as this repository's build.
    for file in ["Cargo.lock", "rust-toolchain.toml"] {
        std::fs::copy(repo.join(file), dir.path().join(file))?;
    }

    let run = cargo(dir.path(), &["run", "-q", "-p", "my-host"])?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(stdout.trim(), "Completed: Hello, world!");

    // Nothing changed: nothing is compiled and no build script runs.
    let again = cargo(dir.path(), &["build", "-v", "-p", "my-host"])?;
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(!log.contains("Compiling"), "{log}");
    assert!(!log.contains("build-script-build`"), "{log}");
    assert!(log.contains("Fresh my-host"), "{log}");

    // The guest's source changed: the build script runs and the new guest
    // is what runs.
    std::fs::write(dir.path().join("guest/src/lib.rs"), guest_source("Howdy"))?;
    let run = cargo(dir.path(), &["run", "-q", "-p", "my-host"])?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(stdout.trim(), "Completed: Howdy, world!");
    Ok(())
}
