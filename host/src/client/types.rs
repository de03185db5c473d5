//! Types of the client API.

use std::fmt;

/// Options for starting an orchestration.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Version to run; the latest registered one when absent.
    pub version: Option<String>,
    /// Start after this many milliseconds instead of at once.
    pub delay_ms: Option<u64>,
}

/// The state of an instance as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrchestrationStatus {
    /// No instance has this id.
    NotFound,
    /// Created, not yet started by a runtime (or a delayed start not yet due).
    Pending,
    /// Started and not finished.
    Running,
    /// Finished with an output.
    Completed {
        /// The orchestration's output.
        output: String,
    },
    /// Finished with an error.
    Failed {
        /// Why it failed.
        error: String,
    },
    /// Cancelled from outside.
    Cancelled {
        /// The reason given with the cancellation.
        reason: String,
    },
}

impl OrchestrationStatus {
    /// Whether the instance has finished for good.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            OrchestrationStatus::Completed { .. }
                | OrchestrationStatus::Failed { .. }
                | OrchestrationStatus::Cancelled { .. }
        )
    }
}

impl fmt::Display for OrchestrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrchestrationStatus::NotFound => f.write_str("NotFound"),
            OrchestrationStatus::Pending => f.write_str("Pending"),
            OrchestrationStatus::Running => f.write_str("Running"),
            OrchestrationStatus::Completed { output } => write!(f, "Completed: {output}"),
            OrchestrationStatus::Failed { error } => write!(f, "Failed: {error}"),
            OrchestrationStatus::Cancelled { reason } => write!(f, "Cancelled: {reason}"),
        }
    }
}

/// What a client can see of an instance without reading its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// Instance id.
    pub instance_id: String,
    /// Orchestration name.
    pub orchestration_name: String,
    /// Version it runs; `None` until a runtime has started it.
    pub orchestration_version: Option<String>,
    /// Its status.
    pub status: OrchestrationStatus,
    /// Current execution id (it grows with each continue-as-new), from 1.
    pub execution_id: u64,
    /// The parent instance, for a child orchestration.
    pub parent_instance: Option<String>,
    /// The parent's task id for this child.
    pub parent_id: Option<u64>,
    /// The status text the orchestration last published.
    pub custom_status: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
    /// Digest of the deployed component its current execution runs on, if
    /// it is pinned to one.
    pub component_digest: Option<String>,
}

/// Errors of the client API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The store failed.
    #[error(transparent)]
    Storage(crate::providers::StoreError),
    /// No instance has this id.
    #[error("instance '{0}' not found")]
    InstanceNotFound(String),
    /// An instance with this id already exists; it was not started again.
    #[error("instance '{0}' already exists")]
    InstanceExists(String),
    /// The instance has already finished.
    #[error("instance '{instance}' has already finished ({status})")]
    InstanceFinished {
        /// The instance.
        instance: String,
        /// How it finished.
        status: OrchestrationStatus,
    },
    /// A payload exceeds the limit.
    #[error("{what} is {size} bytes, more than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Which payload.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A typed payload did not encode to JSON, or JSON did not decode as
    /// the type asked for.
    #[error("{what} is not a {type_name}: {reason}")]
    Payload {
        /// Which payload ("output of instance 'x'", say).
        what: String,
        /// The Rust type it was to encode from or decode to.
        type_name: &'static str,
        /// serde's reason, naming the field and position.
        reason: String,
    },
    /// An argument is malformed (an empty instance id, say).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The instance has not finished, so it was left alone (purge it with
    /// `purge_instance_forced` to cancel it first).
    #[error("instance '{instance}' has not finished ({status:?})")]
    InstanceNotFinished {
        /// The instance.
        instance: String,
        /// Its state.
        status: crate::providers::InstanceStatus,
    },
    /// The wait ended before the instance finished.
    #[error("timed out waiting for instance '{0}'")]
    Timeout(String),
    /// Components are deployed, and none provides the orchestration asked
    /// for; nothing was started.
    #[error("no deployed component provides orchestration {orchestration}; deployed: {}", if deployed.is_empty() { "no orchestrations".to_owned() } else { deployed.join(", ") })]
    NotDeployed {
        /// The orchestration (and version) asked for.
        orchestration: String,
        /// The orchestrations deployed, "name version".
        deployed: Vec<String>,
    },
    /// No deployed component has this digest.
    #[error("no deployed component has digest {0}")]
    ComponentNotFound(String),
    /// The component is deployed already, under another policy: a deployed
    /// component keeps the policy it was first deployed with.
    #[error(
        "component {0} is deployed already with another policy; a component keeps the policy it was first deployed with (remove it and deploy again to change it)"
    )]
    PolicyDiffers(String),
    /// Unfinished instances are pinned to the component; it was left alone.
    #[error("component {digest} is in use by unfinished instances: {}", instances.join(", "))]
    ComponentInUse {
        /// The component.
        digest: String,
        /// The instances pinned to it (up to 100).
        instances: Vec<String>,
    },
}
