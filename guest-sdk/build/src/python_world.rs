//! Which WIT world a Python guest is built against. An app that exports an
//! `Orchestrator` is built against `workflows`. One that exports only
//! `Activities` and `Component` is an activity-only component, built
//! against `activity-http`: the `activity` world plus `wasi:http`, which
//! the host links for activities alone (a component that imports it may
//! provide no orchestrations).

use std::path::{Path, PathBuf};

use crate::BuildError;
use crate::fs::{copy_sources, mkdir, read, remove_dir};
use crate::metadata::package_dir;

/// The world of components that provide orchestrations and activities.
pub(crate) const WORKFLOWS: &str = "workflows";

/// The world of activity-only Python components.
pub(crate) const ACTIVITY_HTTP: &str = "activity-http";

/// The crate whose WIT files define the `wasi:http` the host implements.
const WASI_HTTP_CRATE: &str = "wasmtime-wasi-http";

/// What the app module imports its entry points with.
const EXPORTS_IMPORT: &str = "from duroxide.exports import";

/// The world for the app whose source is `app`: [`ACTIVITY_HTTP`] when it
/// imports its entry points and none of those imports names
/// `Orchestrator`, else [`WORKFLOWS`] (an app that imports none is built
/// against it, and the build names what is missing).
pub(crate) fn world_of(app: &str) -> &'static str {
    let mut imports = app.split(EXPORTS_IMPORT).skip(1).peekable();
    if imports.peek().is_none() {
        return WORKFLOWS;
    }
    let names_orchestrator = imports.any(|rest| {
        let rest = rest.trim_start();
        let names = match rest.strip_prefix('(') {
            Some(inner) => inner.split(')').next().unwrap_or_default(),
            None => rest.lines().next().unwrap_or_default(),
        };
        let names = names.split('#').next().unwrap_or_default();
        names
            .split(|c: char| c == ',' || c.is_whitespace())
            .any(|name| name == "Orchestrator")
    });
    if names_orchestrator {
        WORKFLOWS
    } else {
        ACTIVITY_HTTP
    }
}

/// A WIT directory in `stage` for world [`ACTIVITY_HTTP`]: the contract's
/// files from `sources/wit`, the world, and the WASI packages it pulls in,
/// from the `wasmtime-wasi-http` crate the workspace at `sources` builds
/// the host with, so the guest imports the version the host implements.
pub(crate) fn activity_http_wit(sources: &Path, stage: &Path) -> Result<PathBuf, BuildError> {
    let deps = package_dir(sources, WASI_HTTP_CRATE)?
        .join("wit")
        .join("deps");
    let http = read(&deps.join("http.wit"))?;
    let version = package_version(&http, "wasi:http").ok_or_else(|| {
        BuildError::Failed(format!(
            "{} declares no wasi:http package",
            deps.join("http.wit").display()
        ))
    })?;
    let contract = sources.join("wit");
    let package = std::fs::read_dir(&contract)
        .map_err(|e| BuildError::Failed(format!("cannot read {}: {e}", contract.display())))?
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "wit"))
        .find_map(|entry| {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            text.lines()
                .find(|line| line.starts_with("package "))
                .map(str::to_string)
        })
        .ok_or_else(|| {
            BuildError::Failed(format!("{} holds no WIT package", contract.display()))
        })?;
    let wit = stage.join("wit");
    remove_dir(&wit)?;
    mkdir(&wit)?;
    copy_sources(&contract, &wit, "wit")?;
    copy_sources(&deps, &wit.join("deps"), "wit")?;
    let world = format!(
        "{package}\n\n\
         /// An activity-only component that may send HTTP requests, to the\n\
         /// origins granted to it.\n\
         world {ACTIVITY_HTTP} {{\n    include activity;\n    \
         import wasi:http/outgoing-handler@{version};\n}}\n"
    );
    let file = wit.join(format!("{ACTIVITY_HTTP}.wit"));
    std::fs::write(&file, world)
        .map_err(|e| BuildError::Failed(format!("cannot write {}: {e}", file.display())))?;
    Ok(wit)
}

/// The version in `wit`'s `package <name>@<version>;` line.
fn package_version(wit: &str, name: &str) -> Option<String> {
    wit.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("package ")?.strip_prefix(name)?;
        let version = rest.strip_prefix('@')?.trim_end_matches(';').trim();
        (!version.is_empty()).then(|| version.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_that_exports_an_orchestrator_gets_the_workflows_world() {
        let app = "import duroxide\n\
                   from duroxide.exports import Orchestrator, Activities, Component\n";
        assert_eq!(world_of(app), WORKFLOWS);
        let parenthesised = "from duroxide.exports import (\n    Activities,\n    \
                             Component,\n    Orchestrator,\n)\n";
        assert_eq!(world_of(parenthesised), WORKFLOWS);
    }

    #[test]
    fn an_app_that_exports_no_orchestrator_is_activity_only() {
        let app = "from duroxide.exports import Activities, Component  # noqa: F401\n";
        assert_eq!(world_of(app), ACTIVITY_HTTP);
        // A comment naming it does not count.
        let commented = "from duroxide.exports import Activities, Component  # no Orchestrator\n";
        assert_eq!(world_of(commented), ACTIVITY_HTTP);
        let parenthesised = "from duroxide.exports import (Activities, Component)\n";
        assert_eq!(world_of(parenthesised), ACTIVITY_HTTP);
    }

    #[test]
    fn an_app_that_imports_no_entry_points_gets_the_workflows_world() {
        assert_eq!(world_of("import duroxide\n"), WORKFLOWS);
    }

    #[test]
    fn the_package_version_is_read_from_its_line() {
        let wit = "/// docs\npackage wasi:http@0.2.12;\n\ninterface types {}\n";
        assert_eq!(package_version(wit, "wasi:http").as_deref(), Some("0.2.12"));
        assert_eq!(package_version(wit, "wasi:io"), None);
        assert_eq!(package_version("package wasi:http;\n", "wasi:http"), None);
    }

    #[test]
    fn the_activity_http_wit_holds_the_contract_the_world_and_its_wasi() {
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let stage = tempfile::tempdir().expect("a temporary directory");
        let wit = activity_http_wit(&sources, stage.path()).expect("the WIT is staged");
        let world = read(&wit.join("activity-http.wit")).expect("the world file");
        assert!(
            world.starts_with("package duroxide:orchestration@"),
            "{world}"
        );
        let http = read(&wit.join("deps").join("http.wit")).expect("wasi:http");
        let version = package_version(&http, "wasi:http").expect("its version");
        assert!(
            world.contains(&format!("import wasi:http/outgoing-handler@{version};")),
            "{world}"
        );
        assert!(wit.join("duroxide-orchestration.wit").is_file());
        assert!(wit.join("deps").join("io.wit").is_file());
    }
}
