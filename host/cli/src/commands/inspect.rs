//! `list`, `show`, `history`, `health` and `purge`.

use duroxide::clock::system_now_ms as now_ms;
use duroxide::providers::query::{InstanceFilter, PurgeFilter};
use serde_json::{Value, json};

use super::control::unknown;
use crate::exit::{Code, fail};
use crate::output::{parse_status, print_json, status_json, table, time};
use crate::store;

/// A state given on the command line.
fn state(text: &str) -> anyhow::Result<duroxide::InstanceStatus> {
    parse_status(text).ok_or_else(|| {
        fail(
            Code::Usage,
            format!("unknown state '{text}': use pending, running, completed, failed or cancelled"),
        )
    })
}

/// `duroxide list`.
pub async fn list(
    db: &str,
    json_out: bool,
    status: Option<&str>,
    name: Option<String>,
    since: Option<u64>,
    limit: u32,
) -> anyhow::Result<Code> {
    let status = status.map(state).transpose()?;
    let (client, _store) = store::client(db).await?;
    let filter = InstanceFilter {
        status: status.map(|s| vec![s]),
        orchestration_name: name,
        created_after_ms: since.map(|ms| now_ms().saturating_sub(ms)),
        limit: Some(limit),
        ..InstanceFilter::default()
    };
    let page = client.list_instances(Some(filter)).await?;
    if json_out {
        let rows: Vec<Value> = page
            .instances
            .iter()
            .map(|i| {
                json!({
                    "instance": i.instance_id,
                    "orchestration": i.orchestration_name,
                    "version": i.orchestration_version,
                    "status": i.status.as_str(),
                    "created_at_ms": i.created_at_ms,
                    "updated_at_ms": i.updated_at_ms,
                    "finished_at_ms": i.finished_at_ms,
                    "executions": i.execution_count,
                    "parent": i.parent_instance,
                })
            })
            .collect();
        print_json(&Value::Array(rows));
        return Ok(Code::Ok);
    }
    let mut t = table(&[
        "instance",
        "orchestration",
        "version",
        "status",
        "created",
        "executions",
    ]);
    for i in &page.instances {
        t.add_row(vec![
            i.instance_id.clone(),
            i.orchestration_name.clone(),
            i.orchestration_version.clone().unwrap_or_default(),
            i.status.as_str().to_owned(),
            time(i.created_at_ms),
            i.execution_count.to_string(),
        ]);
    }
    println!("{t}");
    Ok(Code::Ok)
}

/// `duroxide show`.
pub async fn show(db: &str, json_out: bool, id: &str) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    let Some(details) = client.get_instance_details(id).await? else {
        return Err(unknown(id));
    };
    let info = client.get_instance_info(id).await?;
    let component = info.and_then(|i| i.component_digest);
    let pending: Vec<(String, String)> = details
        .current_execution
        .iter()
        .flat_map(|e| {
            let activities = e.pending_activities.iter().map(|a| {
                (
                    "activity".to_owned(),
                    format!("#{} {}({})", a.id, a.name, a.input),
                )
            });
            let timers = e.pending_timers.iter().map(|t| {
                (
                    "timer".to_owned(),
                    format!("#{} fires {}", t.id, time(t.fire_at_ms)),
                )
            });
            let events = e
                .pending_events
                .iter()
                .map(|v| ("event".to_owned(), format!("#{} {}", v.id, v.name)));
            let children = e.pending_sub_orchestrations.iter().map(|c| {
                (
                    "child".to_owned(),
                    format!("#{} {} ({})", c.id, c.name, c.instance_id),
                )
            });
            activities
                .chain(timers)
                .chain(events)
                .chain(children)
                .collect::<Vec<_>>()
        })
        .collect();
    let s = &details.summary;
    if json_out {
        let mut out = status_json(&details.status);
        out["instance"] = json!(s.instance_id);
        out["orchestration"] = json!(s.orchestration_name);
        out["version"] = json!(s.orchestration_version);
        out["component"] = json!(component);
        out["custom_status"] = json!(details.custom_status);
        out["created_at_ms"] = json!(s.created_at_ms);
        out["executions"] = json!(
            details
                .executions
                .iter()
                .map(|e| json!({
                    "execution": e.execution_id,
                    "status": format!("{:?}", e.status),
                    "started_at_ms": e.started_at_ms,
                    "completed_at_ms": e.completed_at_ms,
                    "events": e.event_count,
                }))
                .collect::<Vec<_>>()
        );
        out["pending"] = json!(
            pending
                .iter()
                .map(|(kind, what)| json!({"kind": kind, "what": what}))
                .collect::<Vec<_>>()
        );
        print_json(&out);
        return Ok(Code::Ok);
    }
    println!("instance      {}", s.instance_id);
    println!(
        "orchestration {} {}",
        s.orchestration_name,
        s.orchestration_version.as_deref().unwrap_or("")
    );
    println!("status        {}", details.status);
    if let Some(custom) = &details.custom_status {
        println!("custom status {custom}");
    }
    if let Some(component) = &component {
        println!("component     {component}");
    }
    println!("created       {}", time(s.created_at_ms));
    let mut t = table(&["execution", "status", "started", "events"]);
    for e in &details.executions {
        t.add_row(vec![
            e.execution_id.to_string(),
            format!("{:?}", e.status),
            time(e.started_at_ms),
            e.event_count.to_string(),
        ]);
    }
    println!("{t}");
    if !pending.is_empty() {
        let mut t = table(&["waiting on", ""]);
        for (kind, what) in pending {
            t.add_row(vec![kind, what]);
        }
        println!("{t}");
    }
    Ok(Code::Ok)
}

/// `duroxide history`.
pub async fn history(
    db: &str,
    json_out: bool,
    id: &str,
    execution: Option<u64>,
) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    if client.get_instance_info(id).await?.is_none() {
        return Err(unknown(id));
    }
    let events = client.get_execution_history(id, execution).await?;
    if json_out {
        print_json(&serde_json::to_value(&events)?);
        return Ok(Code::Ok);
    }
    let mut t = table(&["#", "event"]);
    for (n, event) in events.iter().enumerate() {
        let text = serde_json::to_string(event)?;
        t.add_row(vec![n.to_string(), text]);
    }
    println!("{t}");
    Ok(Code::Ok)
}

/// `duroxide health`.
pub async fn health(db: &str, json_out: bool) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    let h = client.get_system_health().await?;
    let rows = [
        ("total", h.total_instances),
        ("pending", h.pending_instances),
        ("running", h.running_instances),
        ("completed", h.completed_instances),
        ("failed", h.failed_instances),
        ("cancelled", h.cancelled_instances),
        ("running over 24 h", h.long_running_instances),
        ("failed in the last hour", h.recent_failures),
        ("health score", u64::from(h.health_score)),
    ];
    if json_out {
        let out: serde_json::Map<String, Value> = rows
            .iter()
            .map(|(k, v)| (k.replace(' ', "_"), json!(v)))
            .collect();
        print_json(&Value::Object(out));
        return Ok(Code::Ok);
    }
    let mut t = table(&["", "instances"]);
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v.to_string()]);
    }
    println!("{t}");
    Ok(Code::Ok)
}

/// `duroxide purge`.
pub async fn purge(
    db: &str,
    json_out: bool,
    before: Option<u64>,
    name: Option<String>,
    status: Option<&str>,
) -> anyhow::Result<Code> {
    let status = status.map(state).transpose()?;
    let (client, _store) = store::client(db).await?;
    let filter = PurgeFilter {
        tenant: None,
        finished_before_ms: now_ms()
            .saturating_sub(before.unwrap_or(0))
            .saturating_add(1),
        orchestration_name: name,
        status: status.map(|s| vec![s]),
    };
    let purged = client.purge_finished(filter).await?;
    if json_out {
        print_json(&json!({ "purged": purged }));
    } else {
        println!("purged {purged} finished instances");
    }
    Ok(Code::Ok)
}
