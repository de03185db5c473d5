//! Typed payloads: orchestrations, activities, events and children take and
//! return serde values, carried as JSON. Strings stay available through the
//! untyped calls. A payload that does not decode is an error naming the
//! payload, the type and serde's reason (the field, the line and column).

use std::any::type_name;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ActivityTask, EventTask, OrchestrationContext, SubOrchestrationTask};

/// `value` as JSON, or an error naming `what` and its type.
pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, String> {
    serde_json::to_string(value)
        .map_err(|e| format!("cannot encode {what} as JSON ({}): {e}", type_name::<T>()))
}

/// `json` decoded as `T`, or an error naming `what`, the type and the field.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| format!("{what} is not a {}: {e}", type_name::<T>()))
}

/// A task whose output decodes as `T`. Dropping it cancels the task, as
/// dropping the untyped task does.
pub struct Typed<F, T> {
    /// The untyped task, or why its input could not be encoded.
    inner: Result<F, Option<String>>,
    /// What the output is, for a decoding error.
    what: String,
    _output: PhantomData<fn() -> T>,
}

impl<F, T> Typed<F, T> {
    fn new(inner: Result<F, String>, what: String) -> Self {
        Self {
            inner: inner.map_err(Some),
            what,
            _output: PhantomData,
        }
    }
}

impl<F, T> Future for Typed<F, T>
where
    F: Future<Output = Result<String, String>> + Unpin,
    T: DeserializeOwned,
{
    type Output = Result<T, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.inner {
            Ok(task) => Pin::new(task)
                .poll(cx)
                .map(|result| decode(&this.what, &result?)),
            Err(error) => Poll::Ready(Err(error.take().unwrap_or_default())),
        }
    }
}

/// An external event whose data decodes as `T`.
pub struct TypedEvent<T> {
    inner: EventTask,
    what: String,
    _data: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Future for TypedEvent<T> {
    type Output = Result<T, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Pin::new(&mut this.inner)
            .poll(cx)
            .map(|data| decode(&this.what, &data))
    }
}

impl OrchestrationContext {
    /// [`schedule_activity`](Self::schedule_activity) with a serde input and
    /// output: `ctx.schedule_activity_typed::<_, Receipt>("Charge", &order)`.
    pub fn schedule_activity_typed<In: Serialize, Out: DeserializeOwned>(
        &self,
        name: &str,
        input: &In,
    ) -> Typed<ActivityTask, Out> {
        let task = encode(&format!("the input of activity '{name}'"), input)
            .map(|input| self.schedule_activity(name, &input));
        Typed::new(task, format!("the output of activity '{name}'"))
    }

    /// [`schedule_sub_orchestration`](Self::schedule_sub_orchestration) with
    /// a serde input and output.
    pub fn schedule_sub_orchestration_typed<In: Serialize, Out: DeserializeOwned>(
        &self,
        name: &str,
        input: &In,
    ) -> Typed<SubOrchestrationTask, Out> {
        let task = encode(&format!("the input of orchestration '{name}'"), input)
            .map(|input| self.schedule_sub_orchestration(name, &input));
        Typed::new(task, format!("the output of orchestration '{name}'"))
    }

    /// [`wait_for_external_event`](Self::wait_for_external_event), its data
    /// decoded as `T`.
    pub fn wait_for_external_event_typed<T: DeserializeOwned>(&self, name: &str) -> TypedEvent<T> {
        TypedEvent {
            inner: self.wait_for_external_event(name),
            what: format!("the data of event '{name}'"),
            _data: PhantomData,
        }
    }

    /// [`start_orchestration`](Self::start_orchestration) with a serde input.
    /// `Err` if the input cannot be encoded (nothing is started).
    pub fn start_orchestration_typed<In: Serialize>(
        &self,
        name: &str,
        instance_id: &str,
        input: &In,
    ) -> Result<(), String> {
        let input = encode(&format!("the input of orchestration '{name}'"), input)?;
        self.start_orchestration(name, instance_id, &input);
        Ok(())
    }

    /// [`continue_as_new`](Self::continue_as_new) with a serde input. `Err`
    /// if the input cannot be encoded (the execution goes on).
    pub fn continue_as_new_typed<In: Serialize>(&self, input: &In) -> Result<(), String> {
        let input = encode("the input of the next execution", input)?;
        self.continue_as_new(&input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    struct Order {
        id: u64,
        item: String,
    }

    #[test]
    fn values_round_trip_as_json() {
        let order = Order {
            id: 7,
            item: "ünïcode ✓".into(),
        };
        let json = encode("an order", &order).expect("encodes");
        assert_eq!(decode::<Order>("an order", &json), Ok(order));
    }

    #[test]
    fn a_payload_that_does_not_decode_names_the_type_and_the_field() {
        let error = decode::<Order>("the output of activity 'Pack'", r#"{"id":7}"#)
            .expect_err("a field is missing");
        assert!(
            error.starts_with("the output of activity 'Pack' is not a "),
            "{error}"
        );
        assert!(error.contains("Order"), "{error}");
        assert!(error.contains("missing field `item`"), "{error}");
    }
}
