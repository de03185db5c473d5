//! Typed payloads on the client: inputs, event data and outputs as serde
//! values, carried as JSON, as the guest SDK's typed calls carry them. A
//! payload that does not encode or decode is a [`ClientError::Payload`]
//! naming the payload, the type and serde's reason (the field).

use std::any::type_name;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Client, ClientError, OrchestrationStatus, SignalOutcome, StartOptions};

/// How a typed wait ended: the output decoded, or the failure or
/// cancellation as text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypedCompletion<T> {
    /// Completed; its output decoded as `T`.
    Completed(T),
    /// Failed with this error.
    Failed {
        /// Why it failed.
        error: String,
    },
    /// Cancelled with this reason.
    Cancelled {
        /// The reason given with the cancellation.
        reason: String,
    },
}

impl<T> TypedCompletion<T> {
    /// The output, or the error or reason as the `Err`.
    pub fn into_result(self) -> Result<T, String> {
        match self {
            TypedCompletion::Completed(output) => Ok(output),
            TypedCompletion::Failed { error } => Err(error),
            TypedCompletion::Cancelled { reason } => Err(reason),
        }
    }
}

/// `value` as JSON, or a payload error naming `what` and the type.
pub(super) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, ClientError> {
    serde_json::to_string(value).map_err(|e| ClientError::Payload {
        what: what.to_string(),
        type_name: type_name::<T>(),
        reason: e.to_string(),
    })
}

/// `json` decoded as `T`, or a payload error naming `what`, the type and
/// serde's reason.
pub(super) fn decode<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, ClientError> {
    serde_json::from_str(json).map_err(|e| ClientError::Payload {
        what: what.to_string(),
        type_name: type_name::<T>(),
        reason: e.to_string(),
    })
}

impl Client {
    /// [`start_orchestration`](Self::start_orchestration) with `input` sent
    /// as JSON.
    pub async fn start_orchestration_typed<I: Serialize>(
        &self,
        instance_id: &str,
        name: &str,
        input: &I,
        options: Option<StartOptions>,
    ) -> Result<(), ClientError> {
        let input = encode("orchestration input", input)?;
        self.start_orchestration(instance_id, name, &input, options)
            .await
    }

    /// [`raise_event`](Self::raise_event) with `data` sent as JSON.
    pub async fn raise_event_typed<T: Serialize>(
        &self,
        instance_id: &str,
        name: &str,
        data: &T,
    ) -> Result<(), ClientError> {
        let data = encode("event data", data)?;
        self.raise_event(instance_id, name, &data).await
    }

    /// [`signal_with_start`](Self::signal_with_start) with the input and
    /// the event's data sent as JSON.
    pub async fn signal_with_start_typed<I: Serialize, E: Serialize>(
        &self,
        instance_id: &str,
        name: &str,
        input: &I,
        options: Option<StartOptions>,
        event_name: &str,
        event_data: &E,
    ) -> Result<SignalOutcome, ClientError> {
        let input = encode("orchestration input", input)?;
        let data = encode("event data", event_data)?;
        self.signal_with_start(instance_id, name, &input, options, event_name, &data)
            .await
    }

    /// [`wait_for_completion`](Self::wait_for_completion), with a
    /// completed instance's output decoded as `T`. An output that does not
    /// decode is a [`ClientError::Payload`] naming the type and the field.
    pub async fn wait_for_completion_typed<T: DeserializeOwned>(
        &self,
        instance_id: &str,
        timeout_ms: Option<u64>,
    ) -> Result<TypedCompletion<T>, ClientError> {
        match self.wait_for_completion(instance_id, timeout_ms).await? {
            OrchestrationStatus::Completed { output } => {
                let what = format!("output of instance '{instance_id}'");
                decode(&what, &output).map(TypedCompletion::Completed)
            }
            OrchestrationStatus::Failed { error } => Ok(TypedCompletion::Failed { error }),
            OrchestrationStatus::Cancelled { reason } => Ok(TypedCompletion::Cancelled { reason }),
            // A wait returns only a terminal status.
            other => Err(ClientError::InvalidArgument(format!(
                "instance '{instance_id}' has not finished ({other})"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Order {
        id: u32,
        item: String,
    }

    #[test]
    fn a_payload_that_does_not_decode_names_the_type_and_the_field() {
        let err = decode::<Order>("output of instance 'o'", r#"{"id":1}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("output of instance 'o'"), "{text}");
        assert!(text.contains("Order"), "{text}");
        assert!(text.contains("missing field `item`"), "{text}");
        let ok = decode::<Order>("x", r#"{"id":1,"item":"ü"}"#).unwrap();
        assert_eq!(
            ok,
            Order {
                id: 1,
                item: "ü".into()
            }
        );
    }

    #[test]
    fn into_result_keeps_the_failure_text() {
        let failed = TypedCompletion::<u32>::Failed {
            error: "boom".into(),
        };
        assert_eq!(failed.into_result(), Err("boom".into()));
        assert_eq!(TypedCompletion::Completed(3u32).into_result(), Ok(3));
    }
}
