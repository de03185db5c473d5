//! The pinned build tools of Python and JavaScript guests, installed on
//! first use into `tools/` under the workspace's target directory, so a
//! fresh machine needs only `python3` (with `venv`) and `node` with `npm`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BuildError;

/// The componentize-py release Python guests are built with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The componentize-js release JavaScript guests are built with (pinned
/// with all its dependencies by `guest-sdk/js/tools/package-lock.json`).
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// Runs `cmd`, failing with `what` and its status when it does not succeed.
/// What the tool prints goes to stderr, so a caller's stdout stays its own.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<(), BuildError> {
    let status = cmd
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| BuildError::Spawn(what.to_string(), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed(format!("{what} failed ({status})")))
    }
}

/// The `componentize-py` executable, installed into a virtual environment
/// under `tools` if it is not there yet.
pub(crate) fn componentize_py(tools: &Path) -> Result<PathBuf, BuildError> {
    let venv = tools.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"));
    let exe = venv.join("bin").join("componentize-py");
    if exe.exists() {
        return Ok(exe);
    }
    std::fs::create_dir_all(tools)
        .map_err(|e| BuildError::Failed(format!("cannot create {}: {e}", tools.display())))?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        &format!("{python} -m venv {}", venv.display()),
    )?;
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}")),
        &format!("pip install componentize-py=={COMPONENTIZE_PY_VERSION}"),
    )?;
    Ok(exe)
}

/// The directory under `tools` holding componentize-js, the runner script
/// and TypeScript (`node_modules/.bin/tsc`, which checks the SDK's
/// declarations), installed from `lock_dir` (`package.json`,
/// `package-lock.json`, `componentize.mjs`; `guest-sdk/js/tools`) with
/// `npm ci` if it is not there yet. The runner is copied every time, so a
/// change to it applies.
pub fn componentize_js(tools: &Path, lock_dir: &Path) -> Result<PathBuf, BuildError> {
    let dir = tools.join(format!("componentize-js-{COMPONENTIZE_JS_VERSION}"));
    let copy = |name: &str| {
        std::fs::copy(lock_dir.join(name), dir.join(name))
            .map(drop)
            .map_err(|e| {
                BuildError::Failed(format!("cannot copy {name} into {}: {e}", dir.display()))
            })
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| BuildError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    // Installed, and from this lock file: `npm ci` writes nothing else
    // there, so a changed lock file installs again.
    let lock = |d: &Path| std::fs::read(d.join("package-lock.json")).ok();
    let current = dir.join("node_modules").exists() && lock(&dir) == lock(lock_dir);
    if !current {
        copy("package.json")?;
        copy("package-lock.json")?;
        let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".into());
        run(
            Command::new(&npm).current_dir(&dir).args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]),
            &format!("{npm} ci (componentize-js {COMPONENTIZE_JS_VERSION})"),
        )?;
    }
    copy("componentize.mjs")?;
    Ok(dir)
}
