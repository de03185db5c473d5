//! What a turn's new decisions mean for the store: activity work, timer
//! and cancel messages, new instances, the continue-as-new message, and the
//! instance's status, collected until the turn is committed.

use super::index::HistoryIndex;
use crate::history::{ActivityWork, Event, OrchestratorMessage};
use crate::providers::{InstanceStart, InstanceStatus, NewInstance, OutgoingMessage};
use crate::tenant::{child_key, split_key};

/// What a turn produced, ready to commit.
#[derive(Debug, Default)]
pub(crate) struct TurnOutput {
    /// Events appended since the last commit.
    pub(crate) new_events: Vec<Event>,
    /// Activity work to enqueue.
    pub(crate) activities: Vec<ActivityWork>,
    /// Orchestrator messages to enqueue (timers).
    pub(crate) messages: Vec<OutgoingMessage>,
    /// Children and detached orchestrations to create.
    pub(crate) new_instances: Vec<InstanceStart>,
    /// Set when the execution continued as new: the message that starts the next one.
    pub(crate) continue_as_new: Option<OrchestratorMessage>,
    /// The instance's state after the turn.
    pub(crate) status: Option<(InstanceStatus, String)>,
    /// The custom status, when the turn set it (`Some(None)` clears it).
    pub(crate) custom_status: Option<Option<String>>,
    /// Whether a timer of the execution is still to fire.
    pub(crate) timer_pending: bool,
}

/// Which execution decides, and when: what every effect is addressed from.
pub(super) struct Decider<'a> {
    /// The deciding instance.
    pub(super) instance_id: &'a str,
    /// Its execution.
    pub(super) execution_id: u64,
    /// The turn time the guest has reached.
    pub(super) now_ms: u64,
}

/// The effects of the current turn, not yet committed.
#[derive(Default)]
pub(super) struct Effects {
    activities: Vec<ActivityWork>,
    messages: Vec<OutgoingMessage>,
    new_instances: Vec<InstanceStart>,
    continue_as_new: Option<OrchestratorMessage>,
    status: Option<(InstanceStatus, String)>,
    custom_status: Option<Option<String>>,
}

impl Effects {
    /// Add the effects of new decision `event` by `by`, read against
    /// `index` (before the decision joins it).
    pub(super) fn decide(&mut self, event: &Event, by: &Decider<'_>, index: &HistoryIndex) {
        match event {
            Event::ActivityScheduled { id, name, input } => self.activities.push(ActivityWork {
                instance: by.instance_id.to_string(),
                execution_id: by.execution_id,
                id: *id,
                name: name.clone(),
                input: input.clone(),
            }),
            Event::TimerCreated { id, fire_at_ms } => self.messages.push(OutgoingMessage {
                instance_id: by.instance_id.to_string(),
                message: OrchestratorMessage::TimerFired {
                    execution_id: by.execution_id,
                    id: *id,
                },
                visible_at_ms: *fire_at_ms,
            }),
            Event::SubOrchestrationScheduled {
                id,
                name,
                version,
                instance_id,
                input,
            } => {
                // The child belongs to the parent's tenant: an id that could
                // name another tenant's instance is refused, and the child
                // task fails, as it does when the id is taken.
                let key = match child_key(by.instance_id, instance_id) {
                    Ok(key) => key,
                    Err(refused) => {
                        self.messages.push(OutgoingMessage {
                            instance_id: by.instance_id.to_string(),
                            message: OrchestratorMessage::SubOrchestrationFailed {
                                execution_id: by.execution_id,
                                id: *id,
                                error: format!("cannot start child: {refused}"),
                            },
                            visible_at_ms: by.now_ms,
                        });
                        return;
                    }
                };
                let taken = OrchestratorMessage::SubOrchestrationFailed {
                    execution_id: by.execution_id,
                    id: *id,
                    error: format!("cannot start child: instance '{instance_id}' already exists"),
                };
                self.new_instances.push(InstanceStart {
                    instance: NewInstance {
                        instance_id: key,
                        orchestration_name: name.clone(),
                        version: version.clone(),
                        input: input.clone(),
                        parent_instance: Some(by.instance_id.to_string()),
                        parent_id: Some(*id),
                        parent_execution_id: Some(by.execution_id),
                        visible_at_ms: by.now_ms,
                    },
                    if_exists: Some(OutgoingMessage {
                        instance_id: by.instance_id.to_string(),
                        message: taken,
                        visible_at_ms: by.now_ms,
                    }),
                });
            }
            Event::OrchestrationStartedDetached {
                name,
                version,
                instance_id,
                input,
                ..
            } => {
                // Within the parent's tenant, as for a child; like a start
                // on a taken id, a refused one starts nothing.
                let key = match child_key(by.instance_id, instance_id) {
                    Ok(key) => key,
                    Err(refused) => {
                        tracing::warn!(
                            instance = by.instance_id,
                            "a detached start was refused: {refused}"
                        );
                        return;
                    }
                };
                self.new_instances.push(InstanceStart {
                    instance: NewInstance {
                        instance_id: key,
                        orchestration_name: name.clone(),
                        version: version.clone(),
                        input: input.clone(),
                        parent_instance: None,
                        parent_id: None,
                        parent_execution_id: None,
                        visible_at_ms: by.now_ms,
                    },
                    if_exists: None,
                })
            }
            Event::TaskCancelled { id } => {
                if let Some(child) = index.child_instance(*id)
                    && !index.is_completed(*id)
                    && let Ok(child) = child_key(by.instance_id, child)
                {
                    self.messages.push(OutgoingMessage {
                        instance_id: child,
                        message: OrchestratorMessage::CancelOrchestration {
                            reason: format!(
                                "the parent '{}' stopped waiting for it",
                                split_key(by.instance_id).1
                            ),
                        },
                        visible_at_ms: by.now_ms,
                    });
                }
            }
            Event::ContinuedAsNew { input, version } => {
                self.continue_as_new = Some(OrchestratorMessage::ContinueAsNew {
                    from_execution_id: by.execution_id,
                    input: input.clone(),
                    version: version.clone(),
                    carried_events: index.unconsumed_events(),
                });
            }
            _ => {}
        }
    }

    /// Drop the work and messages of the turn's decisions: a faulted guest's
    /// last decisions are not acted on.
    pub(super) fn drop_decisions(&mut self) {
        self.activities.clear();
        self.messages.clear();
        self.new_instances.clear();
        self.continue_as_new = None;
    }

    /// The instance's state after the turn.
    pub(super) fn set_status(&mut self, status: InstanceStatus, text: String) {
        self.status = Some((status, text));
    }

    /// The custom status the guest published (`None` clears it).
    pub(super) fn set_custom_status(&mut self, status: Option<String>) {
        self.custom_status = Some(status);
    }

    /// The turn's output, with `new_events`; the effects start over empty.
    pub(super) fn take(&mut self, new_events: Vec<Event>, timer_pending: bool) -> TurnOutput {
        let effects = std::mem::take(self);
        TurnOutput {
            new_events,
            activities: effects.activities,
            messages: effects.messages,
            new_instances: effects.new_instances,
            continue_as_new: effects.continue_as_new,
            status: effects.status,
            custom_status: effects.custom_status,
            timer_pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(id: u64) -> Event {
        Event::SubOrchestrationScheduled {
            id,
            name: "C".into(),
            version: None,
            instance_id: format!("child-{id}"),
            input: "x".into(),
        }
    }

    #[test]
    fn cancelling_a_running_child_cancels_it_and_a_finished_one_is_left_alone() {
        let index = HistoryIndex::new(vec![
            child(1),
            child(2),
            Event::SubOrchestrationCompleted {
                id: 2,
                output: "done".into(),
            },
        ]);
        let by = Decider {
            instance_id: "parent",
            execution_id: 3,
            now_ms: 7_000,
        };
        let mut effects = Effects::default();
        effects.decide(&Event::TaskCancelled { id: 1 }, &by, &index);
        effects.decide(&Event::TaskCancelled { id: 2 }, &by, &index);
        let out = effects.take(Vec::new(), false);
        assert_eq!(out.messages.len(), 1, "{:?}", out.messages);
        assert_eq!(out.messages[0].instance_id, "child-1");
        assert_eq!(out.messages[0].visible_at_ms, 7_000);
        assert!(matches!(
            &out.messages[0].message,
            OrchestratorMessage::CancelOrchestration { reason } if reason.contains("'parent'")
        ));
    }

    #[test]
    fn a_new_child_is_started_with_a_failure_for_the_parent_if_its_id_is_taken() {
        let index = HistoryIndex::new(Vec::new());
        let by = Decider {
            instance_id: "parent",
            execution_id: 3,
            now_ms: 7_000,
        };
        let mut effects = Effects::default();
        effects.decide(&child(4), &by, &index);
        let out = effects.take(Vec::new(), false);
        let start = &out.new_instances[0];
        assert_eq!(start.instance.instance_id, "child-4");
        assert_eq!(start.instance.parent_instance.as_deref(), Some("parent"));
        assert_eq!(start.instance.parent_execution_id, Some(3));
        let if_exists = start.if_exists.as_ref().map(|m| &m.message);
        assert!(
            matches!(
                if_exists,
                Some(OrchestratorMessage::SubOrchestrationFailed {
                    execution_id: 3,
                    id: 4,
                    ..
                })
            ),
            "{if_exists:?}"
        );
        effects.decide(&child(5), &by, &index);
        effects.drop_decisions();
        assert!(effects.take(Vec::new(), false).new_instances.is_empty());
    }

    #[test]
    fn children_and_detached_starts_stay_in_the_parents_tenant() {
        let by = Decider {
            instance_id: "@b/parent",
            execution_id: 1,
            now_ms: 7_000,
        };
        let index = HistoryIndex::new(vec![child(1)]);
        let mut effects = Effects::default();
        effects.decide(&child(2), &by, &index);
        effects.decide(
            &Event::OrchestrationStartedDetached {
                id: 3,
                name: "n".into(),
                version: None,
                instance_id: "victim".into(),
                input: "x".into(),
            },
            &by,
            &index,
        );
        effects.decide(&Event::TaskCancelled { id: 1 }, &by, &index);
        let out = effects.take(Vec::new(), false);
        let keys: Vec<&str> = (out.new_instances.iter())
            .map(|s| s.instance.instance_id.as_str())
            .collect();
        assert_eq!(keys, ["@b/child-2", "@b/victim"]);
        assert_eq!(out.messages[0].instance_id, "@b/child-1");
    }

    #[test]
    fn a_key_shaped_child_id_fails_the_child_task_and_starts_nothing() {
        for parent in ["parent", "@b/parent"] {
            let by = Decider {
                instance_id: parent,
                execution_id: 2,
                now_ms: 7_000,
            };
            let index = HistoryIndex::new(Vec::new());
            let mut effects = Effects::default();
            let mut hostile = child(4);
            if let Event::SubOrchestrationScheduled { instance_id, .. } = &mut hostile {
                *instance_id = "@a/victim".into();
            }
            effects.decide(&hostile, &by, &index);
            effects.decide(
                &Event::OrchestrationStartedDetached {
                    id: 5,
                    name: "n".into(),
                    version: None,
                    instance_id: "@a/victim".into(),
                    input: "x".into(),
                },
                &by,
                &index,
            );
            let out = effects.take(Vec::new(), false);
            assert!(out.new_instances.is_empty(), "{parent}");
            assert_eq!(out.messages.len(), 1);
            assert_eq!(out.messages[0].instance_id, parent);
            assert!(
                matches!(
                    &out.messages[0].message,
                    OrchestratorMessage::SubOrchestrationFailed { execution_id: 2, id: 4, error }
                        if error.contains("'@a/victim'") && error.contains("'@'")
                ),
                "{:?}",
                out.messages[0].message
            );
        }
    }
}
