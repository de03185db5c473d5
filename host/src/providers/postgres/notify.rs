//! Wake-ups across processes: after a write that makes work fetchable has
//! committed, the store sends a notice (`pg_notify`) on its channel; each
//! store object listens on one connection of its own and wakes its
//! dispatchers, so an idle runtime in another process starts at once
//! instead of at its next poll.
//!
//! Notices are sent by a [`Notifier`], in a transaction of their own, not
//! inside the writes: PostgreSQL serializes every committing transaction
//! that notified, on one lock for the whole server held through the
//! commit's WAL flush, so notices inside the writes would make concurrent
//! commits wait for each other's flushes instead of sharing one (the
//! README's Performance section has the figures). The notifier keeps at most one notice statement in flight,
//! covering every write committed before it started. A notice lost (a
//! crash after the commit, a failed send) costs another process a poll
//! interval, never the work: polling finds it.
//!
//! A notice is `o:TAG` (orchestrator work) or `a:TAG` (activity work),
//! TAG naming the store object that wrote it: a store ignores its own,
//! which it signalled directly after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use sqlx_postgres::{PgListener, PgPool, Postgres};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::codec::{db, process_tag};
use crate::providers::StoreError;

/// The notice that orchestrator messages became fetchable.
const ORCHESTRATOR: &str = "o";
/// The notice that activity work became fetchable.
const ACTIVITY: &str = "a";

/// What a committed write made fetchable.
#[derive(Debug, Clone, Copy)]
pub(super) enum Work {
    /// Orchestrator messages.
    Orchestrator,
    /// Activity work.
    Activity,
}

impl Work {
    /// Its bit in the notifier's pending set.
    fn bit(self) -> u8 {
        match self {
            Work::Orchestrator => 1,
            Work::Activity => 2,
        }
    }
}

/// Sends a store object's notices after its writes commit, coalesced: one
/// statement at a time, each announcing what every write since the last
/// one made fetchable. Stops when dropped.
#[derive(Debug)]
pub(super) struct Notifier {
    /// The [`Work::bit`]s announced and not yet sent.
    pending: Arc<AtomicU8>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Notifier {
    /// Sends on `channel`, tagged `tag`, through `pool`.
    pub(super) fn start(pool: PgPool, channel: String, tag: String) -> Self {
        let pending = Arc::new(AtomicU8::new(0));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn({
            let (pending, wake) = (Arc::clone(&pending), Arc::clone(&wake));
            async move {
                loop {
                    wake.notified().await;
                    let bits = pending.swap(0, Ordering::AcqRel);
                    let notices: Vec<String> = [
                        (Work::Orchestrator, ORCHESTRATOR),
                        (Work::Activity, ACTIVITY),
                    ]
                    .into_iter()
                    .filter(|(work, _)| bits & work.bit() != 0)
                    .map(|(_, kind)| format!("{kind}:{tag}"))
                    .collect();
                    if notices.is_empty() {
                        continue;
                    }
                    let sent = sqlx_core::query::query::<Postgres>(
                        "SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n",
                    )
                    .bind(&channel)
                    .bind(&notices)
                    .execute(&pool)
                    .await;
                    match sent {
                        Ok(_) => {}
                        Err(sqlx_core::Error::PoolClosed) => return,
                        Err(e) => tracing::warn!(
                            "a PostgreSQL notice was not sent ({e}); \
                             other processes find the work when they next poll"
                        ),
                    }
                }
            }
        });
        Self {
            pending,
            wake,
            task,
        }
    }

    /// Announces to other processes that a committed write made `work`
    /// fetchable.
    pub(super) fn announce(&self, work: Work) {
        self.pending.fetch_or(work.bit(), Ordering::AcqRel);
        self.wake.notify_one();
    }
}

/// The channel of the store in `schema`: stores of one database in
/// different schemas do not wake each other. A channel name is an
/// identifier, at most 63 bytes.
pub(super) fn channel(schema: &str) -> String {
    let mut name = format!("duroxide.{schema}");
    if name.len() > 63 {
        let mut end = 63;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// A tag unique to one store object of this process.
pub(super) fn new_tag() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}.{}",
        process_tag(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The listening task; stopped when the store is dropped.
#[derive(Debug)]
pub(super) struct Listener {
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Longest wait between two attempts to reconnect the listener.
const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(5);

/// A listener on `channel`, connected through `pool`. It does not reconnect
/// by itself: the listening task does, so it knows when notices may have
/// been lost.
async fn subscribe(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx_core::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

impl Listener {
    /// Listens on `channel` and wakes `orchestrator` or `activity` for every
    /// notice not tagged `tag`. A lost connection is reconnected with
    /// backoff; both are woken when it is lost and when it is back, since
    /// notices sent meanwhile are lost, and the dispatchers' polls find the
    /// work in between.
    pub(super) async fn start(
        pool: &PgPool,
        channel: &str,
        tag: String,
        orchestrator: Arc<Notify>,
        activity: Arc<Notify>,
    ) -> Result<Self, StoreError> {
        let first = subscribe(pool, channel)
            .await
            .map_err(db("connecting the notice listener"))?;
        let (pool, channel) = (pool.clone(), channel.to_owned());
        let wake = {
            let (orchestrator, activity) = (Arc::clone(&orchestrator), Arc::clone(&activity));
            move || {
                orchestrator.notify_one();
                activity.notify_one();
            }
        };
        let task = tokio::spawn(async move {
            let mut listener = Some(first);
            let mut backoff = Duration::from_millis(100);
            loop {
                let Some(active) = listener.as_mut() else {
                    match subscribe(&pool, &channel).await {
                        Ok(again) => {
                            tracing::info!("the PostgreSQL notice listener reconnected");
                            listener = Some(again);
                            backoff = Duration::from_millis(100);
                            wake();
                        }
                        // The store was closed: give the connection back.
                        Err(sqlx_core::Error::PoolClosed) => return,
                        Err(e) => {
                            tracing::debug!("reconnecting the notice listener failed: {e}");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_RECONNECT_BACKOFF);
                        }
                    }
                    continue;
                };
                match active.try_recv().await {
                    Ok(Some(notice)) => {
                        let (kind, from) = notice.payload().split_once(':').unwrap_or(("", ""));
                        if from == tag {
                            continue;
                        }
                        match kind {
                            ORCHESTRATOR => orchestrator.notify_one(),
                            ACTIVITY => activity.notify_one(),
                            _ => {}
                        }
                    }
                    Err(sqlx_core::Error::PoolClosed) => return,
                    lost => {
                        let why = lost
                            .err()
                            .map_or_else(|| "the connection closed".to_owned(), |e| e.to_string());
                        tracing::warn!(
                            "the PostgreSQL notice listener lost its connection ({why}); \
                             the dispatchers poll until it reconnects"
                        );
                        listener = None;
                        wake();
                    }
                }
            }
        });
        Ok(Self { task })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_name_fits_an_identifier() {
        assert_eq!(channel("public"), "duroxide.public");
        assert_eq!(channel(&"é".repeat(40)).len(), 63);
        assert_ne!(new_tag(), new_tag());
    }
}
