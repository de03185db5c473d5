//! `duroxide replay`: an offline determinism check of one instance.

use std::path::Path;

use duroxide::SandboxLimits;
use duroxide::runtime::{ReplayMismatch, verify_replay};
use duroxide::sandbox::load_component;
use serde_json::json;

use super::control::unknown;
use super::deploy::read_component;
use crate::exit::Code;
use crate::output::print_json;
use crate::store;

/// Replays the instance's current execution with the component in `file`
/// and says whether it makes the recorded decisions; exit code 4 if not.
pub async fn replay(db: &str, json_out: bool, id: &str, file: &Path) -> anyhow::Result<Code> {
    let (bytes, _manifest) = read_component(file).await?;
    let (client, _store) = store::client(db).await?;
    let Some(info) = client.get_instance_info(id).await? else {
        return Err(unknown(id));
    };
    let history = client
        .get_execution_history(id, Some(info.execution_id))
        .await?;
    let events = history.len();
    let component = load_component(&bytes).await?;
    let verdict = verify_replay(
        &component,
        id,
        info.execution_id,
        history,
        SandboxLimits::default(),
    )
    .await;
    let (deterministic, divergence) = match &verdict {
        Ok(()) => (true, None),
        Err(ReplayMismatch::Diverged { expected, actual }) => (
            false,
            Some(format!(
                "history holds {expected}; the code produced {actual}"
            )),
        ),
        Err(other) => (false, Some(other.to_string())),
    };
    if json_out {
        print_json(&json!({
            "instance": id,
            "execution": info.execution_id,
            "events": events,
            "deterministic": deterministic,
            "divergence": divergence,
        }));
    } else if let Some(divergence) = &divergence {
        println!(
            "{id} execution {} diverges ({events} events): {divergence}",
            info.execution_id
        );
    } else {
        println!(
            "{id} execution {} replays deterministically ({events} events)",
            info.execution_id
        );
    }
    Ok(if deterministic {
        Code::Ok
    } else {
        Code::Diverged
    })
}
