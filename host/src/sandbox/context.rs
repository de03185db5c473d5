//! The host side of the `context` interface: each import forwards to the
//! execution's [`OrchestrationHost`]; `wait` parks the guest between turns.

use std::future::poll_fn;
use std::time::Instant;

use super::bindings::LogLevel;
use super::bindings::duroxide::orchestration::{activity_context, context, types};
use super::fault::GuestFault;
use super::orchestration_host::{Completion, OrchestrationHost, Outcome, RetryPolicy};
use super::state::GuestState;
use crate::limits::TextKind;

impl GuestState {
    fn host(&mut self) -> Result<&mut dyn OrchestrationHost, GuestFault> {
        match self.orchestration.as_deref_mut() {
            Some(host) => Ok(host),
            None => Err(GuestFault::NoContext),
        }
    }
}

impl From<Completion> for types::Completion {
    fn from(completion: Completion) -> Self {
        types::Completion {
            task: completion.task,
            outcome: match completion.outcome {
                Outcome::Ok(output) => types::Outcome::Ok(output),
                Outcome::Err(error) => types::Outcome::Err(error),
            },
        }
    }
}

impl GuestState {
    /// Answers a wait with what `poll` finds recorded; while nothing is,
    /// the turn is over: hand its results to the dispatcher and sleep until
    /// the next turn's messages.
    async fn wait_until(
        &mut self,
        mut poll: impl FnMut(&mut dyn OrchestrationHost) -> Result<Option<Completion>, GuestFault>,
    ) -> wasmtime::Result<types::Completion> {
        loop {
            let host = self.host()?;
            if let Some(completion) = poll(host)? {
                return Ok(completion.into());
            }
            host.end_turn()?;
            poll_fn(|cx| host.poll_next_turn(cx)).await?;
            self.cpu.start_turn(Instant::now());
        }
    }
}

impl types::Host for GuestState {}

impl activity_context::Host for GuestState {
    fn info(&mut self) -> wasmtime::Result<activity_context::ActivityInfo> {
        let call = self
            .activity
            .as_ref()
            .ok_or(GuestFault::NoActivityContext)?;
        let info = &call.info;
        Ok(activity_context::ActivityInfo {
            instance_id: info.instance_id.clone(),
            execution_id: info.execution_id,
            name: info.name.clone(),
            attempt: info.attempt,
        })
    }

    fn cancelled(&mut self) -> wasmtime::Result<bool> {
        let call = self
            .activity
            .as_ref()
            .ok_or(GuestFault::NoActivityContext)?;
        Ok(call.cancelled.is_cancelled())
    }
}

/// The limits on what a guest hands over (names, ids, payloads, delays) are
/// checked by the host, first thing in each import. The bindings
/// have lifted a guest's strings into host memory by the time an import
/// runs: a string can be no larger than the guest's memory, which its own
/// limit bounds. A string over its limit is dropped as the import returns
/// the fault, before anything keeps it.
impl context::Host for GuestState {
    fn schedule_activity(&mut self, name: String, input: String) -> wasmtime::Result<u64> {
        Ok(self.host()?.schedule_activity(name, input)?)
    }

    fn schedule_activity_with_retry(
        &mut self,
        name: String,
        input: String,
        policy: types::RetryPolicy,
    ) -> wasmtime::Result<u64> {
        let policy = RetryPolicy {
            max_attempts: policy.max_attempts,
            initial_backoff_ms: policy.initial_backoff_ms,
            backoff_coefficient: policy.backoff_coefficient,
            max_backoff_ms: policy.max_backoff_ms,
            attempt_timeout_ms: policy.attempt_timeout_ms,
            total_timeout_ms: policy.total_timeout_ms,
        };
        Ok(self
            .host()?
            .schedule_activity_with_retry(name, input, policy)?)
    }

    fn schedule_timer(&mut self, delay_ms: u64) -> wasmtime::Result<u64> {
        Ok(self.host()?.schedule_timer(delay_ms)?)
    }

    fn schedule_sub_orchestration(
        &mut self,
        name: String,
        version: Option<String>,
        instance_id: Option<String>,
        input: String,
    ) -> wasmtime::Result<u64> {
        Ok(self
            .host()?
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
            .host()?
            .start_detached(name, version, instance_id, input)?)
    }

    fn continue_as_new(&mut self, input: String, version: Option<String>) -> wasmtime::Result<()> {
        // Unwinds the guest: its execution is over either way.
        Err(self.host()?.continue_as_new(input, version).into())
    }

    fn wait_for_event(&mut self, name: String) -> wasmtime::Result<u64> {
        Ok(self.host()?.wait_for_event(name)?)
    }

    fn cancel_task(&mut self, task: u64) -> wasmtime::Result<()> {
        Ok(self.host()?.cancel_task(task)?)
    }

    async fn wait(&mut self, tasks: Vec<u64>) -> wasmtime::Result<types::Completion> {
        self.wait_until(|host| host.poll_wait(&tasks)).await
    }

    fn watch(&mut self, tasks: Vec<u64>) -> wasmtime::Result<()> {
        Ok(self.host()?.watch(&tasks)?)
    }

    async fn wait_any(&mut self) -> wasmtime::Result<types::Completion> {
        self.wait_until(|host| host.poll_wait_any()).await
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.host()?.now_ms())
    }

    fn new_guid(&mut self) -> wasmtime::Result<String> {
        Ok(self.host()?.new_guid())
    }

    fn random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(self.host()?.random_u64())
    }

    fn set_custom_status(&mut self, status: Option<String>) -> wasmtime::Result<()> {
        Ok(self.host()?.set_custom_status(status)?)
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let host = self.host()?;
        if host.is_replaying() {
            return Ok(());
        }
        let message = host.limits().truncate(TextKind::LogLine, &message);
        let instance = host.instance_id();
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
        Ok(self.host()?.is_replaying())
    }
}
