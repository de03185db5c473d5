//! A changed build of the conformance guest's Changing orchestration,
//! under the same name and version: its first decision differs, so
//! instances started on the first build must fail on replay.

use duroxide_guest::{OrchestrationContext, Registry};
use serde_json::{Value, json};

async fn changing(ctx: OrchestrationContext, _name: String) -> Result<Value, String> {
    let doubled: u64 = ctx.schedule_activity_typed("Double", &1u64).await?;
    let go: Value = ctx.wait_for_external_event_typed("go").await?;
    Ok(json!([doubled, go]))
}

fn register(registry: &mut Registry) {
    registry
        .orchestration_typed("Changing", changing)
        .activity_typed("Double", |x: u64| Ok::<_, String>(x * 2));
}

duroxide_guest::component!(register);
