//! Test guest: an orchestration that opens a network socket, which
//! orchestrations may not do; the host must refuse to load it.

use duroxide_guest::{OrchestrationContext, Registry};

async fn connects(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let stream = std::net::TcpStream::connect(input.as_str()).map_err(|e| e.to_string())?;
    Ok(format!("{:?}", stream.peer_addr()))
}

fn register(registry: &mut Registry) {
    registry.orchestration("Connects", connects);
}

duroxide_guest::component!(register);
