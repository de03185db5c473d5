//! The control side: `Client` starts, signals, cancels and inspects
//! orchestrations by writing to and reading from the store. It never runs
//! guest code and never talks to a runtime directly.

mod artifacts;
mod details;
mod health;
mod management;
mod typed;
mod types;

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::providers::InstanceStatus;
pub use crate::providers::artifacts::{ArtifactManifest, ArtifactPolicy, ArtifactSummary};
pub use crate::providers::query::{
    InstanceFilter, InstancePage, InstanceSummary, ListCursor, ListOrder, PurgeFilter,
};
pub use artifacts::Deployed;
pub use details::{
    ExecutionDetails, ExecutionStatus, ExecutionSummary, InstanceDetails, PendingActivity,
    PendingEvent, PendingSubOrchestration, PendingTimer, pending_work, summarize_execution,
};
pub use health::{LONG_RUNNING_AFTER, RECENT_FAILURE_WINDOW, SystemHealth, health_score};
pub use typed::TypedCompletion;
pub use types::{ClientError, InstanceInfo, OrchestrationStatus, StartOptions};

use crate::history::{Event, OrchestratorMessage};
use crate::limits::{TextKind, TextLimits, check_delay};
pub use crate::providers::SignalOutcome;
use crate::providers::{HistoryStore, InstanceRecord, NewInstance, StoreError};
use crate::tenant::Tenant;

/// Controls and inspects orchestrations through a store shared with one or
/// more runtimes, in this process or others.
///
/// A client works within one tenant ([`Client::for_tenant`]; the default
/// tenant for [`Client::new`]): the ids it takes and returns are that
/// tenant's, and another tenant's instances, components and histories are
/// invisible to it, exactly as if they did not exist.
///
/// What a client sends is held to the text limits stored in the store (see
/// [`crate::limits::settle`]): the same limits the runtimes run under,
/// never a copy of its own. A client reads them at most once a second
/// ([`LIMITS_FRESH_FOR`]), so a change reaches it within that.
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn HistoryStore>,
    max_poll_interval: Duration,
    /// The deployed components read last (see `artifacts`).
    deployed: Arc<artifacts::DeployedCache>,
    /// The stored text limits read last, and when.
    limits: Arc<std::sync::Mutex<Option<(Instant, TextLimits)>>>,
    /// The tenant every call works within.
    tenant: Tenant,
}

/// How long a client uses the text limits it read before reading them
/// again: a read per call cost a start as much as the start itself.
pub const LIMITS_FRESH_FOR: Duration = Duration::from_secs(1);

/// The longest pause between polls of [`Client::wait_for_completion`] by
/// default.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The first pause between polls: an instance that ends within a few
/// milliseconds is seen within a few.
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(2);

impl Client {
    /// A client over `store`, holding what it sends to the store's limits.
    pub fn new(store: Arc<dyn HistoryStore>) -> Self {
        Self {
            store,
            max_poll_interval: MAX_POLL_INTERVAL,
            deployed: Arc::default(),
            limits: Arc::default(),
            tenant: Tenant::default(),
        }
    }

    /// A client over `store` for tenant `tenant`, refused with
    /// [`ClientError::InvalidArgument`] unless the name follows the rules
    /// of [`crate::tenant`].
    pub fn for_tenant(store: Arc<dyn HistoryStore>, tenant: &str) -> Result<Self, ClientError> {
        let tenant =
            Tenant::new(tenant).map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        Ok(Self::new(store).with_tenant(tenant))
    }

    /// This client, working within `tenant` instead.
    pub fn with_tenant(mut self, tenant: Tenant) -> Self {
        if tenant != self.tenant {
            // What was read of the deployed components was the other tenant's.
            self.deployed = Arc::default();
        }
        self.tenant = tenant;
        self
    }

    /// The tenant this client works within.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The store key of this tenant's instance `instance_id`; an id that is
    /// empty or starts with `@` is refused.
    fn key(&self, instance_id: &str) -> Result<String, ClientError> {
        self.tenant
            .key(instance_id)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))
    }

    /// The id a store key of this tenant's has for the caller.
    fn unkey(&self, key: &str) -> String {
        self.tenant.id_of(key).unwrap_or(key).to_owned()
    }

    /// This tenant's row of `instance_id`, `None` when it has none.
    async fn record(&self, instance_id: &str) -> Result<Option<InstanceRecord>, ClientError> {
        let key = self.key(instance_id)?;
        let record = self
            .store
            .instance(&key)
            .await
            .map_err(ClientError::Storage)?;
        Ok(record.map(|r| self.unkey_record(r)))
    }

    /// `record` with the ids it holds as this tenant's caller knows them.
    fn unkey_record(&self, mut record: InstanceRecord) -> InstanceRecord {
        record.instance_id = self.unkey(&record.instance_id);
        record.parent_instance = record.parent_instance.map(|p| self.unkey(&p));
        record
    }

    /// The store clock's time: the client stamps what it enqueues with it.
    fn now_ms(&self) -> u64 {
        self.store.clock().now_ms()
    }

    /// Poll at most this far apart in [`wait_for_completion`]
    /// (default 100 ms): the bound on how late a wait hears of an end
    /// committed by another process.
    ///
    /// [`wait_for_completion`]: Self::wait_for_completion
    pub fn with_max_poll_interval(mut self, interval: Duration) -> Self {
        self.max_poll_interval = interval.max(FIRST_POLL_INTERVAL);
        self
    }

    /// The text limits this client's next call is held to: those stored in
    /// the store, or the defaults while none are stored.
    pub async fn text_limits(&self) -> Result<TextLimits, ClientError> {
        let cached = self
            .limits
            .lock()
            .ok()
            .and_then(|read| *read)
            .filter(|(at, _)| at.elapsed() < LIMITS_FRESH_FOR);
        if let Some((_, limits)) = cached {
            return Ok(limits);
        }
        let limits = self
            .store
            .text_limits()
            .await
            .map_err(ClientError::Storage)?
            .unwrap_or_default();
        if let Ok(mut read) = self.limits.lock() {
            *read = Some((Instant::now(), limits));
        }
        Ok(limits)
    }

    /// Start a new instance of orchestration `name`. Fails with
    /// [`ClientError::InstanceExists`] if `instance_id` is taken, and with
    /// [`ClientError::InvalidArgument`] if the id, name or version is too
    /// long, the version is not a semantic version, or the delay is out of
    /// range.
    pub async fn start_orchestration(
        &self,
        instance_id: &str,
        name: &str,
        input: &str,
        options: Option<StartOptions>,
    ) -> Result<(), ClientError> {
        let limits = self.text_limits().await?;
        let mut new = new_instance(self.now_ms(), &limits, instance_id, name, input, options)?;
        new.instance_id = self.key(instance_id)?;
        self.check_deployed(name, new.version.as_deref()).await?;
        self.store.create_instance(new).await.map_err(|e| match e {
            StoreError::InstanceExists(_) => ClientError::InstanceExists(instance_id.to_owned()),
            other => ClientError::Storage(other),
        })
    }

    /// Start a new instance at a specific version of the orchestration.
    pub async fn start_orchestration_versioned(
        &self,
        instance_id: &str,
        name: &str,
        input: &str,
        version: &str,
    ) -> Result<(), ClientError> {
        let options = StartOptions {
            version: Some(version.to_string()),
            ..StartOptions::default()
        };
        self.start_orchestration(instance_id, name, input, Some(options))
            .await
    }

    /// Start a new instance after `delay_ms` milliseconds.
    pub async fn schedule_orchestration(
        &self,
        instance_id: &str,
        name: &str,
        input: &str,
        delay_ms: u64,
    ) -> Result<(), ClientError> {
        let options = StartOptions {
            delay_ms: Some(delay_ms),
            ..StartOptions::default()
        };
        self.start_orchestration(instance_id, name, input, Some(options))
            .await
    }

    /// Raise external event `name` with `data` for an instance. The event is
    /// buffered until the orchestration waits for it. Fails with
    /// [`ClientError::InstanceFinished`] if the instance already ended and
    /// [`ClientError::InstanceNotFound`] if it never existed.
    pub async fn raise_event(
        &self,
        instance_id: &str,
        name: &str,
        data: &str,
    ) -> Result<(), ClientError> {
        let limits = self.text_limits().await?;
        check(&limits, TextKind::InstanceId, "instance id", instance_id)?;
        check(&limits, TextKind::Name, "event name", name)?;
        check_payload(&limits, "event data", data)?;
        self.running(instance_id).await?;
        let message = OrchestratorMessage::ExternalEvent {
            name: name.to_string(),
            data: data.to_string(),
        };
        self.enqueue(instance_id, message).await
    }

    /// Raise event `event_name` with `event_data` for an instance, starting
    /// it first with orchestration `name` and `input` if no instance has
    /// the id: one store write, so concurrent calls on one id start one
    /// instance and deliver every event. The event reaches a new instance
    /// after its start (with `options.delay_ms`, when it starts). Fails with
    /// [`ClientError::InstanceFinished`] if the instance exists and has
    /// finished, and with [`ClientError::InvalidArgument`] or
    /// [`ClientError::PayloadTooLarge`] as
    /// [`start_orchestration`](Self::start_orchestration) and
    /// [`raise_event`](Self::raise_event) do.
    pub async fn signal_with_start(
        &self,
        instance_id: &str,
        name: &str,
        input: &str,
        options: Option<StartOptions>,
        event_name: &str,
        event_data: &str,
    ) -> Result<SignalOutcome, ClientError> {
        let limits = self.text_limits().await?;
        let mut new = new_instance(self.now_ms(), &limits, instance_id, name, input, options)?;
        new.instance_id = self.key(instance_id)?;
        self.check_deployed(name, new.version.as_deref()).await?;
        if event_name.is_empty() {
            return Err(ClientError::InvalidArgument(
                "event name must not be empty".into(),
            ));
        }
        check(&limits, TextKind::Name, "event name", event_name)?;
        check_payload(&limits, "event data", event_data)?;
        let event = OrchestratorMessage::ExternalEvent {
            name: event_name.to_string(),
            data: event_data.to_string(),
        };
        match self.store.signal_with_start(new, event).await {
            Ok(outcome) => Ok(outcome),
            Err(StoreError::InstanceFinished { .. }) => {
                // The write was refused; the row tells how it finished.
                let status = self.get_orchestration_status(instance_id).await?;
                Err(ClientError::InstanceFinished {
                    instance: instance_id.to_owned(),
                    status,
                })
            }
            Err(other) => Err(ClientError::Storage(other)),
        }
    }

    /// Cancel an instance. Fails with [`ClientError::InstanceFinished`] if it
    /// already ended and [`ClientError::InstanceNotFound`] if it never existed.
    pub async fn cancel_orchestration(&self, instance_id: &str) -> Result<(), ClientError> {
        self.cancel_orchestration_with_reason(instance_id, "cancelled by client")
            .await
    }

    /// Cancel an instance, recording `reason` (at most the error limit,
    /// 64 KiB by default).
    pub async fn cancel_orchestration_with_reason(
        &self,
        instance_id: &str,
        reason: &str,
    ) -> Result<(), ClientError> {
        let limits = self.text_limits().await?;
        check(&limits, TextKind::InstanceId, "instance id", instance_id)?;
        check(&limits, TextKind::Error, "cancel reason", reason)?;
        self.running(instance_id).await?;
        let message = OrchestratorMessage::CancelOrchestration {
            reason: reason.to_string(),
        };
        self.enqueue(instance_id, message).await
    }

    /// Succeeds if the instance exists and has not finished.
    async fn running(&self, instance_id: &str) -> Result<(), ClientError> {
        match self.get_orchestration_status(instance_id).await? {
            OrchestrationStatus::NotFound => Err(ClientError::InstanceNotFound(instance_id.into())),
            status if status.is_terminal() => Err(ClientError::InstanceFinished {
                instance: instance_id.into(),
                status,
            }),
            _ => Ok(()),
        }
    }

    /// The instance's current status.
    pub async fn get_orchestration_status(
        &self,
        instance_id: &str,
    ) -> Result<OrchestrationStatus, ClientError> {
        let record = self.record(instance_id).await?;
        Ok(record.map_or(OrchestrationStatus::NotFound, status_of))
    }

    /// Everything the instance row says: status, version, execution id,
    /// parent link, custom status and times. `None` for an unknown id.
    pub async fn get_instance_info(
        &self,
        instance_id: &str,
    ) -> Result<Option<InstanceInfo>, ClientError> {
        let record = self.record(instance_id).await?;
        Ok(record.map(|r| InstanceInfo {
            instance_id: r.instance_id.clone(),
            orchestration_name: r.orchestration_name.clone(),
            orchestration_version: r.orchestration_version.clone(),
            execution_id: r.execution_id,
            parent_instance: r.parent_instance.clone(),
            parent_id: r.parent_id,
            custom_status: r.custom_status.clone(),
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
            component_digest: r.component_digest.clone(),
            status: status_of(r),
        }))
    }

    /// The status text the orchestration last published with
    /// `set_custom_status`, if any.
    pub async fn get_custom_status(
        &self,
        instance_id: &str,
    ) -> Result<Option<String>, ClientError> {
        self.record(instance_id)
            .await?
            .map(|record| record.custom_status)
            .ok_or_else(|| ClientError::InstanceNotFound(instance_id.into()))
    }

    /// Wait until the instance finishes (Completed, Failed or Cancelled), or
    /// `timeout_ms` passes.
    ///
    /// When the runtime that finishes it commits through this client's
    /// store object (same process), the commit wakes the wait at once. An
    /// end committed elsewhere (another process) is found by polling,
    /// every 2 ms at first and backing off to the poll cap
    /// ([`with_max_poll_interval`](Self::with_max_poll_interval)).
    pub async fn wait_for_completion(
        &self,
        instance_id: &str,
        timeout_ms: Option<u64>,
    ) -> Result<OrchestrationStatus, ClientError> {
        let deadline = timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
        let key = self.key(instance_id)?;
        let watch = self
            .store
            .finish_notices()
            .map(|notices| notices.subscribe(&key));
        let mut interval = FIRST_POLL_INTERVAL;
        loop {
            // Armed before the status is read: an end committed after the
            // read still wakes the wait.
            let mut notified = pin!(watch.as_ref().map(|w| w.notify().notified()));
            if let Some(armed) = notified.as_mut().as_pin_mut() {
                armed.enable();
            }
            match self.get_orchestration_status(instance_id).await? {
                OrchestrationStatus::NotFound => {
                    return Err(ClientError::InstanceNotFound(instance_id.into()));
                }
                status if status.is_terminal() => return Ok(status),
                _ => {}
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(ClientError::Timeout(instance_id.into()));
            }
            let pause = deadline.map_or(interval, |d| interval.min(d - now));
            let finished = async {
                match notified.as_mut().as_pin_mut() {
                    Some(armed) => armed.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = finished => {}
                () = tokio::time::sleep(pause) => {
                    interval = (interval * 2).min(self.max_poll_interval);
                }
            }
        }
    }

    /// The history of one execution (the current one when `execution_id` is `None`).
    pub async fn get_execution_history(
        &self,
        instance_id: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ClientError> {
        let execution_id = match execution_id {
            Some(id) => id,
            None => {
                self.record(instance_id)
                    .await?
                    .ok_or_else(|| ClientError::InstanceNotFound(instance_id.into()))?
                    .execution_id
            }
        };
        let key = self.key(instance_id)?;
        let mut history = self
            .store
            .read_history(&key, execution_id)
            .await
            .map_err(ClientError::Storage)?;
        self.unkey_events(&mut history);
        Ok(history)
    }

    /// The parent instance the start events of `events` name, as this
    /// tenant's caller knows it. (History names children and detached
    /// starts as the tenant does already.)
    pub(super) fn unkey_events(&self, events: &mut [Event]) {
        if self.tenant.is_default() {
            return;
        }
        for event in events {
            if let Event::OrchestrationStarted {
                parent_instance: Some(id),
                ..
            } = event
            {
                *id = self.unkey(id);
            }
        }
    }

    async fn enqueue(
        &self,
        instance_id: &str,
        message: OrchestratorMessage,
    ) -> Result<(), ClientError> {
        let key = self.key(instance_id)?;
        self.store
            .enqueue_message(&key, message, self.now_ms())
            .await
            .map_err(|e| match e {
                StoreError::InstanceNotFound(_) => {
                    ClientError::InstanceNotFound(instance_id.to_owned())
                }
                other => ClientError::Storage(other),
            })
    }
}

/// The instance a start asks for at `now_ms` (the store clock's time),
/// refused if an id, name, version, delay or the input is malformed or too
/// large.
fn new_instance(
    now_ms: u64,
    limits: &TextLimits,
    instance_id: &str,
    name: &str,
    input: &str,
    options: Option<StartOptions>,
) -> Result<NewInstance, ClientError> {
    if instance_id.is_empty() || name.is_empty() {
        return Err(ClientError::InvalidArgument(
            "instance id and orchestration name must not be empty".into(),
        ));
    }
    check(limits, TextKind::InstanceId, "instance id", instance_id)?;
    check(limits, TextKind::Name, "orchestration name", name)?;
    let options = options.unwrap_or_default();
    if let Some(version) = &options.version {
        check(limits, TextKind::Name, "orchestration version", version)?;
        semver::Version::parse(version).map_err(|e| {
            ClientError::InvalidArgument(format!(
                "version '{version}' is not a semantic version: {e}"
            ))
        })?;
    }
    if let Some(delay_ms) = options.delay_ms {
        check_delay("start delay", delay_ms)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
    }
    check_payload(limits, "orchestration input", input)?;
    Ok(NewInstance {
        instance_id: instance_id.to_string(),
        orchestration_name: name.to_string(),
        version: options.version,
        input: input.to_string(),
        parent_instance: None,
        parent_id: None,
        parent_execution_id: None,
        visible_at_ms: now_ms.saturating_add(options.delay_ms.unwrap_or(0)),
    })
}

/// Refuse a payload larger than its limit.
fn check_payload(
    limits: &TextLimits,
    what: &'static str,
    payload: &str,
) -> Result<(), ClientError> {
    limits
        .check(TextKind::Payload, what, payload)
        .map_err(|e| ClientError::PayloadTooLarge {
            what: e.what,
            size: e.size,
            limit: e.limit,
        })
}

/// Refuse a name, id or reason longer than its limit.
fn check(
    limits: &TextLimits,
    kind: TextKind,
    what: &'static str,
    value: &str,
) -> Result<(), ClientError> {
    limits
        .check(kind, what, value)
        .map_err(|e| ClientError::InvalidArgument(e.to_string()))
}

fn status_of(record: InstanceRecord) -> OrchestrationStatus {
    let text = record.output.unwrap_or_default();
    match record.status {
        InstanceStatus::Pending => OrchestrationStatus::Pending,
        InstanceStatus::Running => OrchestrationStatus::Running,
        InstanceStatus::Completed => OrchestrationStatus::Completed { output: text },
        InstanceStatus::Failed => OrchestrationStatus::Failed { error: text },
        InstanceStatus::Cancelled => OrchestrationStatus::Cancelled { reason: text },
    }
}
