//! Test guest: the first build of the Upgrade orchestration. Input "extra"
//! takes a branch whose decision the second build changes; any other input
//! replays the same on both builds.

use duroxide_guest::{OrchestrationContext, Registry};

async fn upgrade(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let a = ctx.schedule_activity("Echo", "a").await?;
    if input == "extra" {
        ctx.schedule_activity("Echo", "extra-v1").await?;
    }
    let go = ctx.wait_for_external_event("go").await;
    Ok(format!("v1:{a}:{go}"))
}

fn echo(input: String) -> Result<String, String> {
    Ok(input)
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("Upgrade", upgrade)
        .activity("Echo", echo);
}

duroxide_guest::component!(register);
