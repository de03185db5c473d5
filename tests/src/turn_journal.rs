//! A store wrapper that journals every turn commit a runtime process tries,
//! so a test can check afterwards that no two processes ever ran a turn of
//! one instance at once, and that every commit advanced its instance's
//! history from where the previous one left it.
//!
//! One JSON line per record, written unbuffered (one `write` each) to a file
//! of the process's own, so a SIGKILL loses at most the outcome of the
//! commit in flight:
//! - `Locked`: this process got an instance's lock (a fetch, a held commit
//!   or a completion that locked it), with the lock's token, when it asked
//!   and when the answer came: the database granted it in between.
//! - `Try`: a commit about to be sent: instance, execution, history length
//!   before and after, and the turn's interval: `start_us` when this process
//!   got the instance's lock (a fetch, a held commit or a completion that
//!   locked it returned), `sent_us` just before the commit left. Both lie
//!   inside the time the lock was held, so the intervals of two committed
//!   turns of one instance may touch but never overlap.
//! - `Done`: that commit succeeded; `Refused`: it failed (nothing written).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use duroxide::clock::SharedClock;
use duroxide::history::OrchestratorMessage;
use duroxide::limits::TextLimits;
use duroxide::providers::artifacts::{Artifact, ArtifactSummary, NewArtifact, RemoveOutcome};
use duroxide::providers::notices::FinishNotices;
use duroxide::providers::query::{
    CountsQuery, InstanceCounts, InstanceFilter, InstancePage, PurgeFilter, PurgeOutcome,
};
use duroxide::providers::{
    HistoryStore, InstanceRecord, LockedActivity, LockedTurn, NewInstance, OrchestrationWork,
    QueueStats, SignalOutcome, StoreError, TurnCommit,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// One line of a journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Record {
    /// The process got an instance's lock.
    Locked {
        /// The process.
        pid: u32,
        /// The instance.
        instance: String,
        /// The lock token.
        token: String,
        /// When the call that got it was made, µs since the epoch.
        asked_us: u64,
        /// When it returned, µs since the epoch.
        at_us: u64,
    },
    /// A commit about to be sent.
    Try {
        /// The process.
        pid: u32,
        /// Numbers the process's attempts.
        attempt: u64,
        /// The instance.
        instance: String,
        /// The lock token the commit presents.
        token: String,
        /// The execution the commit writes.
        execution: u64,
        /// History length of the execution before the commit.
        before: u64,
        /// History length after it.
        after: u64,
        /// When this process got the lock the turn ran under, µs since the epoch.
        start_us: u64,
        /// When the commit was sent, µs since the epoch.
        sent_us: u64,
    },
    /// The attempt committed.
    Done {
        /// The process.
        pid: u32,
        /// The attempt.
        attempt: u64,
    },
    /// The attempt failed, writing nothing.
    Refused {
        /// The process.
        pid: u32,
        /// The attempt.
        attempt: u64,
    },
}

/// Microseconds since the Unix epoch on the wall clock, which every process
/// on the machine shares.
#[allow(
    clippy::disallowed_methods,
    reason = "the journal compares times across processes in microseconds, finer than the store's clock"
)]
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Wraps a store and journals its turn commits to a file; everything else
/// passes through unchanged.
pub struct JournalingStore {
    inner: Arc<dyn HistoryStore>,
    file: Mutex<File>,
    pid: u32,
    attempts: AtomicU64,
    /// When this process got each lock it holds, by lock token and
    /// instance (a batch fetch locks several instances with one token).
    locked_at: Mutex<HashMap<(String, String), u64>>,
}

impl JournalingStore {
    /// Journals `inner`'s commits to `path`, which is created (or appended to).
    pub fn new(inner: Arc<dyn HistoryStore>, path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            inner,
            file: Mutex::new(file),
            pid: std::process::id(),
            attempts: AtomicU64::new(0),
            locked_at: Mutex::new(HashMap::new()),
        })
    }

    /// Writes one record as one line; a journal that cannot be written
    /// stops the process, since the test would read a false account.
    fn write(&self, record: &Record) {
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        let written = match self.file.lock() {
            Ok(mut file) => file.write_all(&line),
            Err(_) => Err(std::io::Error::other("journal mutex poisoned")),
        };
        if let Err(e) = written {
            eprintln!("cannot write the turn journal: {e}");
            std::process::abort();
        }
    }

    /// Notes that this process got `instance`'s lock `token` now, by a call
    /// made at `asked_us`.
    fn locked(&self, token: &str, instance: &str, asked_us: u64) {
        let at_us = now_us();
        if let Ok(mut map) = self.locked_at.lock() {
            map.insert((token.to_owned(), instance.to_owned()), at_us);
        }
        self.write(&Record::Locked {
            pid: self.pid,
            instance: instance.to_owned(),
            token: token.to_owned(),
            asked_us,
            at_us,
        });
    }

    /// Forgets a lock given back without a commit.
    fn unlocked(&self, token: &str, instance: &str) {
        if let Ok(mut map) = self.locked_at.lock() {
            map.remove(&(token.to_owned(), instance.to_owned()));
        }
    }

    /// Journals an attempt to commit `commit`; returns its number.
    fn trying(&self, commit: &TurnCommit) -> u64 {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        let start_us = self
            .locked_at
            .lock()
            .ok()
            .and_then(|mut map| {
                map.remove(&(commit.lock_token.clone(), commit.instance_id.clone()))
            })
            .unwrap_or(0);
        let new = u64::try_from(commit.new_events.len()).unwrap_or(u64::MAX);
        self.write(&Record::Try {
            pid: self.pid,
            attempt,
            instance: commit.instance_id.clone(),
            token: commit.lock_token.clone(),
            execution: commit.execution_id,
            before: commit.history_len_before,
            after: commit.history_len_before.saturating_add(new),
            start_us,
            sent_us: now_us(),
        });
        attempt
    }

    /// Journals the outcome of `attempt`.
    fn outcome<T>(&self, attempt: u64, result: &Result<T, StoreError>) {
        let (pid, attempt) = (self.pid, attempt);
        self.write(&match result {
            Ok(_) => Record::Done { pid, attempt },
            Err(_) => Record::Refused { pid, attempt },
        });
    }
}

#[async_trait]
impl HistoryStore for JournalingStore {
    async fn create_instance(&self, new: NewInstance) -> Result<(), StoreError> {
        self.inner.create_instance(new).await
    }

    async fn enqueue_message(
        &self,
        instance_id: &str,
        message: OrchestratorMessage,
        visible_at_ms: u64,
    ) -> Result<(), StoreError> {
        self.inner
            .enqueue_message(instance_id, message, visible_at_ms)
            .await
    }

    async fn signal_with_start(
        &self,
        new: NewInstance,
        event: OrchestratorMessage,
    ) -> Result<SignalOutcome, StoreError> {
        self.inner.signal_with_start(new, event).await
    }

    async fn text_limits(&self) -> Result<Option<TextLimits>, StoreError> {
        self.inner.text_limits().await
    }

    async fn set_text_limits(&self, limits: TextLimits) -> Result<(), StoreError> {
        self.inner.set_text_limits(limits).await
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        self.inner.instance(instance_id).await
    }

    async fn read_history(
        &self,
        instance_id: &str,
        execution_id: u64,
    ) -> Result<Vec<duroxide::history::Event>, StoreError> {
        self.inner.read_history(instance_id, execution_id).await
    }

    async fn fetch_orchestration_work(
        &self,
        lock_for: Duration,
    ) -> Result<Option<OrchestrationWork>, StoreError> {
        let asked_us = now_us();
        let work = self.inner.fetch_orchestration_work(lock_for).await?;
        if let Some(work) = &work {
            self.locked(&work.lock_token, &work.instance.instance_id, asked_us);
        }
        Ok(work)
    }

    async fn fetch_orchestration_batch(
        &self,
        max: usize,
        lock_for: Duration,
        lookahead: Duration,
    ) -> Result<Vec<OrchestrationWork>, StoreError> {
        let asked_us = now_us();
        let batch = self
            .inner
            .fetch_orchestration_batch(max, lock_for, lookahead)
            .await?;
        for work in &batch {
            self.locked(&work.lock_token, &work.instance.instance_id, asked_us);
        }
        Ok(batch)
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<(), StoreError> {
        let attempt = self.trying(&commit);
        let result = self.inner.commit_turn(commit).await;
        self.outcome(attempt, &result);
        result
    }

    async fn commit_turn_and_lock_activities(
        &self,
        commit: TurnCommit,
        max: usize,
        lock_for: Duration,
        hold: Option<Duration>,
    ) -> Result<LockedTurn, StoreError> {
        let (token, instance) = (commit.lock_token.clone(), commit.instance_id.clone());
        let attempt = self.trying(&commit);
        let asked_us = now_us();
        let result = self
            .inner
            .commit_turn_and_lock_activities(commit, max, lock_for, hold)
            .await;
        self.outcome(attempt, &result);
        if matches!(&result, Ok(turn) if turn.held.is_some()) {
            self.locked(&token, &instance, asked_us);
        }
        result
    }

    async fn release_orchestration_work(
        &self,
        instance_id: &str,
        lock_token: &str,
    ) -> Result<(), StoreError> {
        self.unlocked(lock_token, instance_id);
        self.inner
            .release_orchestration_work(instance_id, lock_token)
            .await
    }

    async fn defer_orchestration_work(
        &self,
        work: &OrchestrationWork,
        until_ms: u64,
    ) -> Result<(), StoreError> {
        self.unlocked(&work.lock_token, &work.instance.instance_id);
        self.inner.defer_orchestration_work(work, until_ms).await
    }

    async fn fetch_activity_work(
        &self,
        max: usize,
        lock_for: Duration,
    ) -> Result<Vec<LockedActivity>, StoreError> {
        self.inner.fetch_activity_work(max, lock_for).await
    }

    async fn complete_activity(
        &self,
        locked: &LockedActivity,
        completion: OrchestratorMessage,
    ) -> Result<(), StoreError> {
        self.inner.complete_activity(locked, completion).await
    }

    async fn complete_activity_and_lock(
        &self,
        locked: &LockedActivity,
        completion: OrchestratorMessage,
        lock_for: Duration,
    ) -> Result<Option<OrchestrationWork>, StoreError> {
        let asked_us = now_us();
        let work = self
            .inner
            .complete_activity_and_lock(locked, completion, lock_for)
            .await?;
        if let Some(work) = &work {
            self.locked(&work.lock_token, &work.instance.instance_id, asked_us);
        }
        Ok(work)
    }

    async fn release_activity_work(&self, locked: &LockedActivity) -> Result<(), StoreError> {
        self.inner.release_activity_work(locked).await
    }

    async fn renew_activity_lock(
        &self,
        locked: &LockedActivity,
        lock_for: Duration,
    ) -> Result<(), StoreError> {
        self.inner.renew_activity_lock(locked, lock_for).await
    }

    async fn defer_activity_work(
        &self,
        locked: &LockedActivity,
        until_ms: u64,
    ) -> Result<(), StoreError> {
        self.inner.defer_activity_work(locked, until_ms).await
    }

    async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        self.inner.queue_stats().await
    }

    fn clock(&self) -> SharedClock {
        self.inner.clock()
    }

    async fn next_wake_at_ms(&self) -> Result<Option<u64>, StoreError> {
        self.inner.next_wake_at_ms().await
    }

    fn orchestrator_signal(&self) -> Arc<Notify> {
        self.inner.orchestrator_signal()
    }

    fn activity_signal(&self) -> Arc<Notify> {
        self.inner.activity_signal()
    }

    fn finish_notices(&self) -> Option<Arc<FinishNotices>> {
        self.inner.finish_notices()
    }

    async fn list_instances(&self, filter: &InstanceFilter) -> Result<InstancePage, StoreError> {
        self.inner.list_instances(filter).await
    }

    async fn instances_by_id(&self, ids: &[String]) -> Result<Vec<InstanceRecord>, StoreError> {
        self.inner.instances_by_id(ids).await
    }

    async fn instance_counts(&self, query: CountsQuery) -> Result<InstanceCounts, StoreError> {
        self.inner.instance_counts(query).await
    }

    async fn purge_instance(&self, instance_id: &str) -> Result<PurgeOutcome, StoreError> {
        self.inner.purge_instance(instance_id).await
    }

    async fn purge_finished(&self, filter: &PurgeFilter, limit: u32) -> Result<u64, StoreError> {
        self.inner.purge_finished(filter, limit).await
    }

    async fn put_artifact(
        &self,
        artifact: NewArtifact,
    ) -> Result<(ArtifactSummary, bool), StoreError> {
        self.inner.put_artifact(artifact).await
    }

    async fn list_artifacts(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<ArtifactSummary>, StoreError> {
        self.inner.list_artifacts(tenant).await
    }

    async fn artifact(&self, tenant: &str, digest: &str) -> Result<Option<Artifact>, StoreError> {
        self.inner.artifact(tenant, digest).await
    }

    async fn remove_artifact(
        &self,
        tenant: &str,
        digest: &str,
    ) -> Result<RemoveOutcome, StoreError> {
        self.inner.remove_artifact(tenant, digest).await
    }

    async fn pinned_instances(
        &self,
        tenant: &str,
        digest: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.pinned_instances(tenant, digest, limit).await
    }

    async fn repin_instance(
        &self,
        instance_id: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        self.inner.repin_instance(instance_id, from, to).await
    }
}
