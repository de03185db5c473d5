//! The runtime processes of a run: started as this benchmark with
//! [`super::WORKER_FLAG`], each a separate OS process, and stopped by
//! closing their stdin.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::worker::READY;

/// How long a worker may take to open the store and load the guest.
const START_WITHIN: Duration = Duration::from_secs(120);
/// How long a worker may take to stop once asked.
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// Running worker processes; any still running when this is dropped are
/// killed.
pub struct Fleet {
    children: Vec<Child>,
}

impl Fleet {
    /// Starts `n` workers on `schema` of `url`, serving `wasm` with `pool`
    /// connections each (the store's default when `None`), and waits until
    /// each serves.
    pub fn start(
        n: usize,
        url: &str,
        schema: &str,
        wasm: &Path,
        pool: Option<u32>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut fleet = Self {
            children: Vec::with_capacity(n),
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        for i in 0..n {
            let mut child = Command::new(&exe)
                .arg(super::WORKER_FLAG)
                .arg(url)
                .arg(schema)
                .arg(wasm)
                .arg(pool.map(|p| p.to_string()).unwrap_or_default())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("starting a worker process")?;
            let stdout = child.stdout.take().context("the worker's stdout")?;
            fleet.children.push(child);
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let said = BufReader::new(stdout).read_line(&mut line);
                let _ = ready_tx.send((i, said.is_ok() && line.trim() == READY));
            });
        }
        let deadline = Instant::now() + START_WITHIN;
        for _ in 0..n {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(left) {
                Ok((_, true)) => {}
                Ok((i, false)) => bail!("worker {i} ended before it served (see its stderr)"),
                Err(_) => bail!("a worker did not serve within {START_WITHIN:?}"),
            }
        }
        Ok(fleet)
    }

    /// Asks every worker to stop and waits for each to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for child in &mut self.children {
            drop(child.stdin.take());
        }
        let deadline = Instant::now() + STOP_WITHIN;
        for (i, child) in self.children.iter_mut().enumerate() {
            loop {
                if let Some(status) = child.try_wait()? {
                    if !status.success() {
                        bail!("worker {i} exited with {status}");
                    }
                    break;
                }
                if Instant::now() > deadline {
                    bail!("worker {i} did not stop within {STOP_WITHIN:?}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
