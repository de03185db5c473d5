//! The named orchestrations and activities a component provides.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::OrchestrationContext;

/// The version an orchestration gets when none is given.
pub const DEFAULT_VERSION: &str = "1.0.0";

/// A boxed orchestration future.
pub(crate) type OrchestrationFuture = Pin<Box<dyn Future<Output = Result<String, String>>>>;

/// An orchestration as the registry stores it.
pub type OrchestrationFn = Box<dyn Fn(OrchestrationContext, String) -> OrchestrationFuture>;

/// An activity as the registry stores it.
pub type ActivityFn = Box<dyn Fn(String) -> Result<String, String>>;

/// The orchestrations and activities of one component, by name.
#[derive(Default)]
pub struct Registry {
    pub(crate) orchestrations: BTreeMap<(String, String), OrchestrationFn>,
    pub(crate) activities: BTreeMap<String, ActivityFn>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register an orchestration under `name` at version 1.0.0.
    pub fn orchestration<F, Fut>(&mut self, name: &str, f: F) -> &mut Self
    where
        F: Fn(OrchestrationContext, String) -> Fut + 'static,
        Fut: Future<Output = Result<String, String>> + 'static,
    {
        self.orchestration_versioned(name, DEFAULT_VERSION, f)
    }

    /// Register an orchestration under `name` at a semantic `version`.
    pub fn orchestration_versioned<F, Fut>(&mut self, name: &str, version: &str, f: F) -> &mut Self
    where
        F: Fn(OrchestrationContext, String) -> Fut + 'static,
        Fut: Future<Output = Result<String, String>> + 'static,
    {
        let boxed: OrchestrationFn = Box::new(move |ctx, input| Box::pin(f(ctx, input)));
        self.orchestrations
            .insert((name.to_string(), version.to_string()), boxed);
        self
    }

    /// Register an activity under `name`.
    pub fn activity<F>(&mut self, name: &str, f: F) -> &mut Self
    where
        F: Fn(String) -> Result<String, String> + 'static,
    {
        self.activities.insert(name.to_string(), Box::new(f));
        self
    }
}
