//! The runtime's side of an orchestration sandbox: the replay engine answers
//! the guest's context, and a mailbox passes each turn between the parked
//! guest and the turn that runs it.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::execution::TurnInput;
use super::replay::{Replay, TurnOutput};
use crate::limits::TextLimits;
use crate::sandbox::{
    Completion, GuestFault, OrchestrationHost, RetryPolicy, SeededRandom, TurnClock,
};

/// What passes between a parked guest and the turn that runs it.
#[derive(Default)]
pub(crate) struct Mailbox {
    /// The next turn's messages, left by the turn before it polls the guest.
    pub(crate) input: Option<TurnInput>,
    /// The results of a turn the guest ended by parking, or of its last.
    pub(crate) parked: Option<TurnOutput>,
    /// Why the guest gave its turn back, to run again later (see
    /// `OrchestrationHost::give_back`).
    pub(crate) gave_back: Option<String>,
}

/// One execution's replay, linked to the turns that run its guest.
pub(crate) struct LinkedReplay {
    replay: Replay,
    mailbox: Arc<Mutex<Mailbox>>,
}

impl LinkedReplay {
    /// `replay` answering a guest whose turns pass through `mailbox`.
    pub(crate) fn new(replay: Replay, mailbox: Arc<Mutex<Mailbox>>) -> Self {
        LinkedReplay { replay, mailbox }
    }
}

impl OrchestrationHost for LinkedReplay {
    fn instance_id(&self) -> &str {
        self.replay.instance_id()
    }

    fn limits(&self) -> &TextLimits {
        self.replay.limits()
    }

    fn clock(&self) -> TurnClock {
        self.replay.clock()
    }

    fn replaying_flag(&self) -> Arc<AtomicBool> {
        self.replay.replaying_flag()
    }

    fn wasi_random(&self) -> SeededRandom {
        self.replay.wasi_random()
    }

    fn schedule_activity(&mut self, name: String, input: String) -> Result<u64, GuestFault> {
        self.replay.schedule_activity(name, input)
    }

    fn schedule_activity_with_retry(
        &mut self,
        name: String,
        input: String,
        policy: RetryPolicy,
    ) -> Result<u64, GuestFault> {
        self.replay
            .schedule_activity_with_retry(name, input, policy)
    }

    fn schedule_timer(&mut self, delay_ms: u64) -> Result<u64, GuestFault> {
        self.replay.schedule_timer(delay_ms)
    }

    fn schedule_sub_orchestration(
        &mut self,
        name: String,
        version: Option<String>,
        instance_id: Option<String>,
        input: String,
    ) -> Result<u64, GuestFault> {
        self.replay
            .schedule_sub_orchestration(name, version, instance_id, input)
    }

    fn start_detached(
        &mut self,
        name: String,
        version: Option<String>,
        instance_id: String,
        input: String,
    ) -> Result<(), GuestFault> {
        self.replay
            .start_detached(name, version, instance_id, input)
    }

    fn continue_as_new(&mut self, input: String, version: Option<String>) -> GuestFault {
        self.replay.continue_as_new(input, version)
    }

    fn wait_for_event(&mut self, name: String) -> Result<u64, GuestFault> {
        self.replay.wait_for_event(name)
    }

    fn cancel_task(&mut self, task: u64) -> Result<(), GuestFault> {
        self.replay.cancel_task(task)
    }

    fn poll_wait(&mut self, tasks: &[u64]) -> Result<Option<Completion>, GuestFault> {
        self.replay.poll_wait(tasks)
    }

    fn watch(&mut self, tasks: &[u64]) -> Result<(), GuestFault> {
        self.replay.watch(tasks)
    }

    fn poll_wait_any(&mut self) -> Result<Option<Completion>, GuestFault> {
        self.replay.poll_wait_any()
    }

    fn end_turn(&mut self) -> Result<(), GuestFault> {
        let output = self.replay.take_turn_output();
        self.mailbox
            .lock()
            .map_err(|_| GuestFault::Unlinked)?
            .parked = Some(output);
        Ok(())
    }

    fn poll_next_turn(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), GuestFault>> {
        // No waker is kept: only a turn polls the guest, and it leaves the
        // input before it does.
        let Ok(mut mailbox) = self.mailbox.lock() else {
            return Poll::Ready(Err(GuestFault::Unlinked));
        };
        let Some(input) = mailbox.input.take() else {
            return Poll::Pending;
        };
        if self.replay.begin_turn(input.now_ms, &input.messages) > 0 {
            return Poll::Ready(Ok(()));
        }
        // Nothing the execution records (stale or duplicate messages): this
        // turn ends too, the guest still parked.
        mailbox.parked = Some(self.replay.take_turn_output());
        Poll::Pending
    }

    fn complete(&mut self, output: String) -> Result<(), GuestFault> {
        self.replay.complete(output)
    }

    fn fail(&mut self, error: String, returned_by_code: bool) -> Result<(), GuestFault> {
        self.replay.fail(error, returned_by_code)
    }

    fn now_ms(&self) -> u64 {
        self.replay.now_ms()
    }

    fn new_guid(&mut self) -> String {
        self.replay.new_guid()
    }

    fn random_u64(&mut self) -> u64 {
        self.replay.random_u64()
    }

    fn set_custom_status(&mut self, status: Option<String>) -> Result<(), GuestFault> {
        self.replay.set_custom_status(status)
    }

    fn is_replaying(&self) -> bool {
        self.replay.is_replaying()
    }

    fn give_back(&mut self, reason: String) {
        if let Ok(mut mailbox) = self.mailbox.lock() {
            mailbox.gave_back = Some(reason);
        }
    }
}
