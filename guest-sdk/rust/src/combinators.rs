//! Deterministic join and select helpers for orchestration futures.
//!
//! # Determinism
//!
//! Whenever the orchestration is pending, the executor hands the host every
//! task the pending futures wait on, and the host's `wait` answers with the one
//! whose completion comes first in the history. These helpers poll their
//! children in a fixed order (index order; `a` before `b`), so the same history
//! always resolves a join or a race the same way, on the first run and on
//! every replay. A join polls again only the children whose tasks resolved
//! (they are woken), so joining n tasks costs O(n), not O(n²).
//!
//! A race drops its losers, and dropping an unfinished task cancels it on the
//! host: the cancellation is recorded in history, so a replay cancels at the
//! same point. A cancelled event subscription gives its event (arrived or
//! not) to the next wait for that name; a cancelled child orchestration is
//! cancelled; a cancelled activity or timer is ignored when it completes. To
//! keep a loser and await it later, pass it by reference: the SDK's task
//! types are `Unpin`, so `select2(&mut activity, timer)` leaves `activity`
//! usable and uncancelled.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// The result of [`select2`]: which of the two futures finished first, and its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Either<A, B> {
    /// The first future (`a`) finished first.
    Left(A),
    /// The second future (`b`) finished first.
    Right(B),
}

/// Wait for every future in `futures` and return their outputs in input order.
///
/// The first poll polls every child in index order; later polls poll, in
/// index order, the children that were woken since. The host sees every
/// unfinished child's task as a candidate and hands back whichever completes
/// first in history. An empty list completes at once with an empty list.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let slots: Vec<Slot<F>> = futures
        .into_iter()
        .map(|f| Slot::Running(Box::pin(f)))
        .collect();
    let woken = Arc::new(Woken::default());
    let wakers = (0..slots.len())
        .map(|index| {
            Waker::from(Arc::new(ChildWaker {
                index,
                woken: woken.clone(),
            }))
        })
        .collect();
    JoinAll {
        running: slots.len(),
        slots,
        woken,
        wakers,
        polled: false,
    }
    .await
}

/// Race `a` against `b`: the output of whichever finishes first.
///
/// Each poll polls `a`, then `b`; when both are ready in the same poll, `a`
/// wins. The loser is dropped, which cancels it (see the [module docs](self)).
pub async fn select2<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    Select2 {
        a: Box::pin(a),
        b: Box::pin(b),
    }
    .await
}

/// Race every future in `futures`: the index and output of the first to finish.
///
/// Each poll polls the futures in index order; when several are ready in the
/// same poll, the lowest index wins. The losers are dropped, which cancels
/// them (see the [module docs](self)).
///
/// # Panics
///
/// Panics if `futures` is empty: nothing could ever finish.
pub async fn select_all<F: Future>(futures: Vec<F>) -> (usize, F::Output) {
    assert!(
        !futures.is_empty(),
        "select_all needs at least one future to race"
    );
    SelectAll {
        futures: futures.into_iter().map(Box::pin).collect(),
    }
    .await
}

/// One child of [`JoinAll`].
enum Slot<F: Future> {
    /// Still running.
    Running(Pin<Box<F>>),
    /// Finished; its output waits for the others.
    Done(F::Output),
    /// Output handed out.
    Taken,
}

/// The future behind [`join_all`].
struct JoinAll<F: Future> {
    slots: Vec<Slot<F>>,
    /// Children not finished yet.
    running: usize,
    /// Which children were woken, and who to wake in turn.
    woken: Arc<Woken>,
    /// One waker per child, marking it woken.
    wakers: Vec<Waker>,
    /// Whether every child has been polled once.
    polled: bool,
}

/// The children of a [`JoinAll`] woken since its last poll.
#[derive(Default)]
struct Woken {
    indices: Mutex<BTreeSet<usize>>,
    /// The waker of the task polling the join.
    parent: Mutex<Option<Waker>>,
}

/// Wakes one child of a [`JoinAll`]: marks it, then wakes the join's poller.
struct ChildWaker {
    index: usize,
    woken: Arc<Woken>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken
            .indices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.index);
        let parent = self
            .woken
            .parent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(parent) = parent {
            parent.wake();
        }
    }
}

// The children are pinned in their own boxes and outputs are never pinned, so
// moving a `JoinAll` is fine whatever `F` and its output are.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        {
            let mut parent = this
                .woken
                .parent
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !parent.as_ref().is_some_and(|p| p.will_wake(cx.waker())) {
                *parent = Some(cx.waker().clone());
            }
        }
        let due: Vec<usize> = if this.polled {
            std::mem::take(
                &mut *this
                    .woken
                    .indices
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            )
            .into_iter()
            .collect()
        } else {
            this.polled = true;
            (0..this.slots.len()).collect()
        };
        for index in due {
            let (Some(slot), Some(waker)) = (this.slots.get_mut(index), this.wakers.get(index))
            else {
                continue;
            };
            if let Slot::Running(future) = slot
                && let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(waker))
            {
                *slot = Slot::Done(output);
                this.running -= 1;
            }
        }
        if this.running > 0 {
            return Poll::Pending;
        }
        let outputs = this
            .slots
            .iter_mut()
            .filter_map(|slot| match std::mem::replace(slot, Slot::Taken) {
                Slot::Done(output) => Some(output),
                Slot::Running(_) | Slot::Taken => None,
            })
            .collect();
        Poll::Ready(outputs)
    }
}

/// The future behind [`select2`].
struct Select2<A, B> {
    a: Pin<Box<A>>,
    b: Pin<Box<B>>,
}

impl<A: Future, B: Future> Future for Select2<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(output) = this.a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(output));
        }
        if let Poll::Ready(output) = this.b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(output));
        }
        Poll::Pending
    }
}

/// The future behind [`select_all`].
struct SelectAll<F> {
    futures: Vec<Pin<Box<F>>>,
}

impl<F: Future> Future for SelectAll<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        for (index, future) in this.futures.iter_mut().enumerate() {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready((index, output));
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::task::Waker;

    use super::*;

    /// A future that is ready once `ready_at` polls have happened, recording
    /// each poll in a shared log under its `name`.
    struct Probe {
        name: &'static str,
        polls: Cell<u32>,
        ready_at: u32,
        /// Whether a pending poll wakes the poller (as a resolved task does).
        wakes: bool,
        log: Rc<RefCell<Vec<&'static str>>>,
        /// Not `Unpin`, to check that the helpers accept such futures.
        _pin: std::marker::PhantomPinned,
    }

    impl Future for Probe {
        type Output = &'static str;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            self.log.borrow_mut().push(self.name);
            let polls = self.polls.get() + 1;
            self.polls.set(polls);
            if polls >= self.ready_at {
                Poll::Ready(self.name)
            } else {
                if self.wakes {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }

    fn probe(name: &'static str, ready_at: u32, log: &Rc<RefCell<Vec<&'static str>>>) -> Probe {
        Probe {
            name,
            polls: Cell::new(0),
            ready_at,
            wakes: true,
            log: log.clone(),
            _pin: std::marker::PhantomPinned,
        }
    }

    /// Poll `future` until ready, at most `limit` times; the output and the poll count.
    fn drive<F: Future>(future: F, limit: u32) -> Option<(F::Output, u32)> {
        let mut future = Box::pin(future);
        let mut cx = Context::from_waker(Waker::noop());
        for n in 1..=limit {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return Some((output, n));
            }
        }
        None
    }

    #[test]
    fn join_all_keeps_input_order_and_polls_only_unfinished_children() {
        let log = Rc::default();
        let futures = vec![
            probe("a", 3, &log),
            probe("b", 1, &log),
            probe("c", 2, &log),
        ];
        let result = drive(join_all(futures), 10);
        assert_eq!(result, Some((vec!["a", "b", "c"], 3)));
        assert_eq!(*log.borrow(), ["a", "b", "c", "a", "c", "a"]);
    }

    #[test]
    fn join_all_polls_again_only_the_children_that_were_woken() {
        let log = Rc::default();
        let mut asleep = probe("asleep", 2, &log);
        asleep.wakes = false;
        let futures = vec![asleep, probe("awake", 3, &log)];
        assert_eq!(drive(join_all(futures), 10), None);
        assert_eq!(*log.borrow(), ["asleep", "awake", "awake", "awake"]);
    }

    #[test]
    fn join_all_of_nothing_is_ready_at_once() {
        let result = drive(join_all(Vec::<Probe>::new()), 1);
        assert_eq!(result, Some((Vec::new(), 1)));
    }

    #[test]
    fn select2_polls_a_first_and_a_wins_ties() {
        let log = Rc::default();
        let result = drive(select2(probe("a", 2, &log), probe("b", 2, &log)), 10);
        assert_eq!(result, Some((Either::Left("a"), 2)));
        assert_eq!(*log.borrow(), ["a", "b", "a"]);
    }

    #[test]
    fn select2_returns_b_when_b_finishes_first() {
        let log = Rc::default();
        let result = drive(select2(probe("a", 5, &log), probe("b", 2, &log)), 10);
        assert_eq!(result, Some((Either::Right("b"), 2)));
    }

    #[test]
    fn select_all_returns_the_first_ready_in_index_order() {
        let log = Rc::default();
        let futures = vec![
            probe("a", 4, &log),
            probe("b", 2, &log),
            probe("c", 2, &log),
        ];
        let result = drive(select_all(futures), 10);
        assert_eq!(result, Some(((1, "b"), 2)));
        assert_eq!(*log.borrow(), ["a", "b", "c", "a", "b"]);
    }

    #[test]
    #[should_panic(expected = "select_all needs at least one future")]
    fn select_all_of_nothing_panics() {
        drive(select_all(Vec::<Probe>::new()), 1);
    }
}
