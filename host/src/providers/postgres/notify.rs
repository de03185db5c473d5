//! Wake-ups across processes: every write that makes work fetchable sends a
//! notice (`pg_notify`, inside its transaction, so it is delivered only if
//! the write commits) on the store's channel; each store object listens on
//! one connection of its own and wakes its dispatchers, so an idle runtime
//! in another process starts at once instead of at its next poll.
//!
//! A notice is `o:TAG` (orchestrator work) or `a:TAG` (activity work),
//! TAG naming the store object that wrote it: a store ignores its own,
//! which it signalled directly after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx_postgres::{PgListener, PgPool};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::codec::{db, process_tag};
use crate::providers::StoreError;

/// The notice that orchestrator messages became fetchable.
pub(super) const ORCHESTRATOR: &str = "o";
/// The notice that activity work became fetchable.
pub(super) const ACTIVITY: &str = "a";

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
