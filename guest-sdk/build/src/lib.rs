//! Build Rust guest components to WebAssembly from a `build.rs`.
//!
//! ```ignore
//! // build.rs of a crate that embeds or tests guest components
//! fn main() -> Result<(), duroxide_guest_build::BuildError> {
//!     // Sets GUEST_HELLO_WORLD to the path of hello_world.wasm for `env!`.
//!     duroxide_guest_build::export(&["hello-world"])
//! }
//! ```
//!
//! The guests are built by a nested `cargo build --target wasm32-wasip2
//! --profile guest` into their own target directory, so the outer build and
//! the nested one never wait on each other's locks.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target guest components are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo profile guests are built with (defined in the workspace manifest).
pub const PROFILE: &str = "guest";

/// A guest component that was built.
#[derive(Debug, Clone)]
pub struct BuiltGuest {
    /// The package name.
    pub package: String,
    /// Where its `.wasm` file is.
    pub path: PathBuf,
}

impl BuiltGuest {
    /// The package name as an identifier: `hello-world` becomes `HELLO_WORLD`.
    pub fn const_name(&self) -> String {
        self.package.replace('-', "_").to_uppercase()
    }
}

/// Why building guests failed.
#[derive(Debug)]
pub enum BuildError {
    /// A command could not be started.
    Spawn(String, std::io::Error),
    /// A command ran and failed.
    Failed(String),
    /// The build script environment lacks a variable cargo always sets.
    Env(&'static str),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Spawn(cmd, e) => write!(f, "cannot run {cmd}: {e}"),
            BuildError::Failed(msg) => f.write_str(msg),
            BuildError::Env(var) => write!(f, "{var} is not set; call this from a build script"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Build the guest `packages` of the current workspace and return their
/// `.wasm` files. Call from a build script; it also tells cargo to rerun the
/// build script when guest sources, the SDK or the WIT contract change.
pub fn build(packages: &[&str]) -> Result<Vec<BuiltGuest>, BuildError> {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or(BuildError::Env("CARGO_MANIFEST_DIR"))?,
    );
    let built = build_in(&manifest_dir, packages)?;
    let workspace = workspace_root(&manifest_dir)?;
    for dir in ["wit", "guest-sdk/rust", "examples", "tests/guests"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    for guest in &built {
        // A deleted output makes cargo run the build script again.
        println!("cargo:rerun-if-changed={}", guest.path.display());
    }
    Ok(built)
}

/// Build the guest `packages` and export each `.wasm` path to the crate being
/// built as the environment variable `GUEST_<NAME>` (read it with `env!`).
/// A build script that calls this needs nothing else.
pub fn export(packages: &[&str]) -> Result<(), BuildError> {
    for guest in build(packages)? {
        println!(
            "cargo:rustc-env=GUEST_{}={}",
            guest.const_name(),
            guest.path.display()
        );
    }
    Ok(())
}

/// Build the guest `packages` of the workspace that contains `dir`, outside
/// a build script (a benchmark or a tool, say).
pub fn build_in(dir: &Path, packages: &[&str]) -> Result<Vec<BuiltGuest>, BuildError> {
    let workspace = workspace_root(dir)?;
    let target_dir = workspace.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ensure_target()?;

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .map_err(|e| BuildError::Spawn(format!("{cargo} build"), e))?;
    if !status.success() {
        return Err(BuildError::Failed(format!(
            "building guest components {packages:?} failed ({status})"
        )));
    }

    let out = target_dir.join(TARGET).join(PROFILE);
    let built: Vec<BuiltGuest> = packages
        .iter()
        .map(|p| BuiltGuest {
            package: p.to_string(),
            path: out.join(format!("{}.wasm", p.replace('-', "_"))),
        })
        .collect();
    Ok(built)
}

/// The directory of the workspace containing `dir`.
fn workspace_root(dir: &Path) -> Result<PathBuf, BuildError> {
    let mut candidate = Some(dir);
    let mut root = None;
    while let Some(d) = candidate {
        let manifest = d.join("Cargo.toml");
        if std::fs::read_to_string(&manifest).is_ok_and(|s| s.contains("[workspace]")) {
            root = Some(d.to_path_buf());
        }
        candidate = d.parent();
    }
    root.ok_or_else(|| BuildError::Failed(format!("no workspace above {}", dir.display())))
}

/// Install the wasm32-wasip2 target through rustup when it is missing, so a
/// fresh machine needs nothing installed by hand.
fn ensure_target() -> Result<(), BuildError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| BuildError::Spawn(rustc.clone(), e))?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if output.status.success() && Path::new(&libdir).exists() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|e| BuildError::Spawn("rustup target add".into(), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed(format!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed"
        )))
    }
}
