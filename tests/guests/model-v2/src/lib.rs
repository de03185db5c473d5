//! Test guest: version 2.0.0 of Pinned and Upgrader, deployed beside the
//! model component's 1.0.0.

use duroxide_guest::{OrchestrationContext, Registry};

async fn pinned_v2(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    ctx.wait_for_external_event("go").await;
    Ok("ran 2.0.0".to_string())
}

async fn upgrader_v2(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    Ok(format!("2.0.0 continued {input}"))
}

/// Continues as new on a named older version.
async fn downgrader_v2(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    ctx.continue_as_new_versioned("from 2.0.0", Some("1.0.0"))
}

fn register(registry: &mut Registry) {
    registry
        .orchestration_versioned("Pinned", "2.0.0", pinned_v2)
        .orchestration_versioned("Upgrader", "2.0.0", upgrader_v2)
        .orchestration_versioned("Downgrader", "2.0.0", downgrader_v2);
}

duroxide_guest::component!(register);
