//! The named orchestrations and activities a component provides.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::typed::{decode, encode};
use crate::{ActivityContext, OrchestrationContext};

/// The version an orchestration gets when none is given.
pub const DEFAULT_VERSION: &str = "1.0.0";

/// A boxed orchestration future.
pub(crate) type OrchestrationFuture = Pin<Box<dyn Future<Output = Result<String, String>>>>;

/// An orchestration as the registry stores it.
pub type OrchestrationFn = Box<dyn Fn(OrchestrationContext, String) -> OrchestrationFuture>;

/// An activity as the registry stores it.
pub type ActivityFn = Box<dyn Fn(&ActivityContext, String) -> Result<String, String>>;

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
        self.activity_with_context(name, move |_, input| f(input))
    }

    /// Register an activity under `name` that takes the call's context: the
    /// instance, execution, name and attempt it serves, and whether its
    /// result is still wanted.
    pub fn activity_with_context<F>(&mut self, name: &str, f: F) -> &mut Self
    where
        F: Fn(&ActivityContext, String) -> Result<String, String> + 'static,
    {
        self.activities.insert(name.to_string(), Box::new(f));
        self
    }

    /// Register an activity under `name` that takes and returns serde
    /// values (JSON on the wire); its error is any displayable value. An
    /// input that does not decode fails the call with a reason naming the
    /// type and the field.
    pub fn activity_typed<In, Out, E, F>(&mut self, name: &str, f: F) -> &mut Self
    where
        In: DeserializeOwned,
        Out: Serialize,
        E: Display,
        F: Fn(In) -> Result<Out, E> + 'static,
    {
        let what = (
            format!("the input of activity '{name}'"),
            format!("the output of activity '{name}'"),
        );
        self.activity(name, move |input| {
            let output = f(decode(&what.0, &input)?).map_err(|e| e.to_string())?;
            encode(&what.1, &output)
        })
    }

    /// Register an orchestration under `name` at version 1.0.0 that takes
    /// and returns serde values (JSON on the wire).
    pub fn orchestration_typed<In, Out, E, F, Fut>(&mut self, name: &str, f: F) -> &mut Self
    where
        In: DeserializeOwned + 'static,
        Out: Serialize + 'static,
        E: Display + 'static,
        F: Fn(OrchestrationContext, In) -> Fut + 'static,
        Fut: Future<Output = Result<Out, E>> + 'static,
    {
        self.orchestration_versioned_typed(name, DEFAULT_VERSION, f)
    }

    /// [`orchestration_typed`](Self::orchestration_typed) at a semantic `version`.
    pub fn orchestration_versioned_typed<In, Out, E, F, Fut>(
        &mut self,
        name: &str,
        version: &str,
        f: F,
    ) -> &mut Self
    where
        In: DeserializeOwned + 'static,
        Out: Serialize + 'static,
        E: Display + 'static,
        F: Fn(OrchestrationContext, In) -> Fut + 'static,
        Fut: Future<Output = Result<Out, E>> + 'static,
    {
        let what = std::rc::Rc::new((
            format!("the input of orchestration '{name}'"),
            format!("the output of orchestration '{name}'"),
        ));
        let f = std::rc::Rc::new(f);
        self.orchestration_versioned(name, version, move |ctx, input| {
            let (what, f) = (what.clone(), f.clone());
            async move {
                let input = decode(&what.0, &input)?;
                let output = f(ctx, input).await.map_err(|e| e.to_string())?;
                encode(&what.1, &output)
            }
        })
    }
}
