//! The CLI on PostgreSQL: each step a separate process on one schema of its
//! own (the URL's `schema` parameter) of `$DUROXIDE_TEST_PG`, named by
//! `--db` or by `DUROXIDE_DB`; and a server that does not answer gives a
//! clear error and a non-zero exit. Without a server the PostgreSQL steps
//! skip, saying why (`DUROXIDE_REQUIRE_PG=1` fails instead).

mod common;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::process::{Command, Stdio};

use common::{Run, Worker, eventually, guests};
use sqlx_core::connection::Connection;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::PgConnection;

/// The server `DUROXIDE_TEST_PG` names, as the other PostgreSQL tests use it.
fn server_url() -> String {
    std::env::var("DUROXIDE_TEST_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

/// Runs `sql` on a connection of its own.
fn execute(sql: String) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut conn = PgConnection::connect(&server_url())
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", server_url()))?;
        sqlx_core::raw_sql::raw_sql(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A schema of this test's own, dropped with everything in it at the end.
struct Schema {
    name: String,
}

impl Schema {
    /// A fresh name, or `None` (said on stderr) when the server does not
    /// answer and `DUROXIDE_REQUIRE_PG` is not `1`.
    fn new() -> Option<Self> {
        // A random part, so runs in parallel or in sequence never meet.
        let random = RandomState::new().build_hasher().finish() & 0xffff_ffff;
        let name = format!("duroxide_cli_{}_{random:08x}", std::process::id());
        // Made by the binary itself (the URL's schema parameter); dropping a
        // missing one checks that the server answers.
        match execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE")) {
            Ok(()) => Some(Self { name }),
            Err(reason) if std::env::var("DUROXIDE_REQUIRE_PG").is_ok_and(|v| v == "1") => {
                panic!("PostgreSQL is required (DUROXIDE_REQUIRE_PG=1): {reason}")
            }
            Err(reason) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "\nSKIPPED the CLI's PostgreSQL test: {reason}. Set DUROXIDE_TEST_PG to a \
                     reachable server to run it (DUROXIDE_REQUIRE_PG=1 fails instead).\n"
                );
                None
            }
        }
    }

    /// The store URL of this schema.
    fn url(&self) -> String {
        let base = server_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}schema={}", self.name)
    }

    /// The binary with `args`; the store named by `DUROXIDE_DB` if `by_env`,
    /// by `--db` otherwise.
    fn command(&self, by_env: bool, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_duroxide"));
        command.env_remove("DUROXIDE_TENANT");
        if by_env {
            command.env("DUROXIDE_DB", self.url());
        } else {
            command
                .env_remove("DUROXIDE_DB")
                .arg("--db")
                .arg(self.url());
        }
        command.args(args);
        command
    }

    /// Runs `args` with `--json` and `--db`; it must succeed.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let output = self
            .command(false, &[&["--json"], args].concat())
            .output()
            .unwrap_or_else(|e| panic!("running duroxide {args:?}: {e}"));
        Run::of(output).ok().json()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Err(e) = execute(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)) {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop schema {}: {e}",
                self.name
            );
        }
    }
}

#[test]
fn deploy_run_start_and_inspect_on_postgres_by_flag_and_by_environment() {
    let Some(schema) = Schema::new() else {
        return;
    };
    let digest = schema.json(&["deploy", guests::UPGRADE_V1])["digest"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no digest"));
    assert_eq!(schema.json(&["components"])[0]["digest"], digest.as_str());

    // The worker finds the store through the environment.
    let worker = Worker::from_child(
        schema
            .command(true, &["run"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the worker: {e}")),
    );
    let started = schema
        .command(
            true,
            &["start", "Upgrade", "--id", "u1", "--input", "plain"],
        )
        .output()
        .unwrap_or_else(|e| panic!("start: {e}"));
    Run::of(started).ok();
    eventually("u1 waits for an event", || {
        let shown = schema.json(&["show", "u1"]);
        shown["pending"]
            .as_array()
            .is_some_and(|p| p.iter().any(|w| w["kind"] == "event"))
            .then_some(())
    });
    let status = schema.json(&["status", "u1"]);
    assert_eq!(status["status"], "Running");
    assert_eq!(status["component"], digest.as_str());
    let raised = schema
        .command(false, &["raise", "u1", "go", "--data", "now"])
        .output()
        .unwrap_or_else(|e| panic!("raise: {e}"));
    Run::of(raised).ok();
    let done = schema.json(&["wait", "u1", "--timeout", "30000"]);
    assert_eq!(
        (done["status"].as_str(), done["output"].as_str()),
        (Some("Completed"), Some("v1:a:now"))
    );

    let history = schema.json(&["history", "u1"]);
    assert_eq!(history[0]["kind"], "OrchestrationStarted");
    let listed = schema.json(&["list", "--status", "completed"]);
    assert_eq!(listed[0]["instance"], "u1");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let health = schema.json(&["health"]);
    assert_eq!(health["completed"], 1);
    assert_eq!(schema.json(&["purge"])["purged"], 1);
    assert_eq!(schema.json(&["list"]).as_array().map(Vec::len), Some(0));

    let stopped = worker.stop();
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
}

#[test]
fn a_server_that_does_not_answer_is_a_clear_error_and_a_failure() {
    // Nothing listens on port 1.
    let url = "postgres://nobody@127.0.0.1:1/none?connect_timeout=2";
    for by_env in [false, true] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_duroxide"));
        command.env_remove("DUROXIDE_TENANT");
        if by_env {
            command.env("DUROXIDE_DB", url);
        } else {
            command.env_remove("DUROXIDE_DB").args(["--db", url]);
        }
        let began = std::time::Instant::now();
        let run = Run::of(
            command
                .arg("health")
                .output()
                .unwrap_or_else(|e| panic!("health: {e}")),
        );
        assert_ne!(run.code, 0, "{}", run.stderr);
        assert!(
            began.elapsed() < std::time::Duration::from_secs(10),
            "fails at once: {:?}",
            began.elapsed()
        );
        let said = run.stderr.trim();
        assert!(
            said.starts_with("error: cannot open the store 'postgres://nobody@127.0.0.1:1/none"),
            "{said}"
        );
        assert!(said.contains("refused"), "names the cause: {said}");
        assert_eq!(said.lines().count(), 1, "one line: {said}");
    }
}
