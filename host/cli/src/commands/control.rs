//! `start`, `raise`, `cancel`, `status` and `wait`.

use duroxide::{ClientError, OrchestrationStatus, StartOptions};
use serde_json::json;

use crate::exit::{Code, fail};
use crate::output::{print_json, status_json};
use crate::store;

/// `duroxide start`.
pub async fn start(
    db: &str,
    json_out: bool,
    name: &str,
    id: Option<String>,
    input: &str,
    version: Option<String>,
    delay: Option<u64>,
) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    let id = id.unwrap_or_else(|| new_id(name));
    let options = StartOptions {
        version,
        delay_ms: delay,
    };
    match client
        .start_orchestration(&id, name, input, Some(options))
        .await
    {
        Ok(()) => {}
        Err(e @ ClientError::NotDeployed { .. }) => {
            return Err(fail(
                Code::NotFound,
                format!("{e}: deploy a component that provides it with `duroxide deploy`"),
            ));
        }
        Err(ClientError::InstanceExists(id)) => {
            return Err(fail(
                Code::Failure,
                format!("instance '{id}' already exists: choose another --id"),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    if json_out {
        print_json(&json!({ "instance": id, "orchestration": name }));
    } else {
        println!("started {id}");
    }
    Ok(Code::Ok)
}

/// A fresh instance id: the orchestration's name and a random suffix.
fn new_id(name: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(duroxide::clock::system_now_ms());
    format!(
        "{}-{:012x}",
        name.to_lowercase(),
        hasher.finish() & 0xffff_ffff_ffff
    )
}

/// `duroxide raise`.
pub async fn raise(
    db: &str,
    json_out: bool,
    id: &str,
    event: &str,
    data: &str,
) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    client
        .raise_event(id, event, data)
        .await
        .map_err(not_found_hint)?;
    if json_out {
        print_json(&json!({ "instance": id, "event": event }));
    } else {
        println!("raised {event} to {id}");
    }
    Ok(Code::Ok)
}

/// `duroxide cancel`.
pub async fn cancel(db: &str, json_out: bool, id: &str, reason: &str) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    client
        .cancel_orchestration_with_reason(id, reason)
        .await
        .map_err(not_found_hint)?;
    if json_out {
        print_json(&json!({ "instance": id, "cancelled": true }));
    } else {
        println!("cancellation of {id} requested");
    }
    Ok(Code::Ok)
}

/// `duroxide status`.
pub async fn status(db: &str, json_out: bool, id: &str) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    let Some(info) = client.get_instance_info(id).await? else {
        return Err(unknown(id));
    };
    if json_out {
        let mut out = status_json(&info.status);
        out["instance"] = json!(info.instance_id);
        out["orchestration"] = json!(info.orchestration_name);
        out["version"] = json!(info.orchestration_version);
        out["execution"] = json!(info.execution_id);
        out["custom_status"] = json!(info.custom_status);
        out["component"] = json!(info.component_digest);
        print_json(&out);
    } else {
        println!("{id}: {}", info.status);
    }
    Ok(Code::Ok)
}

/// `duroxide wait`.
pub async fn wait(
    db: &str,
    json_out: bool,
    id: &str,
    timeout: Option<u64>,
) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    let status = match client.wait_for_completion(id, timeout).await {
        Ok(status) => status,
        Err(ClientError::InstanceNotFound(_)) => return Err(unknown(id)),
        Err(ClientError::Timeout(_)) => {
            return Err(fail(
                Code::Timeout,
                format!(
                    "instance '{id}' did not finish in time: wait longer (--timeout) or check `duroxide show {id}`"
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if json_out {
        let mut out = status_json(&status);
        out["instance"] = json!(id);
        print_json(&out);
    } else {
        println!("{id}: {status}");
    }
    Ok(match status {
        OrchestrationStatus::Completed { .. } => Code::Ok,
        _ => Code::Failure,
    })
}

/// The error for an unknown instance.
pub fn unknown(id: &str) -> anyhow::Error {
    fail(
        Code::NotFound,
        format!("no instance '{id}': see `duroxide list`"),
    )
}

/// A client error, with a hint when the instance is unknown or finished.
fn not_found_hint(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::InstanceNotFound(id) => unknown(&id),
        ClientError::InstanceFinished { instance, status } => fail(
            Code::Failure,
            format!(
                "instance '{instance}' has already finished ({status}): see `duroxide status {instance}`"
            ),
        ),
        other => other.into(),
    }
}
