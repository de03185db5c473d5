//! A component as a runtime runs it: its compiled code and the policy it
//! runs under.

use std::ops::Deref;
use std::sync::Arc;

use crate::sandbox::{ComponentPolicy, LoadedComponent};

/// A registered component: the code, shared by every runtime in the process
/// that loads the same bytes, and the policy this registration gave it.
#[derive(Clone, Debug)]
pub(crate) struct Component {
    /// The compiled, checked code.
    pub(crate) loaded: Arc<LoadedComponent>,
    /// The policy its sandboxes run under.
    pub(crate) policy: Arc<ComponentPolicy>,
}

impl Component {
    /// `loaded` under `policy`.
    pub(crate) fn new(loaded: Arc<LoadedComponent>, policy: ComponentPolicy) -> Self {
        Self {
            loaded,
            policy: Arc::new(policy),
        }
    }
}

impl Deref for Component {
    type Target = LoadedComponent;

    fn deref(&self) -> &LoadedComponent {
        &self.loaded
    }
}
