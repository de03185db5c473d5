//! `deploy` (with `--check` and `--upgrade`), `components` and `remove`.

use std::path::Path;

use duroxide::providers::query::InstanceFilter;
use duroxide::runtime::{ReplayMismatch, inspect_component, stored_policy, verify_replay};
use duroxide::sandbox::load_component;
use duroxide::{ArtifactManifest, Client, ClientError, InstanceStatus, SandboxLimits};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::exit::{Code, fail};
use crate::output::{print_json, short, table, time};
use crate::store;

/// Reads a component file and what it provides, refusing anything that is
/// not a component duroxide can run.
pub async fn read_component(file: &Path) -> anyhow::Result<(Vec<u8>, ArtifactManifest)> {
    let bytes = match tokio::fs::read(file).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(
                Code::NotFound,
                format!(
                    "no file '{}': give the path of a .wasm component",
                    file.display()
                ),
            ));
        }
        Err(e) => {
            return Err(fail(
                Code::Failure,
                format!("cannot read '{}': {e}", file.display()),
            ));
        }
    };
    if !bytes.starts_with(b"\0asm") {
        return Err(fail(
            Code::Failure,
            format!(
                "'{}' is not WebAssembly: build a component with `cargo build --target wasm32-wasip2`",
                file.display()
            ),
        ));
    }
    // A core module's version field is 1; a component's layer byte is 1.
    if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        return Err(fail(
            Code::Failure,
            format!(
                "'{}' is a core WebAssembly module, not a component: build for wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
                file.display()
            ),
        ));
    }
    let manifest = inspect_component(&bytes).await.map_err(|e| {
        fail(
            Code::Failure,
            format!("'{}' cannot be deployed: {e}", file.display()),
        )
    })?;
    Ok((bytes, manifest))
}

/// What `duroxide deploy` deploys.
pub struct What<'a> {
    /// The component file.
    pub file: &'a Path,
    /// Its label, if given.
    pub label: Option<&'a str>,
    /// Its policy file, if given.
    pub policy: Option<&'a Path>,
}

/// `duroxide deploy`.
pub async fn deploy(
    db: &str,
    json_out: bool,
    what: What<'_>,
    check: bool,
    upgrade: bool,
) -> anyhow::Result<Code> {
    let What {
        file,
        label,
        policy,
    } = what;
    // The policy is read first: a bad one is refused before anything else.
    let policy = match policy {
        Some(path) => {
            let policy = crate::policy::read(path).await?;
            Some(stored_policy(&policy).map_err(|e| fail(Code::Failure, e.to_string()))?)
        }
        None => None,
    };
    let (bytes, manifest) = read_component(file).await?;
    let store = store::open(db, !check).await?;
    let client = store::client_of(store);
    if check {
        let report = check_instances(&client, &bytes, &manifest, None, json_out).await?;
        return Ok(print_report(&report, None, json_out));
    }
    let deployed = client
        .deploy_component_with_policy(&bytes, manifest.clone(), label, policy)
        .await?;
    let report = if upgrade {
        Some(check_instances(&client, &bytes, &manifest, Some(&deployed.digest), json_out).await?)
    } else {
        None
    };
    let summary = json!({
        "digest": deployed.digest,
        "label": deployed.label,
        "size_bytes": deployed.size_bytes,
        "newly_deployed": deployed.newly_deployed,
        "policy": deployed.policy.as_ref().and_then(|p| serde_json::from_str::<Value>(p.json()).ok()),
        "orchestrations": deployed.manifest.orchestrations.iter()
            .map(|(n, v)| json!({"name": n, "version": v})).collect::<Vec<_>>(),
        "activities": deployed.manifest.activities,
    });
    if json_out && report.is_none() {
        print_json(&summary);
        return Ok(Code::Ok);
    }
    if !json_out {
        let verb = if deployed.newly_deployed {
            "deployed"
        } else {
            "already deployed"
        };
        println!("{verb} {} ({} bytes)", deployed.digest, deployed.size_bytes);
        for (name, version) in &deployed.manifest.orchestrations {
            println!("  orchestration {name} {version}");
        }
        for name in &deployed.manifest.activities {
            println!("  activity {name}");
        }
    }
    Ok(match report {
        // Deployed: the instances that diverge stay on their component,
        // which the report says; that is not a failure of the upgrade.
        Some(report) => {
            print_report(&report, Some(summary), json_out);
            Code::Ok
        }
        None => Code::Ok,
    })
}

/// One running instance checked against a new component.
struct Checked {
    instance: String,
    orchestration: String,
    /// The component it was pinned to.
    pinned: Option<String>,
    /// `None`: it replays cleanly; else where and how it diverged.
    divergence: Option<String>,
    /// Whether it was moved onto the new component.
    moved: bool,
}

/// Replays every running instance of the orchestrations `manifest`
/// provides against the new component; with `upgrade_to`, moves the clean
/// ones onto it.
async fn check_instances(
    client: &Client,
    bytes: &[u8],
    manifest: &ArtifactManifest,
    upgrade_to: Option<&str>,
    quiet: bool,
) -> anyhow::Result<Vec<Checked>> {
    let component = load_component(bytes).await?;
    let mut running = Vec::new();
    for (name, version) in &manifest.orchestrations {
        let filter = InstanceFilter {
            status: Some(vec![InstanceStatus::Running]),
            orchestration_name: Some(name.clone()),
            ..InstanceFilter::default()
        };
        for summary in client.list_instances(Some(filter)).await?.instances {
            if summary.orchestration_version.as_deref() == Some(version.as_str()) {
                running.push(summary.instance_id);
            }
        }
    }
    let bar = progress(running.len() as u64, quiet);
    let mut report = Vec::new();
    for id in running {
        bar.set_message(id.clone());
        let Some(info) = client.get_instance_info(&id).await? else {
            bar.inc(1);
            continue; // purged meanwhile
        };
        let history = client
            .get_execution_history(&id, Some(info.execution_id))
            .await?;
        let verdict = verify_replay(
            &component,
            &id,
            info.execution_id,
            history,
            SandboxLimits::default(),
        )
        .await;
        let divergence = match verdict {
            Ok(()) => None,
            Err(ReplayMismatch::Diverged { expected, actual }) => Some(format!(
                "history holds {expected}; the new code produced {actual}"
            )),
            Err(other) => Some(other.to_string()),
        };
        let mut moved = false;
        if let (None, Some(to), Some(from)) = (&divergence, upgrade_to, &info.component_digest)
            && from != to
        {
            moved = client.repin_instance(&id, from, to).await?;
        }
        report.push(Checked {
            instance: id,
            orchestration: info.orchestration_name,
            pinned: info.component_digest,
            divergence,
            moved,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(report)
}

/// A progress bar for `len` steps, hidden for scripts and short work.
pub fn progress(len: u64, quiet: bool) -> ProgressBar {
    if quiet || len < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Prints the check report; exit code 4 if any instance diverged.
fn print_report(report: &[Checked], deployed: Option<Value>, json_out: bool) -> Code {
    let diverged = report.iter().any(|c| c.divergence.is_some());
    if json_out {
        let rows: Vec<Value> = report
            .iter()
            .map(|c| {
                json!({
                    "instance": c.instance,
                    "orchestration": c.orchestration,
                    "pinned": c.pinned,
                    "clean": c.divergence.is_none(),
                    "divergence": c.divergence,
                    "moved": c.moved,
                })
            })
            .collect();
        let mut out = json!({ "instances": rows, "diverged": diverged });
        if let Some(deployed) = deployed {
            out["deployed"] = deployed;
        }
        print_json(&out);
    } else if report.is_empty() {
        println!("no running instance of its orchestrations");
    } else {
        let mut t = table(&["instance", "orchestration", "pinned to", "replay", "moved"]);
        for c in report {
            t.add_row(vec![
                c.instance.clone(),
                c.orchestration.clone(),
                c.pinned.as_deref().map(short).unwrap_or("-").to_owned(),
                c.divergence
                    .as_deref()
                    .map_or("clean".to_owned(), |d| format!("diverged: {d}")),
                if c.moved { "yes" } else { "no" }.to_owned(),
            ]);
        }
        println!("{t}");
    }
    if diverged { Code::Diverged } else { Code::Ok }
}

/// `duroxide components`.
pub async fn components(db: &str, json_out: bool) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    let list = client.list_components().await?;
    if json_out {
        let rows: Vec<Value> = list
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
            .collect();
        print_json(&Value::Array(rows));
        return Ok(Code::Ok);
    }
    if list.is_empty() {
        println!("nothing deployed: `duroxide deploy <file.wasm>`");
        return Ok(Code::Ok);
    }
    let mut t = table(&[
        "digest",
        "label",
        "size",
        "deployed",
        "orchestrations",
        "activities",
    ]);
    for c in &list {
        let orchestrations: Vec<String> = c
            .manifest
            .orchestrations
            .iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        t.add_row(vec![
            short(&c.digest).to_owned(),
            c.label.clone().unwrap_or_default(),
            c.size_bytes.to_string(),
            time(c.deployed_at_ms),
            orchestrations.join(", "),
            c.manifest.activities.join(", "),
        ]);
    }
    println!("{t}");
    Ok(Code::Ok)
}

/// `duroxide remove`.
pub async fn remove(db: &str, json_out: bool, digest: &str) -> anyhow::Result<Code> {
    let (client, _store) = store::client(db).await?;
    let digest = store::resolve_digest(&client, digest).await?;
    match client.remove_component(&digest).await {
        Ok(()) => {
            if json_out {
                print_json(&json!({ "removed": digest }));
            } else {
                println!("removed {digest}");
            }
            Ok(Code::Ok)
        }
        Err(ClientError::ComponentInUse { instances, .. }) => Err(fail(
            Code::Failure,
            format!(
                "component {} is in use by unfinished instances ({}): wait for them, cancel them, or move them with `deploy --upgrade`",
                short(&digest),
                instances.join(", ")
            ),
        )),
        Err(e) => Err(e.into()),
    }
}
