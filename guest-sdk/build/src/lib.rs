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
//! The guests are packages of the workspace the calling crate belongs to,
//! in any layout. They are built by a nested `cargo build --release --target
//! wasm32-wasip2` into `guests/` under that workspace's target directory
//! (`CARGO_TARGET_DIR` and `build.target-dir` are honoured), so the outer
//! build and the nested one never wait on each other's locks. The guest
//! settings (small code, fast to compile for the host) are passed to the
//! nested build, so the workspace needs no profile of its own.

mod fs;
mod languages;
mod metadata;
mod python_world;
pub mod tools;

pub use languages::{Language, build_from, build_guest, export_guests};

use std::path::{Path, PathBuf};
use std::process::Command;

use metadata::Workspace;

/// The target guest components are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The release-profile settings guests are built with: small code that the
/// host compiles fast. Passed as environment overrides, so they apply
/// whatever the workspace's own release profile says.
const GUEST_PROFILE: &[(&str, &str)] = &[
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s"),
    ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
    ("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    ("CARGO_PROFILE_RELEASE_INCREMENTAL", "true"),
    ("CARGO_PROFILE_RELEASE_LTO", "false"),
];

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
#[non_exhaustive]
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

/// Build the guest `packages` of the calling crate's workspace and return
/// their `.wasm` files. Call from a build script; it tells cargo to run the
/// build script again exactly when what the guests are built from changes:
/// their own packages and the path dependencies they use (the SDK, and the
/// WIT contract the SDK is generated from).
pub fn build(packages: &[&str]) -> Result<Vec<BuiltGuest>, BuildError> {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or(BuildError::Env("CARGO_MANIFEST_DIR"))?,
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or(BuildError::Env("OUT_DIR"))?);
    let workspace = Workspace::of(&manifest_dir)?;
    let built = build_guests(&workspace, packages)?;
    for input in workspace.inputs_of(packages)? {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    // Copied into this crate's own output directory: the guests' shared
    // target directory may be cleaned or rebuilt by another crate, and
    // watching files there would run this script again on every build
    // (they are written while it runs).
    built
        .into_iter()
        .map(|guest| {
            let copy = out_dir.join(guest.path.file_name().unwrap_or_default());
            std::fs::copy(&guest.path, &copy).map_err(|e| {
                BuildError::Failed(format!("cannot copy {}: {e}", guest.path.display()))
            })?;
            Ok(BuiltGuest {
                package: guest.package,
                path: copy,
            })
        })
        .collect()
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
    build_guests(&Workspace::of(dir)?, packages)
}

/// Runs the nested build of `packages` in `workspace`.
fn build_guests(workspace: &Workspace, packages: &[&str]) -> Result<Vec<BuiltGuest>, BuildError> {
    let target_dir = workspace.target_directory.join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ensure_target()?;

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&workspace.root)
        .args(["build", "--release", "--target", TARGET])
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
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(GUEST_PROFILE.iter().copied());
    let status = cmd
        .status()
        .map_err(|e| BuildError::Spawn(format!("{cargo} build"), e))?;
    if !status.success() {
        return Err(BuildError::Failed(format!(
            "building guest components {packages:?} failed ({status})"
        )));
    }

    let out = target_dir.join(TARGET).join("release");
    let built: Vec<BuiltGuest> = packages
        .iter()
        .map(|p| BuiltGuest {
            package: p.to_string(),
            path: out.join(format!("{}.wasm", p.replace('-', "_"))),
        })
        .collect();
    Ok(built)
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
