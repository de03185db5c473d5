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

impl Listener {
    /// Listens on `channel` and wakes `orchestrator` or `activity` for every
    /// notice not tagged `tag`.
    pub(super) async fn start(
        pool: &PgPool,
        channel: &str,
        tag: String,
        orchestrator: Arc<Notify>,
        activity: Arc<Notify>,
    ) -> Result<Self, StoreError> {
        let mut listener = PgListener::connect_with(pool)
            .await
            .map_err(db("connecting the notice listener"))?;
        listener
            .listen(channel)
            .await
            .map_err(db("listening for notices"))?;
        let task = tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
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
                    // The connection dropped; the next call reconnects.
                    // Notices sent meanwhile are lost: look for work now.
                    Ok(None) => {
                        orchestrator.notify_one();
                        activity.notify_one();
                    }
                    // The store was closed: give the connection back.
                    Err(sqlx_core::Error::PoolClosed) => return,
                    Err(e) => {
                        tracing::warn!("the PostgreSQL notice listener failed: {e}");
                        orchestrator.notify_one();
                        activity.notify_one();
                        tokio::time::sleep(Duration::from_secs(1)).await;
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
