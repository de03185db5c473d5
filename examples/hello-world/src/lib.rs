//! Guest component: the HelloWorld orchestration greets its input through the
//! SayHello activity.

use duroxide_guest::{OrchestrationContext, Registry};

async fn hello_world(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.log_info(&format!("Hello from orchestration: {input}"));
    ctx.schedule_activity("SayHello", &input).await
}

fn say_hello(name: String) -> Result<String, String> {
    Ok(format!("Hello, {name}!"))
}

fn register(registry: &mut Registry) {
    registry.orchestration("HelloWorld", hello_world);
    registry.activity("SayHello", say_hello);
}

duroxide_guest::component!(register);
