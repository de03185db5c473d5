//! What cargo says of the workspace guests are built in: its root, its
//! target directory, and which local packages a guest is built from.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::BuildError;

/// The SDK's package name: its bindings are generated from WIT files kept
/// beside it, at `../../wit` in this repository.
const SDK: &str = "duroxide-guest";

/// A workspace, as `cargo metadata` describes it.
pub(crate) struct Workspace {
    /// The workspace root, where guests are built from.
    pub(crate) root: PathBuf,
    /// Its target directory (honours `CARGO_TARGET_DIR` and
    /// `build.target-dir`).
    pub(crate) target_directory: PathBuf,
    /// Local (path) packages by name: their directory.
    local: HashMap<String, PathBuf>,
    /// Package id to name, for local packages.
    names: HashMap<String, String>,
    /// Package id to the ids of its normal and build dependencies.
    deps: HashMap<String, Vec<String>>,
}

impl Workspace {
    /// The workspace of the package in `dir`.
    pub(crate) fn of(dir: &Path) -> Result<Self, BuildError> {
        Self::from_json(&metadata(dir)?)
    }

    fn from_json(json: &Value) -> Result<Self, BuildError> {
        let path = |key: &str| {
            json[key]
                .as_str()
                .map(PathBuf::from)
                .ok_or_else(|| BuildError::Failed(format!("cargo metadata gave no {key}")))
        };
        let mut local = HashMap::new();
        let mut names = HashMap::new();
        for package in json["packages"].as_array().into_iter().flatten() {
            // Path packages have no source; registry and git ones do.
            if !package["source"].is_null() {
                continue;
            }
            let (Some(id), Some(name), Some(manifest)) = (
                package["id"].as_str(),
                package["name"].as_str(),
                package["manifest_path"].as_str(),
            ) else {
                continue;
            };
            let dir = Path::new(manifest).parent().map(Path::to_path_buf);
            if let Some(dir) = dir {
                local.insert(name.to_string(), dir);
                names.insert(id.to_string(), name.to_string());
            }
        }
        let mut deps = HashMap::new();
        for node in json["resolve"]["nodes"].as_array().into_iter().flatten() {
            let Some(id) = node["id"].as_str() else {
                continue;
            };
            let used: Vec<String> = (node["deps"].as_array().into_iter().flatten())
                .filter(|dep| {
                    // Dev-dependencies take no part in building the guest.
                    (dep["dep_kinds"].as_array().into_iter().flatten())
                        .any(|kind| kind["kind"].as_str() != Some("dev"))
                })
                .filter_map(|dep| dep["pkg"].as_str().map(str::to_string))
                .collect();
            deps.insert(id.to_string(), used);
        }
        Ok(Self {
            root: path("workspace_root")?,
            target_directory: path("target_directory")?,
            local,
            names,
            deps,
        })
    }

    /// What building `packages` reads that can change: the directories of
    /// the packages and of every local package they depend on, and the WIT
    /// files the SDK is generated from. Only existing paths: cargo runs a
    /// build script again on every build while one it watches is missing.
    pub(crate) fn inputs_of(&self, packages: &[&str]) -> Result<BTreeSet<PathBuf>, BuildError> {
        let ids_by_name: HashMap<&str, &str> = self
            .names
            .iter()
            .map(|(id, name)| (name.as_str(), id.as_str()))
            .collect();
        let mut queue = VecDeque::new();
        for package in packages {
            let id = ids_by_name.get(package).ok_or_else(|| {
                BuildError::Failed(format!(
                    "no package '{package}' in the workspace at {}",
                    self.root.display()
                ))
            })?;
            queue.push_back(id.to_string());
        }
        let mut seen = BTreeSet::new();
        let mut inputs = BTreeSet::new();
        while let Some(id) = queue.pop_front() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(name) = self.names.get(&id) else {
                // Not a local package: nothing of it changes in place.
                continue;
            };
            if let Some(dir) = self.local.get(name) {
                inputs.insert(dir.clone());
                if name == SDK {
                    inputs.insert(dir.join("..").join("..").join("wit"));
                }
            }
            queue.extend(self.deps.get(&id).into_iter().flatten().cloned());
        }
        inputs.retain(|p| p.exists());
        Ok(inputs)
    }
}

/// What `cargo metadata` says of the package (or workspace) in `dir`.
fn metadata(dir: &Path) -> Result<Value, BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| BuildError::Spawn(format!("{cargo} metadata"), e))?;
    if !output.status.success() {
        return Err(BuildError::Failed(format!(
            "cargo metadata failed for {}: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| BuildError::Failed(format!("cargo metadata printed no JSON: {e}")))
}

/// The directory of package `name`, a dependency of the workspace in `dir`
/// (from the registry, or local).
pub(crate) fn package_dir(dir: &Path, name: &str) -> Result<PathBuf, BuildError> {
    package_dir_in(&metadata(dir)?, name).ok_or_else(|| {
        BuildError::Failed(format!(
            "the workspace at {} does not depend on {name}",
            dir.display()
        ))
    })
}

fn package_dir_in(json: &Value, name: &str) -> Option<PathBuf> {
    json["packages"]
        .as_array()?
        .iter()
        .find(|package| package["name"].as_str() == Some(name))
        .and_then(|package| package["manifest_path"].as_str())
        .and_then(|manifest| Path::new(manifest).parent().map(Path::to_path_buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metadata of a workspace whose guest depends on the SDK (a path
    /// package) and a registry crate, and whose host has a dev-dependency.
    fn sample(root: &Path) -> Value {
        let dir = |d: &str| root.join(d).join("Cargo.toml").display().to_string();
        serde_json::json!({
            "workspace_root": root.display().to_string(),
            "target_directory": root.join("target").display().to_string(),
            "packages": [
                {"id": "guest-id", "name": "my-guest", "manifest_path": dir("guest"), "source": null},
                {"id": "sdk-id", "name": "duroxide-guest", "manifest_path": dir("sdk/rust"), "source": null},
                {"id": "host-id", "name": "host", "manifest_path": dir("host"), "source": null},
                {"id": "serde-id", "name": "serde", "manifest_path": "/registry/serde/Cargo.toml",
                 "source": "registry+https://github.com/rust-lang/crates.io-index"}
            ],
            "resolve": {"nodes": [
                {"id": "guest-id", "deps": [
                    {"pkg": "sdk-id", "dep_kinds": [{"kind": null}]},
                    {"pkg": "serde-id", "dep_kinds": [{"kind": null}]},
                    {"pkg": "host-id", "dep_kinds": [{"kind": "dev"}]}
                ]},
                {"id": "sdk-id", "deps": []},
                {"id": "host-id", "deps": []},
                {"id": "serde-id", "deps": []}
            ]}
        })
    }

    #[test]
    fn a_guest_is_built_from_its_package_its_local_dependencies_and_the_wit() {
        let root = std::env::temp_dir().join(format!("guest-build-meta-{}", std::process::id()));
        for dir in ["guest", "sdk/rust", "host", "wit"] {
            std::fs::create_dir_all(root.join(dir)).expect("temp dir");
        }
        let workspace = Workspace::from_json(&sample(&root)).expect("metadata");
        assert_eq!(workspace.target_directory, root.join("target"));
        let inputs = workspace.inputs_of(&["my-guest"]).expect("inputs");
        let expected: BTreeSet<PathBuf> = [
            root.join("guest"),
            root.join("sdk/rust"),
            root.join("sdk/rust/../../wit"),
        ]
        .into_iter()
        .collect();
        assert_eq!(inputs, expected);
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn a_dependency_is_found_by_name_wherever_it_lives() {
        let root = std::env::temp_dir();
        let json = sample(&root);
        assert_eq!(
            package_dir_in(&json, "serde"),
            Some(PathBuf::from("/registry/serde"))
        );
        assert_eq!(package_dir_in(&json, "my-guest"), Some(root.join("guest")));
        assert_eq!(package_dir_in(&json, "nope"), None);
    }

    #[test]
    fn an_unknown_guest_is_an_error_naming_it() {
        let root = std::env::temp_dir();
        let workspace = Workspace::from_json(&sample(&root)).expect("metadata");
        let error = workspace.inputs_of(&["nope"]).expect_err("unknown");
        assert!(error.to_string().contains("no package 'nope'"), "{error}");
    }
}
