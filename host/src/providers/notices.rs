//! In-process notice that an instance finished: a store object tells the
//! waiters registered with it when one of its own commits makes an instance
//! terminal, so a client sharing the store object with a runtime learns of
//! the end at once instead of polling for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// The waiters of one store object, by instance id. Only instances someone
/// waits for have an entry, so a commit with nobody waiting costs one
/// lookup in a small map.
#[derive(Debug, Default)]
pub struct FinishNotices {
    waiting: Mutex<HashMap<String, Waiters>>,
}

#[derive(Debug)]
struct Waiters {
    count: usize,
    notify: Arc<Notify>,
}

impl FinishNotices {
    /// Registers a waiter for `instance_id`; it hears every
    /// [`notify`](Self::notify) for that id until it is dropped.
    pub fn subscribe(self: &Arc<Self>, instance_id: &str) -> FinishWatch {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = waiting
            .entry(instance_id.to_owned())
            .or_insert_with(|| Waiters {
                count: 0,
                notify: Arc::new(Notify::new()),
            });
        entry.count += 1;
        FinishWatch {
            notices: Arc::clone(self),
            instance_id: instance_id.to_owned(),
            notify: Arc::clone(&entry.notify),
        }
    }

    /// Wakes every waiter of `instance_id` (a commit just made it terminal).
    pub fn notify(&self, instance_id: &str) {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waiters) = waiting.get(instance_id) {
            waiters.notify.notify_waiters();
        }
    }

    /// How many instances have waiters.
    pub fn watched(&self) -> usize {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn unsubscribe(&self, instance_id: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waiters) = waiting.get_mut(instance_id) {
            waiters.count -= 1;
            if waiters.count == 0 {
                waiting.remove(instance_id);
            }
        }
    }
}

/// One waiter's registration, undone when dropped.
#[derive(Debug)]
pub struct FinishWatch {
    notices: Arc<FinishNotices>,
    instance_id: String,
    notify: Arc<Notify>,
}

impl FinishWatch {
    /// The signal to wait on. Create its `notified()` future and `enable` it
    /// before reading the status, so a finish between the read and the wait
    /// is not missed.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for FinishWatch {
    fn drop(&mut self) {
        self.notices.unsubscribe(&self.instance_id);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    #[tokio::test]
    async fn a_notice_wakes_the_waiters_of_that_instance_only() {
        let notices = Arc::new(FinishNotices::default());
        let a = notices.subscribe("a");
        let b = notices.subscribe("b");
        let mut wait_a = pin!(a.notify().notified());
        let mut wait_b = pin!(b.notify().notified());
        wait_a.as_mut().enable();
        wait_b.as_mut().enable();
        notices.notify("a");
        assert!(futures_poll(wait_a.as_mut()), "the waiter of 'a' is woken");
        assert!(!futures_poll(wait_b.as_mut()), "the waiter of 'b' is not");
    }

    #[test]
    fn dropping_the_last_watch_forgets_the_instance() {
        let notices = Arc::new(FinishNotices::default());
        let first = notices.subscribe("a");
        let second = notices.subscribe("a");
        assert_eq!(notices.watched(), 1);
        drop(first);
        assert_eq!(notices.watched(), 1, "one waiter is left");
        drop(second);
        assert_eq!(notices.watched(), 0);
        notices.notify("a");
    }

    /// Polls a future once.
    fn futures_poll<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        f.poll(&mut cx).is_ready()
    }
}
