//! Drives the real `duroxide` binary as separate OS processes on a store
//! file in a temporary directory.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

#[allow(unused_imports, reason = "each test file uses a different part")]
pub use duroxide_tests::guests;

/// How long a test waits for a condition before it fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// What a run of the binary produced.
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// The run `output` describes.
    pub fn of(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Standard output as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Panics unless the command succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A store file in a temporary directory.
pub struct Store {
    dir: TempDir,
    /// The store file.
    pub db: PathBuf,
}

impl Store {
    /// A store path; the file does not exist yet.
    pub fn new() -> Self {
        let dir = TempDir::new().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let db = dir.path().join("duroxide.db");
        Self { dir, db }
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command of the binary on this store.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_duroxide"));
        command.arg("--db").arg(&self.db).args(args);
        command
            .env_remove("DUROXIDE_DB")
            .env_remove("DUROXIDE_TENANT");
        command
    }

    /// Runs the binary on the store file `db` (not this store's).
    pub fn run_on(db: &Path, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_duroxide"))
            .arg("--db")
            .arg(db)
            .args(args)
            .env_remove("DUROXIDE_DB")
            .env_remove("DUROXIDE_TENANT")
            .output()
            .unwrap_or_else(|e| panic!("running duroxide {args:?}: {e}"));
        Run::of(output)
    }

    /// Runs the binary with `args` and waits for it.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("running duroxide {args:?}: {e}"));
        Run::of(output)
    }

    /// Runs with `--json` and parses the output; the command must succeed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        self.run(&with_json).ok().json()
    }

    /// Deploys `file`; returns its digest.
    pub fn deploy(&self, file: &str) -> String {
        let deployed = self.json(&["deploy", file]);
        deployed["digest"]
            .as_str()
            .unwrap_or_else(|| panic!("no digest in {deployed}"))
            .to_owned()
    }

    /// Starts `duroxide run` on this store.
    pub fn worker(&self) -> Worker {
        let child = self
            .command(&["run"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the worker: {e}"));
        Worker { child: Some(child) }
    }

    /// Waits until instance `id` waits for an external event.
    pub fn wait_for_event_wait(&self, id: &str) {
        eventually(&format!("{id} waits for an event"), || {
            let shown = self.run(&["--json", "show", id]);
            let waits = shown.code == 0
                && shown.json()["pending"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|w| w["kind"] == "event"));
            waits.then_some(())
        });
    }
}

/// A worker process; killed if the test ends without stopping it.
pub struct Worker {
    child: Option<Child>,
}

impl Worker {
    /// A worker started by the caller (`duroxide run` with pipes for output).
    pub fn from_child(child: Child) -> Self {
        Self { child: Some(child) }
    }

    /// Sends SIGTERM and waits for the worker to exit; returns its run.
    pub fn stop(mut self) -> Run {
        let Some(child) = self.child.take() else {
            panic!("the worker was stopped already");
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(status.success(), "kill -TERM failed");
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for the worker: {e}"));
        Run::of(output)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` until it returns a value, failing after [`DEADLINE`].
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
