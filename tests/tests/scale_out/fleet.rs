//! The processes of the test: a PostgreSQL schema of its own, runtime
//! processes (started, SIGKILLed, restarted, stopped) that journal their
//! commits, and the client process.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use duroxide::providers::postgres::{PostgresHistoryStore, PostgresOptions};
use duroxide_tests::guests;
use sqlx_core::connection::Connection;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::PgConnection;

/// The server used when `DUROXIDE_TEST_PG` is not set.
const DEFAULT_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// A fresh schema on the test server, dropped with everything in it when
/// this is dropped.
pub struct Schema {
    /// Its name.
    name: String,
    /// The server's URL.
    server: String,
    /// A URL that opens the store in this schema.
    pub url: String,
    /// Left in place when dropped, for a failure to be looked into.
    pub keep: bool,
}

impl Schema {
    /// A fresh schema, or `None` (said on stderr) when no server answers
    /// and `DUROXIDE_REQUIRE_PG` is not `1`.
    pub async fn fresh() -> anyhow::Result<Option<Self>> {
        let server = std::env::var("DUROXIDE_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let reached = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&server))
            .await
            .map_err(|_| format!("{server} did not answer within 5 s"))
            .and_then(|c| c.map_err(|e| format!("cannot connect to {server}: {e}")));
        if let Err(reason) = reached {
            if std::env::var("DUROXIDE_REQUIRE_PG").is_ok_and(|v| v == "1") {
                anyhow::bail!("PostgreSQL is required (DUROXIDE_REQUIRE_PG=1): {reason}");
            }
            // Straight to stderr: the harness captures only `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "\nSKIPPED the scale-out test on PostgreSQL: {reason}. Set DUROXIDE_TEST_PG \
                 to a reachable server to run it (DUROXIDE_REQUIRE_PG=1 fails instead).\n"
            );
            return Ok(None);
        }
        let name = format!(
            "duroxide_scale_out_{:012x}",
            crate::random() & 0xffff_ffff_ffff
        );
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options[search_path]={name}");
        let schema = Self {
            name,
            server,
            url,
            keep: false,
        };
        // Created and migrated before any process opens it by URL.
        drop(schema.open().await?);
        Ok(Some(schema))
    }

    /// The store in this schema.
    pub async fn open(&self) -> anyhow::Result<PostgresHistoryStore> {
        let options = PostgresOptions {
            schema: Some(self.name.clone()),
            max_connections: 8,
            ..PostgresOptions::default()
        };
        Ok(PostgresHistoryStore::with_options(&self.server, options).await?)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if self.keep {
            let _ = writeln!(std::io::stderr(), "schema {} kept", self.name);
            return;
        }
        // On a runtime of its own: the test's may be shutting down.
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let server = self.server.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&server).await?;
                sqlx_core::raw_sql::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(std::io::stderr(), "could not drop schema {}", self.name);
        }
    }
}

/// The runtime processes, in slots, and what became of them.
pub struct Fleet {
    url: String,
    /// Journals, logs and the workload file.
    pub dir: tempfile::TempDir,
    slots: Vec<Option<Child>>,
    client: Option<Child>,
    started: usize,
    /// How many processes were killed.
    pub kills: usize,
    /// How many times a process was paused.
    pub freezes: usize,
    /// The ids of the killed processes.
    pub killed: HashSet<u32>,
    /// Every process's journal.
    pub journals: Vec<PathBuf>,
}

impl Fleet {
    /// No processes yet, on the store `url` names.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            url: url.to_owned(),
            dir: tempfile::tempdir()?,
            slots: Vec::new(),
            client: None,
            started: 0,
            kills: 0,
            freezes: 0,
            killed: HashSet::new(),
            journals: Vec::new(),
        })
    }

    /// Starts a runtime process in `slot` and waits until it is ready.
    pub fn start(&mut self, slot: usize, lock_ms: u64) -> anyhow::Result<()> {
        let n = self.started;
        self.started += 1;
        let journal = self.dir.path().join(format!("journal-{n}.jsonl"));
        let log = std::fs::File::create(self.dir.path().join(format!("runtime-{n}.log")))?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_duroxide-test-host"))
            .args([&self.url, &lock_ms.to_string(), guests::PROGRAMS])
            .env("DUROXIDE_TURN_JOURNAL", &journal)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        self.journals.push(journal);
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut line = String::new();
        tokio::task::block_in_place(|| BufReader::new(stdout).read_line(&mut line))?;
        anyhow::ensure!(
            line.trim() == "ready",
            "runtime process {n} said {line:?}; its log: {}",
            self.log(n)
        );
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot] = Some(child);
        Ok(())
    }

    /// SIGKILLs the process in `slot`.
    pub fn kill(&mut self, slot: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.slots.get_mut(slot).and_then(Option::take) {
            self.killed.insert(child.id());
            child.kill()?;
            child.wait()?;
            self.kills += 1;
        }
        Ok(())
    }

    /// Pauses the process in `slot` (SIGSTOP) until `resume` (SIGCONT): its
    /// locks expire meanwhile, so the turns it had under way must fail to
    /// commit once it runs again.
    pub async fn freeze(&mut self, slot: usize, pause: Duration) -> anyhow::Result<()> {
        let Some(pid) = self.slots.get(slot).and_then(Option::as_ref).map(Child::id) else {
            return Ok(());
        };
        signal(pid, "-STOP")?;
        tokio::time::sleep(pause).await;
        signal(pid, "-CONT")?;
        self.freezes += 1;
        Ok(())
    }

    /// Stops every process gracefully (closing its stdin); each must exit
    /// successfully.
    pub fn stop_all(&mut self) -> anyhow::Result<()> {
        for child in self.slots.iter_mut().filter_map(Option::take) {
            let mut child = child;
            drop(child.stdin.take());
            let status = tokio::task::block_in_place(|| child.wait())?;
            anyhow::ensure!(status.success(), "a runtime process exited with {status}");
        }
        Ok(())
    }

    /// Starts the client process on `workload`.
    pub fn start_client(&mut self, workload: &Path) -> anyhow::Result<()> {
        let child = Command::new(env!("CARGO_BIN_EXE_duroxide-test-client"))
            .arg(&self.url)
            .arg(workload)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        self.client = Some(child);
        Ok(())
    }

    /// Whether the client process has finished; fails if it failed.
    pub fn client_finished(&mut self) -> anyhow::Result<bool> {
        let Some(child) = self.client.as_mut() else {
            return Ok(true);
        };
        let Some(status) = child.try_wait()? else {
            return Ok(false);
        };
        anyhow::ensure!(status.success(), "the client process exited with {status}");
        self.client = None;
        Ok(true)
    }

    /// The log of the `n`-th process started, or why it cannot be read.
    fn log(&self, n: usize) -> String {
        let path = self.dir.path().join(format!("runtime-{n}.log"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| format!("({path:?}: {e})"))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // A failed test leaves no process behind.
        let slots = self.slots.iter_mut().filter_map(Option::as_mut);
        for child in slots.chain(self.client.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `signal` (`-STOP`, `-CONT`) to `pid` with kill(1): the standard
/// library sends only SIGKILL.
fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill {signal} {pid} exited with {status}");
    Ok(())
}
