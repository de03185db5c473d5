//! duroxide: a durable orchestration host for workflows shipped as
//! WebAssembly components.
//!
//! A [`Client`] and a [`DuroxideRuntime`] share a [`providers::HistoryStore`]
//! and nothing else: the client writes messages (start, raise, cancel) and
//! reads status; the runtime fetches messages, replays each orchestration
//! deterministically inside a wasmtime sandbox, and commits every turn
//! atomically.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use duroxide::{Client, DuroxideRuntime, providers::sqlite::SqliteHistoryStore};
//!
//! let store = Arc::new(SqliteHistoryStore::new("sqlite:./demo.db").await?);
//! let mut runtime = DuroxideRuntime::new(store.clone());
//! runtime.load_component_file("hello_world.wasm").await?;
//! runtime.start().await?;
//!
//! let client = Client::new(store);
//! client.start_orchestration("hello-1", "HelloWorld", "World", None).await?;
//! let status = client.wait_for_completion("hello-1", Some(10_000)).await?;
//! println!("{status}");
//! runtime.stop().await;
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod clock;
pub mod history;
pub mod limits;
pub mod metrics;
pub mod providers;
pub mod runtime;
pub mod sandbox;
pub mod tenant;

pub use client::{
    ArtifactManifest, ArtifactPolicy, ArtifactSummary, Client, ClientError, Deployed,
    ExecutionDetails, ExecutionStatus, ExecutionSummary, InstanceDetails, InstanceFilter,
    InstanceInfo, InstancePage, InstanceStatus, InstanceSummary, ListCursor, ListOrder,
    OrchestrationStatus, PurgeFilter, SignalOutcome, StartOptions, SystemHealth, TypedCompletion,
};
pub use runtime::{DuroxideRuntime, Retention, RuntimeError, RuntimeOptions};
pub use sandbox::{
    ComponentManifest, ComponentPolicy, DirMode, ErrorCode, GrantError, Grants, GuestFault,
    HttpGrant, LoadError, LoadedComponent, SandboxLimits,
};
pub use tenant::{Tenant, TenantError};

#[cfg(test)]
mod layer_rules;
