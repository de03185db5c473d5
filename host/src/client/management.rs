//! The operator's side of the client: listing, details, health and
//! retention, each answered by the store's indexed queries on instance rows
//! (details also read the one instance's histories).

use std::time::Duration;

use super::details::{InstanceDetails, pending_work, summarize_execution};
use super::health::{SystemHealth, counts_query};
use super::{Client, ClientError, OrchestrationStatus, status_of};
use crate::providers::query::{
    InstanceFilter, InstancePage, InstanceSummary, PurgeFilter, PurgeOutcome,
};
use crate::providers::{InstanceRecord, InstanceStatus, retention};

impl Client {
    /// One page of the instances `filter` selects (every instance, newest
    /// first, when `None`), by one indexed query. Pass the page's `next`
    /// cursor as [`InstanceFilter::after`] for the following page: a cursor
    /// costs the same however deep the page is, an offset grows with it.
    pub async fn list_instances(
        &self,
        filter: Option<InstanceFilter>,
    ) -> Result<InstancePage, ClientError> {
        let mut filter = filter.unwrap_or_default();
        if filter.limit == Some(0) {
            return Err(ClientError::InvalidArgument(
                "a listing limit must be at least 1".into(),
            ));
        }
        // Within this client's tenant, whatever the filter said.
        filter.tenant = Some(self.tenant.name().to_owned());
        if let Some(parent) = &filter.parent_instance {
            filter.parent_instance = Some(self.key(parent)?);
        }
        if let Some(cursor) = &mut filter.after {
            cursor.instance_id = self.key(&cursor.instance_id)?;
        }
        let mut page = self
            .store
            .list_instances(&filter)
            .await
            .map_err(ClientError::Storage)?;
        for summary in &mut page.instances {
            summary.instance_id = self.unkey(&summary.instance_id);
            summary.parent_instance = summary.parent_instance.as_deref().map(|p| self.unkey(p));
        }
        if let Some(cursor) = &mut page.next {
            cursor.instance_id = self.unkey(&cursor.instance_id);
        }
        Ok(page)
    }

    /// Every instance of orchestration `name` (in this client's tenant),
    /// newest first.
    pub async fn find_instances_by_orchestration(
        &self,
        name: &str,
    ) -> Result<Vec<InstanceSummary>, ClientError> {
        self.find(InstanceFilter {
            orchestration_name: Some(name.to_owned()),
            ..InstanceFilter::default()
        })
        .await
    }

    /// Every running instance, newest first.
    pub async fn find_running_instances(&self) -> Result<Vec<InstanceSummary>, ClientError> {
        self.find(InstanceFilter {
            status: Some(vec![InstanceStatus::Running]),
            ..InstanceFilter::default()
        })
        .await
    }

    /// Every failed instance (that failed at or after `since_ms`, ms since
    /// the Unix epoch, when given), newest first.
    pub async fn find_failed_instances(
        &self,
        since_ms: Option<u64>,
    ) -> Result<Vec<InstanceSummary>, ClientError> {
        self.find(InstanceFilter {
            status: Some(vec![InstanceStatus::Failed]),
            finished_after_ms: since_ms,
            ..InstanceFilter::default()
        })
        .await
    }

    async fn find(&self, filter: InstanceFilter) -> Result<Vec<InstanceSummary>, ClientError> {
        Ok(self.list_instances(Some(filter)).await?.instances)
    }

    /// The status of each of `instance_ids`, in their order (`NotFound` for
    /// an unknown id), read in one go.
    pub async fn get_bulk_status(
        &self,
        instance_ids: &[String],
    ) -> Result<Vec<(String, OrchestrationStatus)>, ClientError> {
        let keys = instance_ids
            .iter()
            .map(|id| self.key(id))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = self
            .store
            .instances_by_id(&keys)
            .await
            .map_err(ClientError::Storage)?;
        let mut rows = rows.into_iter().peekable();
        Ok(instance_ids
            .iter()
            .zip(&keys)
            .map(|(id, key)| {
                // Rows come in the order of the ids, missing ones skipped.
                let status = match rows.next_if(|r| &r.instance_id == key) {
                    Some(row) => status_of(row),
                    None => OrchestrationStatus::NotFound,
                };
                (id.clone(), status)
            })
            .collect())
    }

    /// Instance counts by state, long-running instances and recent
    /// failures, and a health score, from aggregate queries over this
    /// client's tenant.
    pub async fn get_system_health(&self) -> Result<SystemHealth, ClientError> {
        let counts = self
            .store
            .instance_counts(counts_query(self.now_ms(), self.tenant.name()))
            .await
            .map_err(ClientError::Storage)?;
        Ok(SystemHealth::from_counts(&counts))
    }

    /// The instance, each of its executions, and for a running instance the
    /// activities, timers, children and events its current execution waits
    /// for. `None` for an unknown id. Reads this instance's histories.
    pub async fn get_instance_details(
        &self,
        instance_id: &str,
    ) -> Result<Option<InstanceDetails>, ClientError> {
        let Some(record) = self.record(instance_id).await? else {
            return Ok(None);
        };
        let key = self.key(instance_id)?;
        let mut executions = Vec::new();
        let mut current = None;
        if !record.awaits_start() {
            for execution_id in 1..=record.execution_id {
                let mut history = self
                    .store
                    .read_history(&key, execution_id)
                    .await
                    .map_err(ClientError::Storage)?;
                self.unkey_events(&mut history);
                let last = execution_id == record.execution_id;
                executions.push(summarize_execution(
                    execution_id,
                    &history,
                    record.finished_at_ms.filter(|_| last),
                ));
                if last && record.status == InstanceStatus::Running {
                    current = Some(pending_work(execution_id, &history));
                }
            }
        }
        let summary = summary_of(&record);
        Ok(Some(InstanceDetails {
            summary,
            custom_status: record.custom_status.clone(),
            status: status_of(record),
            executions,
            current_execution: current,
        }))
    }

    /// Delete a finished instance with every execution's history and its
    /// queued messages and activity work. Fails with
    /// [`ClientError::InstanceNotFinished`] for one that has not finished
    /// (see [`purge_instance_forced`](Self::purge_instance_forced)) and
    /// [`ClientError::InstanceNotFound`] for an unknown id.
    pub async fn purge_instance(&self, instance_id: &str) -> Result<(), ClientError> {
        match self
            .store
            .purge_instance(&self.key(instance_id)?)
            .await
            .map_err(ClientError::Storage)?
        {
            PurgeOutcome::Purged => Ok(()),
            PurgeOutcome::NotFound => Err(ClientError::InstanceNotFound(instance_id.into())),
            PurgeOutcome::NotFinished(status) => Err(ClientError::InstanceNotFinished {
                instance: instance_id.into(),
                status,
            }),
        }
    }

    /// [`purge_instance`](Self::purge_instance), cancelling the instance
    /// first if it has not finished and purging it once it is cancelled.
    /// Fails with [`ClientError::Timeout`] if it has not ended within
    /// `timeout` (a delayed start takes its cancellation when it is due).
    pub async fn purge_instance_forced(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        match self.purge_instance(instance_id).await {
            Err(ClientError::InstanceNotFinished { .. }) => {}
            other => return other,
        }
        match self
            .cancel_orchestration_with_reason(instance_id, "purged by an operator")
            .await
        {
            // It finished on its own meanwhile.
            Ok(()) | Err(ClientError::InstanceFinished { .. }) => {}
            Err(e) => return Err(e),
        }
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.wait_for_completion(instance_id, Some(timeout_ms))
            .await?;
        self.purge_instance(instance_id).await
    }

    /// Delete every finished instance `filter` selects, as
    /// [`purge_instance`](Self::purge_instance) does, in transactions of at
    /// most [`retention::PURGE_BATCH`] instances so the runtime's commits
    /// go on between them; returns how many. Running instances are never
    /// selected, nor other tenants' ([`PurgeFilter::tenant`] is set to this
    /// client's).
    pub async fn purge_finished(&self, mut filter: PurgeFilter) -> Result<u64, ClientError> {
        // Within this client's tenant, whatever the filter said.
        filter.tenant = Some(self.tenant.name().to_owned());
        retention::purge_all(self.store.as_ref(), &filter)
            .await
            .map_err(ClientError::Storage)
    }
}

/// The summary of an instance row.
fn summary_of(record: &InstanceRecord) -> InstanceSummary {
    InstanceSummary {
        instance_id: record.instance_id.clone(),
        orchestration_name: record.orchestration_name.clone(),
        orchestration_version: record.orchestration_version.clone(),
        status: record.status,
        created_at_ms: record.created_at_ms,
        updated_at_ms: record.updated_at_ms,
        finished_at_ms: record.finished_at_ms,
        execution_count: record.execution_id,
        parent_instance: record.parent_instance.clone(),
        parent_id: record.parent_id,
    }
}
