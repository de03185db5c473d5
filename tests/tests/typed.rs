//! Typed payloads end to end: a client sends and reads serde values, a
//! guest built on the SDK's typed calls takes them through activities,
//! events, children and continue-as-new; payloads that do not decode fail
//! with the type and the field.

use duroxide::{ClientError, OrchestrationStatus, TypedCompletion};
use duroxide_tests::{Harness, WAIT_MS, completed, failed, guests, scenario};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
struct Order {
    id: u32,
    customer: String,
    lines: Vec<Line>,
}

#[derive(Debug, Serialize)]
struct Line {
    sku: String,
    quantity: u32,
    price_cents: u64,
}

#[derive(Debug, Serialize)]
struct Shipping {
    carrier: String,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Receipt {
    order_id: u32,
    total_cents: u64,
    label: Label,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Label {
    text: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Count {
    execution: u32,
    upto: u32,
    seen: Vec<String>,
}

/// A type the receipt is not.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only decoded, to fail")]
struct Invoice {
    invoice_no: u64,
}

fn order() -> Order {
    Order {
        id: 7,
        customer: "Zoë Ångström 🚚".into(),
        lines: vec![
            Line {
                sku: "tea".into(),
                quantity: 3,
                price_cents: 450,
            },
            Line {
                sku: "mug".into(),
                quantity: 1,
                price_cents: 1200,
            },
        ],
    }
}

scenario!(
    a_typed_order_goes_through_an_activity_an_event_and_a_child,
    |cache| async move {
        let h = Harness::start(cache, &[guests::TYPED_PAYLOADS]).await?;
        h.client
            .start_orchestration_typed("order-7", "TypedOrder", &order(), None)
            .await?;
        let shipping = Shipping {
            carrier: "Pošta ✉".into(),
        };
        h.client
            .raise_event_typed("order-7", "Shipping", &shipping)
            .await?;
        let receipt = h
            .client
            .wait_for_completion_typed::<Receipt>("order-7", Some(WAIT_MS))
            .await?;
        assert_eq!(
            receipt,
            TypedCompletion::Completed(Receipt {
                order_id: 7,
                total_cents: 3 * 450 + 1200,
                label: Label {
                    text: "Zoë Ångström 🚚 via Pošta ✉".into()
                },
            })
        );
        // The same output read as the wrong type names the type and field.
        let err = h
            .client
            .wait_for_completion_typed::<Invoice>("order-7", Some(WAIT_MS))
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("a receipt decoded as an invoice"))?;
        let ClientError::Payload {
            what,
            type_name,
            reason,
        } = &err
        else {
            anyhow::bail!("expected a payload error, got {err:?}");
        };
        assert_eq!(what, "output of instance 'order-7'");
        assert!(type_name.ends_with("Invoice"), "{type_name}");
        assert!(reason.contains("missing field `invoice_no`"), "{reason}");
        assert!(err.to_string().contains("Invoice"), "{err}");
        Ok(())
    }
);

scenario!(
    typed_state_carries_across_continue_as_new,
    |cache| async move {
        let h = Harness::start(cache, &[guests::TYPED_PAYLOADS]).await?;
        let start = Count {
            execution: 1,
            upto: 3,
            seen: vec!["before ünïcode".into()],
        };
        h.client
            .start_orchestration_typed("count", "TypedCount", &start, None)
            .await?;
        let done = h
            .client
            .wait_for_completion_typed::<Count>("count", Some(WAIT_MS))
            .await?
            .into_result()
            .map_err(anyhow::Error::msg)?;
        assert_eq!(
            done.seen,
            [
                "before ünïcode",
                "execution 1 ✓",
                "execution 2 ✓",
                "execution 3 ✓"
            ]
        );
        let info = h
            .client
            .get_instance_info("count")
            .await?
            .ok_or_else(|| anyhow::anyhow!("no instance"))?;
        assert_eq!(info.execution_id, 3);
        Ok(())
    }
);

scenario!(
    payloads_that_do_not_decode_name_the_type_and_the_field,
    |cache| async move {
        let h = Harness::start(cache, &[guests::TYPED_PAYLOADS]).await?;
        // An input missing a field fails the instance, naming the field.
        let error = failed(
            h.run("no-lines", "TypedOrder", r#"{"id":1,"customer":"c"}"#)
                .await?,
        )?;
        assert!(
            error
                .contains("the input of orchestration 'TypedOrder' is not a typed_payloads::Order")
                && error.contains("missing field `lines`"),
            "{error}"
        );
        // An activity handed the wrong shape fails the call, naming its type.
        let output = completed(h.run("wrong-input", "WrongActivityInput", "null").await?)?;
        assert!(
            output.contains("the input of activity 'PriceOrder' is not a typed_payloads::Order")
                && output.contains("missing field `id`"),
            "{output}"
        );
        // Event data of the wrong type fails the wait, naming the field's type.
        h.client
            .start_orchestration_typed("bad-event", "TypedOrder", &order(), None)
            .await?;
        h.client
            .raise_event("bad-event", "Shipping", r#"{"carrier":5}"#)
            .await?;
        let error = failed(
            h.client
                .wait_for_completion("bad-event", Some(WAIT_MS))
                .await?,
        )?;
        assert!(
            error.contains("the data of event 'Shipping' is not a typed_payloads::Shipping")
                && error.contains("invalid type: integer `5`, expected a string"),
            "{error}"
        );
        // A failed instance waited on typed is its error, not a decode error.
        let typed = h
            .client
            .wait_for_completion_typed::<Receipt>("bad-event", Some(WAIT_MS))
            .await?;
        assert!(matches!(typed, TypedCompletion::Failed { .. }), "{typed:?}");
        assert!(matches!(
            h.client.get_orchestration_status("bad-event").await?,
            OrchestrationStatus::Failed { .. }
        ));
        Ok(())
    }
);
