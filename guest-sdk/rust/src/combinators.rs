//! Deterministic join and select helpers for orchestration futures.
//!
//! # Determinism
//!
//! Whenever the orchestration is pending, the executor hands the host every
//! task the pending futures polled, and the host's `wait` answers with the one
//! whose completion comes first in the history. These helpers poll their
//! children in a fixed order (index order; `a` before `b`), so the same history
//! always resolves a join or a race the same way, on the first run and on
//! every replay.
//!
//! A race drops its losers, and dropping an unfinished task cancels it on the
//! host: the cancellation is recorded in history, so a replay cancels at the
//! same point. A cancelled event subscription gives its event (arrived or
//! not) to the next wait for that name; a cancelled child orchestration is
//! cancelled; a cancelled activity or timer is ignored when it completes. To
//! keep a loser and await it later, pass it by reference: the SDK's task
//! types are `Unpin`, so `select2(&mut activity, timer)` leaves `activity`
//! usable and uncancelled.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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
/// Each poll polls every child that is not finished yet, in index order, so
/// the host sees all of them as candidates and hands back whichever completes
/// first in history. An empty list completes at once with an empty list.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    JoinAll {
        slots: futures
            .into_iter()
            .map(|f| Slot::Running(Box::pin(f)))
            .collect(),
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
}

// The children are pinned in their own boxes and outputs are never pinned, so
// moving a `JoinAll` is fine whatever `F` and its output are.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut all_done = true;
        for slot in &mut this.slots {
            if let Slot::Running(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(output) => *slot = Slot::Done(output),
                    Poll::Pending => all_done = false,
                }
            }
        }
        if !all_done {
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
        log: Rc<RefCell<Vec<&'static str>>>,
        /// Not `Unpin`, to check that the helpers accept such futures.
        _pin: std::marker::PhantomPinned,
    }

    impl Future for Probe {
        type Output = &'static str;

        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<&'static str> {
            self.log.borrow_mut().push(self.name);
            let polls = self.polls.get() + 1;
            self.polls.set(polls);
            if polls >= self.ready_at {
                Poll::Ready(self.name)
            } else {
                Poll::Pending
            }
        }
    }

    fn probe(name: &'static str, ready_at: u32, log: &Rc<RefCell<Vec<&'static str>>>) -> Probe {
        Probe {
            name,
            polls: Cell::new(0),
            ready_at,
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
