//! `duroxide new`: a project to start from, a guest crate and a host
//! example in a workspace of their own, that runs on the first `cargo run`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::exit::Code;

/// Where this duroxide's sources are: the path dependencies the project
/// names, unless `--duroxide` says otherwise.
pub(crate) fn default_sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// Creates project `name` in `dir` (default `./name`), depending on the
/// duroxide sources at `sources`.
pub fn new(name: &str, dir: Option<PathBuf>, sources: Option<PathBuf>) -> anyhow::Result<Code> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        bail!(
            "'{name}' is not a project name: use lower-case letters, digits and '-', starting with a letter"
        );
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some())? {
        bail!(
            "{} exists and is not empty: choose another name or --path",
            dir.display()
        );
    }
    let sources = sources.unwrap_or_else(default_sources);
    let sources = sources
        .canonicalize()
        .with_context(|| format!("the duroxide sources are not at {}", sources.display()))?;
    for (path, text) in files(name, &sources) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created {name} in {}: `cd {}` and `cargo run` builds the guest and runs it",
        dir.display(),
        dir.display()
    );
    Ok(Code::Ok)
}

/// The toolchain file of the duroxide sources at `sources`, or one naming
/// the toolchain they need.
fn toolchain(sources: &Path) -> String {
    std::fs::read_to_string(sources.join("rust-toolchain.toml")).unwrap_or_else(|_| {
        "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"wasm32-wasip2\"]\n".into()
    })
}

/// The project's files.
fn files(name: &str, sources: &Path) -> Vec<(&'static str, String)> {
    let toolchain_file = toolchain(sources);
    let sources = sources.display();
    let guest_const = format!("GUEST_{}_GUEST", name.replace('-', "_").to_uppercase());
    vec![
        (
            "Cargo.toml",
            r#"[workspace]
resolver = "3"
members = ["host", "guest"]
# The guest links only for wasm32-wasip2; the host's build script builds it.
default-members = ["host"]

# wasmtime compiles guests slowly without optimisation.
[profile.dev.package."*"]
opt-level = 2
debug = false
"#
            .into(),
        ),
        // The toolchain the duroxide sources pin, with the guest target.
        ("rust-toolchain.toml", toolchain_file),
        (
            ".cargo/config.toml",
            r#"# SQLite without memory statistics: each allocation otherwise takes a lock.
[env]
LIBSQLITE3_FLAGS = "-DSQLITE_DEFAULT_MEMSTATUS=0"
"#
            .into(),
        ),
        (".gitignore", "/target\n*.db*\n".into()),
        (
            "host/Cargo.toml",
            format!(
                r#"[package]
name = "{name}-host"
version = "0.1.0"
edition = "2024"

[dependencies]
duroxide = {{ path = "{sources}/host" }}
tokio = {{ version = "1", features = ["rt-multi-thread", "macros"] }}

[build-dependencies]
duroxide-guest-build = {{ path = "{sources}/guest-sdk/build" }}
"#
            ),
        ),
        (
            "host/build.rs",
            format!(
                r#"//! Builds the guest component and sets {guest_const} to its path.

fn main() -> Result<(), duroxide_guest_build::BuildError> {{
    duroxide_guest_build::export(&["{name}-guest"])
}}
"#
            ),
        ),
        (
            "host/src/main.rs",
            format!(
                r##"//! Runs the guest's Greet orchestration once, on an in-memory store.

use std::sync::Arc;

use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::{{Client, DuroxideRuntime}};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {{
    let store = Arc::new(SqliteHistoryStore::new_in_memory().await?);
    let mut runtime = DuroxideRuntime::new(store.clone());
    runtime.load_component_file(env!("{guest_const}")).await?;
    runtime.start().await?;

    let client = Client::new(store);
    client
        .start_orchestration("greet-1", "Greet", r#"{{"name":"world"}}"#, None)
        .await?;
    let status = client.wait_for_completion("greet-1", Some(30_000)).await?;
    println!("{{status}}");
    runtime.stop().await;
    Ok(())
}}
"##
            ),
        ),
        (
            "guest/Cargo.toml",
            format!(
                r#"[package]
name = "{name}-guest"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
duroxide-guest = {{ path = "{sources}/guest-sdk/rust" }}
serde = {{ version = "1", features = ["derive"] }}
"#
            ),
        ),
        (
            "guest/src/lib.rs",
            r#"//! The orchestrations and activities of this component.

use duroxide_guest::{OrchestrationContext, Registry};
use serde::{Deserialize, Serialize};

/// What Greet takes.
#[derive(Serialize, Deserialize)]
struct Greeting {
    name: String,
}

/// An orchestration: durable control flow, replayed from its history.
async fn greet(ctx: OrchestrationContext, input: Greeting) -> Result<String, String> {
    ctx.schedule_activity_typed("Say", &input).await
}

/// An activity: where side effects go.
fn say(input: Greeting) -> Result<String, String> {
    Ok(format!("Hello, {}!", input.name))
}

fn register(registry: &mut Registry) {
    registry
        .orchestration_typed("Greet", greet)
        .activity_typed("Say", say);
}

duroxide_guest::component!(register);
"#
            .into(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_constant_follows_the_project_name() {
        let files = files("order-flow", Path::new("/src"));
        let build = files
            .iter()
            .find(|(path, _)| *path == "host/build.rs")
            .map(|(_, text)| text.as_str())
            .unwrap_or_default();
        assert!(build.contains("GUEST_ORDER_FLOW_GUEST"), "{build}");
        assert!(
            build.contains(r#"export(&["order-flow-guest"])"#),
            "{build}"
        );
    }

    #[test]
    fn a_bad_name_or_a_used_directory_is_refused() {
        assert!(new("Bad Name", None, None).is_err());
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("keep"), "x").expect("write");
        let error = new("demo", Some(dir.path().to_path_buf()), None).expect_err("not empty");
        assert!(error.to_string().contains("is not empty"), "{error}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep"))
                .ok()
                .as_deref(),
            Some("x")
        );
    }
}
