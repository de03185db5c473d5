//! Guests written in Python and JavaScript, built with the SDKs under
//! `guest-sdk/` and the pinned tools of [`crate::tools`].
//!
//! A guest is a directory. A Python guest holds `app.py`, which imports
//! `duroxide` and ends with `from duroxide.exports import Orchestrator,
//! Activities, Component` (an activity-only one, which may use HTTP, leaves
//! out `Orchestrator`: see [`crate::python_world`]). A JavaScript guest
//! holds `app.js`, which imports `./duroxide.js` (the build puts the SDK
//! there) and ends with
//! `export { orchestrator, activities, component } from './duroxide.js'`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fs::{absolute, copy_file, copy_sources, mkdir, read, remove_dir};
use crate::metadata::Workspace;
use crate::python_world::{self, ACTIVITY_HTTP, WORKFLOWS};
use crate::tools::{componentize_js, componentize_py, run};
use crate::{BuildError, BuiltGuest};

/// A guest language other than Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Language {
    /// `app.py`, built with componentize-py.
    Python,
    /// `app.js`, built with componentize-js.
    JavaScript,
}

impl Language {
    /// The prefix of the environment variable [`crate::export_guests`] sets.
    fn env_prefix(self) -> &'static str {
        match self {
            Language::Python => "GUEST_PY_",
            Language::JavaScript => "GUEST_JS_",
        }
    }

    /// The guest's entry file.
    fn entry(self) -> &'static str {
        match self {
            Language::Python => "app.py",
            Language::JavaScript => "app.js",
        }
    }
}

impl Language {
    /// The language of the guest in `dir`, by its entry file.
    pub fn of_dir(dir: &Path) -> Result<Self, BuildError> {
        [Language::Python, Language::JavaScript]
            .into_iter()
            .find(|l| dir.join(l.entry()).is_file())
            .ok_or_else(|| {
                BuildError::Failed(format!(
                    "{} holds neither app.py (a Python guest) nor app.js (a JavaScript guest)",
                    dir.display()
                ))
            })
    }
}

/// Build the guest in `dir` into `<target>/guests-<lang>/<name>.wasm` of
/// the workspace holding the crate at `crate_dir`, `name` being the guest
/// directory's name. The SDK and the WIT contract are the workspace's.
pub fn build_guest(
    crate_dir: &Path,
    language: Language,
    dir: &Path,
) -> Result<BuiltGuest, BuildError> {
    build_with(&Workspace::of(crate_dir)?, language, dir)
}

fn build_with(
    workspace: &Workspace,
    language: Language,
    dir: &Path,
) -> Result<BuiltGuest, BuildError> {
    let out_dir = workspace.target_directory.join(match language {
        Language::Python => "guests-py",
        Language::JavaScript => "guests-js",
    });
    build_from(
        &workspace.root,
        &workspace.target_directory.join("tools"),
        language,
        dir,
        &out_dir,
    )
}

/// Build the guest in `dir` into `out_dir/<name>.wasm` with the SDK and
/// WIT contract of the duroxide sources at `sources`, installing the build
/// tools into `tools` if they are not there yet.
pub fn build_from(
    sources: &Path,
    tools: &Path,
    language: Language,
    dir: &Path,
    out_dir: &Path,
) -> Result<BuiltGuest, BuildError> {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .ok_or_else(|| BuildError::Failed(format!("{} is not a directory", dir.display())))?;
    let entry = dir.join(language.entry());
    if !entry.exists() {
        return Err(BuildError::Failed(format!(
            "{} is missing",
            entry.display()
        )));
    }
    // Absolute paths: the JavaScript build runs in a directory of its own.
    mkdir(out_dir)?;
    mkdir(tools)?;
    let (sources, tools, out_dir) = (absolute(sources)?, absolute(tools)?, absolute(out_dir)?);
    let (sources, tools, out_dir) = (sources.as_path(), tools.as_path(), out_dir.as_path());
    let wit = sources.join("wit");
    let sdk = sources.join("guest-sdk");
    let out = out_dir.join(format!("{}.wasm", name.replace('-', "_")));
    match language {
        Language::Python => {
            let exe = componentize_py(tools)?;
            // A copy of the sources, so the build writes its bytecode
            // caches there and not beside them, where a build script
            // watching the sources would see a change on every build.
            let stage = out_dir.join(format!("{name}-src"));
            let (app, lib) = (stage.join("app"), stage.join("sdk"));
            remove_dir(&stage)?;
            copy_sources(dir, &app, "py")?;
            copy_sources(&sdk.join("python"), &lib, "py")?;
            let world = python_world::world_of(&read(&entry)?);
            let wit = match world {
                ACTIVITY_HTTP => python_world::activity_http_wit(sources, &stage)?,
                _ => wit,
            };
            run(
                Command::new(exe)
                    .arg("-d")
                    .arg(&wit)
                    .args(["-w", world, "componentize", "-p"])
                    .arg(&app)
                    .arg("-p")
                    .arg(&lib)
                    .arg("app")
                    .arg("-o")
                    .arg(&out),
                &format!("componentize-py on {}", dir.display()),
            )?;
        }
        Language::JavaScript => {
            let runner = componentize_js(tools, &sdk.join("js").join("tools"))?;
            // The app and the SDK side by side, so `./duroxide.js` resolves.
            let stage = out_dir.join(&name);
            mkdir(&stage)?;
            copy_sources(dir, &stage, "js")?;
            copy_file(
                &sdk.join("js").join("duroxide.js"),
                &stage.join("duroxide.js"),
            )?;
            run(
                Command::new("node")
                    .arg(runner.join("componentize.mjs"))
                    .arg(stage.join("app.js"))
                    .arg(&wit)
                    .arg(WORKFLOWS)
                    .arg(&out),
                &format!("componentize-js on {}", dir.display()),
            )?;
        }
    }
    Ok(BuiltGuest {
        package: name,
        path: out,
    })
}

/// Build the guests in `dirs` (relative to the calling crate) and export
/// each path to the crate as `GUEST_PY_<NAME>` or `GUEST_JS_<NAME>`. Call
/// from a build script; it runs again when a guest, the SDK or the WIT
/// contract changes.
pub fn export_guests(language: Language, dirs: &[&str]) -> Result<(), BuildError> {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or(BuildError::Env("CARGO_MANIFEST_DIR"))?,
    );
    let workspace = Workspace::of(&manifest_dir)?;
    for dir in dirs {
        let dir = manifest_dir.join(dir);
        let guest = build_with(&workspace, language, &dir)?;
        println!("cargo:rerun-if-changed={}", dir.display());
        println!(
            "cargo:rerun-if-changed={}",
            workspace.root.join("wit").display()
        );
        let sdk = workspace.root.join("guest-sdk");
        match language {
            Language::Python => println!("cargo:rerun-if-changed={}", sdk.join("python").display()),
            Language::JavaScript => println!("cargo:rerun-if-changed={}", sdk.join("js").display()),
        }
        println!(
            "cargo:rustc-env={}{}={}",
            language.env_prefix(),
            guest.const_name(),
            guest.path.display()
        );
    }
    Ok(())
}
