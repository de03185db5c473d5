//! A PostgreSQL server of the test's own, which it may stop and start at
//! will: `initdb` into a temporary directory, `pg_ctl` on a free port of
//! 127.0.0.1 with its socket in that directory, so the shared server and
//! other tests never notice. `initdb` refuses root, so as root the server
//! runs as the `postgres` user. The server is stopped when the guard is
//! dropped, also when the test fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// A server made by [`Server::create`]: stopped until [`Server::start`].
pub struct Server {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    /// Run the server's programs as the `postgres` user (we are root).
    as_postgres: bool,
}

/// Whether a missing PostgreSQL installation fails the test instead of
/// skipping it.
fn required() -> bool {
    std::env::var("DUROXIDE_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// The directory holding `initdb` and `pg_ctl`: `pg_config --bindir`, or the
/// newest `/usr/lib/postgresql/*/bin` that has them.
fn bindir() -> Result<PathBuf, String> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&dir) {
            return Ok(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL installation in /usr/lib/postgresql ({e})"))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let dir = entry.path().join("bin");
            has_tools(&dir).then_some((version, dir))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, dir)| dir)
        .ok_or_else(|| "no initdb and pg_ctl under /usr/lib/postgresql/*/bin".to_owned())
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A TCP port of 127.0.0.1 that nothing listens on now.
fn free_port() -> std::io::Result<u16> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}

/// `output`, or an error with its stderr.
fn checked(what: &str, output: std::io::Result<Output>) -> anyhow::Result<Output> {
    let output = output.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

impl Server {
    /// A new, stopped server; `None` (said on stderr, with the reason) when
    /// PostgreSQL is not installed and `DUROXIDE_REQUIRE_PG` is not `1`.
    pub fn create() -> anyhow::Result<Option<Self>> {
        let bin = match bindir() {
            Ok(bin) => bin,
            Err(reason) if required() => {
                anyhow::bail!("PostgreSQL is required (DUROXIDE_REQUIRE_PG=1): {reason}")
            }
            Err(reason) => {
                // Straight to stderr: the harness captures only `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "\nSKIPPED: this test starts a PostgreSQL server of its own, and {reason} \
                     (DUROXIDE_REQUIRE_PG=1 fails instead of skipping).\n"
                );
                return Ok(None);
            }
        };
        let dir = tempfile::tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            checked(
                "chown to postgres",
                Command::new("chown")
                    .arg("postgres:")
                    .arg(dir.path())
                    .output(),
            )?;
        }
        let server = Self {
            dir,
            bin,
            port: free_port()?,
            as_postgres,
        };
        let data = server.data();
        server.run("initdb", |c| {
            c.args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
                .arg(&data)
        })?;
        Ok(Some(server))
    }

    /// The server's data directory.
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `program` of the server's installation, as the server's user.
    fn run(
        &self,
        program: &str,
        args: impl FnOnce(&mut Command) -> &mut Command,
    ) -> anyhow::Result<Output> {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        // The server's programs run from a directory they can read.
        command.current_dir(self.dir.path());
        checked(program, args(&mut command).output())
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.run("pg_ctl", |c| {
            c.args(["start", "-w", "-t", "60", "-D"])
                .arg(self.data())
                .arg("-l")
                .arg(&log)
                .args(["-o", &options])
        })?;
        Ok(())
    }

    /// Stops the server: `fast` ends every session with an error first,
    /// `immediate` kills them as a crash would.
    pub fn stop(&self, mode: &str) -> anyhow::Result<()> {
        self.run("pg_ctl", |c| {
            c.args(["stop", "-w", "-m", mode, "-D"]).arg(self.data())
        })?;
        Ok(())
    }

    /// The rows of `sql` (unaligned, one line each), run by `psql`.
    pub fn query(&self, sql: &str) -> anyhow::Result<String> {
        let out = self.run("psql", |c| {
            c.args(["-X", "-A", "-t", "-q", "-d", &self.url(), "-c", sql])
        })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stopped whatever happened; an error only means it was not running.
        if self.data().join("postmaster.pid").exists() {
            let _ = self.stop("immediate");
        }
    }
}
