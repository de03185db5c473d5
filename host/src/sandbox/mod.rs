//! The wasmtime sandbox: the engines, component loading and its cache, the
//! WIT bindings, the host side of the context interface, WASI policies,
//! limits, and the thread that frees spent sandboxes.

mod bindings;
mod context;
mod engine;
mod guest_output;
pub(crate) mod instance;
mod limits;
mod loader;
mod policy;
pub(crate) mod reaper;
pub(crate) mod state;

pub(crate) use bindings::{Completion, Outcome};
pub use limits::{DEFAULT_MAX_PAYLOAD_BYTES, MAX_TABLE_ELEMENTS, SandboxLimits};
pub use loader::{ComponentManifest, LoadError, LoadedComponent, load_component};
pub(crate) use policy::TurnClock;
