//! Test guest: an orchestration in a component that imports `wasi:http`,
//! which only activity-only components may; the host must refuse to load
//! it.

use duroxide_guest::{OrchestrationContext, Registry};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingRequest};

async fn fetches(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let request = OutgoingRequest::new(Fields::new());
    outgoing_handler::handle(request, None)
        .map(|_| "sent".to_string())
        .map_err(|e| format!("{e:?}"))
}

fn register(registry: &mut Registry) {
    registry.orchestration("Fetches", fetches);
}

duroxide_guest::component!(register);
