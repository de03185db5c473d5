//! Write duroxide orchestrations and activities in Rust, compile them with
//! `cargo build --target wasm32-wasip2`, and hand the `.wasm` file to the host.
//!
//! ```ignore
//! use duroxide_guest::{OrchestrationContext, Registry};
//!
//! async fn hello_world(ctx: OrchestrationContext, input: String) -> Result<String, String> {
//!     ctx.log_info(&format!("greeting {input}"));
//!     ctx.schedule_activity("SayHello", &input).await
//! }
//!
//! fn say_hello(name: String) -> Result<String, String> {
//!     Ok(format!("Hello, {name}!"))
//! }
//!
//! fn register(registry: &mut Registry) {
//!     registry.orchestration("HelloWorld", hello_world);
//!     registry.activity("SayHello", say_hello);
//! }
//!
//! duroxide_guest::component!(register);
//! ```
//!
//! Orchestration code must be deterministic: take time, ids and randomness
//! from the context, and do side effects in activities. Any future combinator
//! works (for example `futures::future::join_all`), as long as it polls in a
//! deterministic order (`select_biased!`, not `select!`).

mod context;
mod executor;
mod registry;

/// Bindings generated from the duroxide WIT contract. The [`component!`] macro
/// uses them; guest code rarely needs them directly.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "workflows",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_workflows",
        default_bindings_module: "duroxide_guest::bindings",
    });
}

pub use context::{ActivityTask, EventTask, LogLevel, OrchestrationContext, TimerTask};
#[doc(hidden)]
pub use executor::{manifest, run_activity, run_orchestration};
pub use registry::{ActivityFn, OrchestrationFn, Registry};

/// Export the orchestrations and activities that `register` adds to a
/// [`Registry`] as this crate's WebAssembly component.
///
/// Use it once, at the root of a `cdylib` crate.
#[macro_export]
macro_rules! component {
    ($register:path) => {
        struct __DuroxideComponent;

        fn __duroxide_registry() -> $crate::Registry {
            let mut registry = $crate::Registry::new();
            $register(&mut registry);
            registry
        }

        impl $crate::bindings::exports::duroxide::orchestration::orchestrator::Guest
            for __DuroxideComponent
        {
            fn run(name: String, version: String, input: String) -> Result<String, String> {
                $crate::run_orchestration(&__duroxide_registry(), &name, &version, input)
            }
        }

        impl $crate::bindings::exports::duroxide::orchestration::activities::Guest
            for __DuroxideComponent
        {
            fn run(name: String, input: String) -> Result<String, String> {
                $crate::run_activity(&__duroxide_registry(), &name, input)
            }
        }

        impl $crate::bindings::exports::duroxide::orchestration::component::Guest
            for __DuroxideComponent
        {
            fn describe() -> $crate::bindings::duroxide::orchestration::types::Manifest {
                $crate::manifest(&__duroxide_registry())
            }
        }

        $crate::bindings::__export_workflows!(__DuroxideComponent with_types_in $crate::bindings);
    };
}
