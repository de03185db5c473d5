//! Drives an orchestration future on the host's blocking `wait`, and runs
//! activities and the manifest.

use std::task::{Context, Poll, Waker};

use crate::bindings::duroxide::orchestration::context as host;
use crate::bindings::duroxide::orchestration::types::{Manifest, OrchestrationInfo};
use crate::{ActivityContext, OrchestrationContext, Registry};

/// Run orchestration `name` to its end. Each time the future is pending, the
/// host is told of the tasks it newly waits on (`watch`), and `wait-any`
/// hands back the first of the watched tasks to finish, whose answer wakes
/// the future waiting on it.
pub fn run_orchestration(
    registry: &Registry,
    name: &str,
    version: &str,
    input: String,
) -> Result<String, String> {
    let key = (name.to_string(), version.to_string());
    let Some(orchestration) = registry.orchestrations.get(&key) else {
        return Err(format!(
            "this component has no orchestration named '{name}' at version {version}"
        ));
    };
    let ctx = OrchestrationContext::default();
    let mut future = orchestration(ctx.clone(), input);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
            ctx.tasks.borrow_mut().finishing = true;
            return result;
        }
        if !ctx.tasks.borrow().waits() {
            ctx.tasks.borrow_mut().finishing = true;
            return Err(
                "the orchestration is pending on something that is not a duroxide task".to_string(),
            );
        }
        let to_watch = ctx.tasks.borrow_mut().take_to_watch();
        if !to_watch.is_empty() {
            host::watch(&to_watch);
        }
        let completion = host::wait_any();
        let waiting = ctx
            .tasks
            .borrow_mut()
            .resolve(completion.task, completion.outcome);
        // Wakes the combinators on the path to the task, so the next poll of
        // the orchestration polls only what the completion can move.
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

/// Run activity `name` once.
pub fn run_activity(registry: &Registry, name: &str, input: String) -> Result<String, String> {
    match registry.activities.get(name) {
        Some(activity) => activity(&ActivityContext::default(), input),
        None => Err(format!("this component has no activity named '{name}'")),
    }
}

/// The component's manifest: every registered orchestration and activity.
pub fn manifest(registry: &Registry) -> Manifest {
    Manifest {
        orchestrations: registry
            .orchestrations
            .keys()
            .map(|(name, version)| OrchestrationInfo {
                name: name.clone(),
                version: version.clone(),
            })
            .collect(),
        activities: registry.activities.keys().cloned().collect(),
    }
}
