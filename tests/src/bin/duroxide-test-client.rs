//! A client in its own OS process, for the cross-process tests: starts a
//! workload of instances, then raises their events.
//!
//! Usage: `duroxide-test-client <store-url> <workload.jsonl>`, where each
//! line of the workload is `{"id", "name", "input", "events": [[name,
//! data]...]}`. Works through the workload in a few concurrent shards,
//! each starting all of its instances and then raising their events in
//! order; prints `done <instances> <events>` and exits when all are in.

use std::sync::Arc;

use duroxide::Client;
use duroxide::providers;
use serde::Deserialize;

/// How many shards work at once.
const SHARDS: usize = 8;

/// One instance of the workload.
#[derive(Deserialize)]
struct Start {
    id: String,
    name: String,
    input: String,
    events: Vec<(String, String)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("missing store url"))?;
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("missing workload file"))?;
    let text = std::fs::read_to_string(&path)?;
    let workload = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<Start>, _>>()?;
    let client = Client::new(providers::open(&url).await?);
    let workload = Arc::new(workload);
    let mut shards = tokio::task::JoinSet::new();
    for shard in 0..SHARDS {
        let (client, workload) = (client.clone(), workload.clone());
        shards.spawn(async move {
            let mine = || workload.iter().skip(shard).step_by(SHARDS);
            for start in mine() {
                client
                    .start_orchestration(&start.id, &start.name, &start.input, None)
                    .await?;
            }
            let mut raised = 0;
            for start in mine() {
                for (name, data) in &start.events {
                    client.raise_event(&start.id, name, data).await?;
                    raised += 1;
                }
            }
            anyhow::Ok(raised)
        });
    }
    let mut events = 0;
    while let Some(raised) = shards.join_next().await {
        events += raised??;
    }
    println!("done {} {events}", workload.len());
    Ok(())
}
