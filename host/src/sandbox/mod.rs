//! The wasmtime sandbox: the engines, component loading and its cache, the
//! WIT bindings, the host side of the context interface, WASI policies,
//! limits, guest faults, and the thread that frees spent sandboxes.
//!
//! The sandbox depends on `history` and `limits` only: what an
//! orchestration's context asks of the host is the [`OrchestrationHost`]
//! trait defined here, which the runtime implements.

mod activity_call;
mod bindings;
mod component_policy;
mod context;
mod cpu;
mod engine;
mod error_code;
mod failure;
mod fault;
mod grants;
mod guest_output;
mod http_grant;
pub(crate) mod instance;
mod keystream;
mod limits;
mod loader;
mod memory_budget;
mod orchestration_host;
mod policy;
mod prefault;
pub(crate) mod reaper;
mod resident;
pub(crate) mod state;
mod warm;
mod wasi_random;

pub use activity_call::{ActivityCall, ActivityInfo, CancelReason, CancelToken};
pub use component_policy::{
    ComponentPolicy, DEFAULT_MAX_CONCURRENT_ACTIVITIES, DEFAULT_MAX_CONCURRENT_EXECUTIONS,
    DEFAULT_MAX_HISTORY_EVENTS, DEFAULT_MEMORY_BUDGET_BYTES,
};
pub(crate) use engine::pooled_sandboxes_in_use;
pub use error_code::ErrorCode;
pub use fault::GuestFault;
pub(crate) use fault::describe;
pub use grants::{
    DEFAULT_HTTP_MAX_RESPONSE_BYTES, DEFAULT_HTTP_TIMEOUT, DirGrant, DirMode, EnvGrant, GrantError,
    Grants, HttpGrant,
};
pub(crate) use keystream::Keystream;
pub use limits::{DEFAULT_MAX_PAYLOAD_BYTES, MAX_TABLE_ELEMENTS, SandboxLimits};
pub use loader::{ComponentManifest, LoadError, LoadedComponent, load_component};
pub use memory_budget::MemoryBudget;
pub(crate) use memory_budget::SandboxMemory;
pub(crate) use orchestration_host::{Completion, OrchestrationHost, Outcome, RetryPolicy};
pub(crate) use policy::TurnClock;
pub(crate) use warm::WarmActivities;
pub(crate) use wasi_random::SeededRandom;
