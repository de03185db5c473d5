//! Host bindings generated from the WIT contract in `wit/`.

wasmtime::component::bindgen!({
    world: "workflows",
    path: "../wit",
    imports: {
        // `wait` and `wait-any` park the guest until the next turn's
        // messages arrive.
        "duroxide:orchestration/context.wait": async | trappable,
        "duroxide:orchestration/context.wait-any": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub use duroxide::orchestration::types::LogLevel;
pub use exports::duroxide::orchestration::{activities, component, orchestrator};
