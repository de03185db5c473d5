//! The host side of the `context` interface: each import forwards to the
//! execution's replay engine; `wait` parks the guest between turns.

use std::time::Instant;

use super::bindings::duroxide::orchestration::{context, types};
use super::bindings::{Completion, LogLevel};
use super::state::GuestState;
use crate::limits::TextKind;
use crate::runtime::fault::GuestFault;
use crate::runtime::replay::Replay;

impl GuestState {
    fn replay(&mut self) -> Result<&mut Replay, GuestFault> {
        self.orchestration
            .as_deref_mut()
            .ok_or(GuestFault::NoContext)
    }
}

impl types::Host for GuestState {}

/// The limits on what a guest hands over (names, ids, payloads, delays) are
/// checked by the replay engine, first thing in each import. The bindings
/// have lifted a guest's strings into host memory by the time an import
/// runs: a string can be no larger than the guest's memory, which its own
/// limit bounds. A string over its limit is dropped as the import returns
/// the fault, before anything keeps it.
impl context::Host for GuestState {
    fn schedule_activity(&mut self, name: String, input: String) -> wasmtime::Result<u64> {
        Ok(self.replay()?.schedule_activity(name, input)?)
    }

    fn schedule_timer(&mut self, delay_ms: u64) -> wasmtime::Result<u64> {
        Ok(self.replay()?.schedule_timer(delay_ms)?)
    }

    fn schedule_sub_orchestration(
        &mut self,
        name: String,
        version: Option<String>,
        instance_id: Option<String>,
        input: String,
    ) -> wasmtime::Result<u64> {
        Ok(self
            .replay()?
            .schedule_sub_orchestration(name, version, instance_id, input)?)
    }

    fn start_orchestration(
        &mut self,
        name: String,
        version: Option<String>,
        instance_id: String,
        input: String,
    ) -> wasmtime::Result<()> {
        Ok(self
            .replay()?
            .start_detached(name, version, instance_id, input)?)
    }

    fn continue_as_new(&mut self, input: String, version: Option<String>) -> wasmtime::Result<()> {
        // Unwinds the guest: its execution is over either way.
        Err(self.replay()?.continue_as_new(input, version).into())
    }

    fn wait_for_event(&mut self, name: String) -> wasmtime::Result<u64> {
        Ok(self.replay()?.wait_for_event(name)?)
    }

    fn cancel_task(&mut self, task: u64) -> wasmtime::Result<()> {
        Ok(self.replay()?.cancel_task(task)?)
    }

    async fn wait(&mut self, tasks: Vec<u64>) -> wasmtime::Result<Completion> {
        loop {
            if let Some(completion) = self.replay()?.poll_wait(&tasks)? {
                return Ok(completion);
            }
            // Nothing recorded can answer: the turn is over. Hand its results
            // to the dispatcher and sleep until the next turn's messages.
            let Some(link) = self.turn_link.as_mut() else {
                return Err(GuestFault::NoContext.into());
            };
            let replay = self
                .orchestration
                .as_deref_mut()
                .ok_or(GuestFault::NoContext)?;
            link.park(replay).await?;
            self.deadline = Instant::now() + self.budget;
        }
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.replay()?.now_ms())
    }

    fn new_guid(&mut self) -> wasmtime::Result<String> {
        Ok(self.replay()?.new_guid())
    }

    fn random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(self.replay()?.random_u64())
    }

    fn set_custom_status(&mut self, status: Option<String>) -> wasmtime::Result<()> {
        Ok(self.replay()?.set_custom_status(status)?)
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let replay = self.replay()?;
        if replay.is_replaying() {
            return Ok(());
        }
        let message = replay.limits().truncate(TextKind::LogLine, &message);
        let instance = replay.instance_id();
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "duroxide::orchestration", %instance, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "duroxide::orchestration", %instance, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "duroxide::orchestration", %instance, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "duroxide::orchestration", %instance, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "duroxide::orchestration", %instance, "{message}")
            }
        }
        Ok(())
    }

    fn is_replaying(&mut self) -> wasmtime::Result<bool> {
        Ok(self.replay()?.is_replaying())
    }
}
