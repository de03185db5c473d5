//! The scale-out workloads, `hello_seq5_pg` and `fan_out_1000_pg`: the
//! `hello_seq5` and `fan_out_1000` workloads run by 1, 2, 4... runtimes, each
//! a separate OS process (this benchmark run again with [`WORKER_FLAG`]),
//! on one fresh schema of one PostgreSQL server (`DUROXIDE_TEST_PG`, default
//! `postgres://root@127.0.0.1:5432/test`; the schema is dropped afterwards).
//! This process is the client: it starts the instances and measures. Each
//! line also carries the SQLite figure of the same workload, one process,
//! measured right after it, so the two compare on the same machine state.

#[cfg(feature = "postgres")]
mod fleet;
#[cfg(feature = "postgres")]
mod server;
#[cfg(feature = "postgres")]
pub mod worker;

use std::path::Path;

/// The argument that makes this benchmark a runtime process of the fleet.
#[cfg(feature = "postgres")]
pub const WORKER_FLAG: &str = "__scale_out_worker";

/// The workloads of this module.
pub const WORKLOADS: [&str; 2] = ["hello_seq5_pg", "fan_out_1000_pg"];

/// What to run: how many runtime processes in turn, and how big a load.
#[cfg_attr(
    not(feature = "postgres"),
    expect(dead_code, reason = "read only by the PostgreSQL runs")
)]
pub struct Plan {
    /// One line per count, in this order.
    pub processes: Vec<usize>,
    /// Instances of `hello_seq5_pg`.
    pub instances: usize,
    /// Activities of `fan_out_1000_pg`.
    pub fan_out: usize,
    /// Connections of each process's pool, the client's included
    /// (`--pool N`; the store's default when absent).
    pub pool: Option<u32>,
}

/// Runs `workload` (one of [`WORKLOADS`]) with `plan`, or says why it
/// cannot run here.
pub async fn run(wasm: &Path, workload: &str, plan: &Plan) -> anyhow::Result<()> {
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (wasm, plan);
        println!(
            "workload={workload} not_run=\"this build has no PostgreSQL store: \
             cargo bench -p duroxide --features postgres --bench workloads -- {workload}\""
        );
        Ok(())
    }
    #[cfg(feature = "postgres")]
    {
        let url = server::url();
        if let Err(reason) = server::reachable(&url).await {
            println!("workload={workload} not_run=\"{reason}\"");
            return Ok(());
        }
        for &processes in &plan.processes {
            match workload {
                "hello_seq5_pg" => hello_seq5(wasm, &url, processes, plan).await?,
                _ => fan_out(wasm, &url, processes, plan).await?,
            }
        }
        Ok(())
    }
}

/// `instances` sequences of 5 activities on `processes` runtimes, then on
/// one runtime and SQLite.
#[cfg(feature = "postgres")]
async fn hello_seq5(wasm: &Path, url: &str, processes: usize, plan: &Plan) -> anyhow::Result<()> {
    let instances = plan.instances;
    let ids: Vec<String> = (0..instances).map(|i| format!("seq5-{i}")).collect();
    let (pg, load) = {
        let schema = server::Schema::create(url, plan.pool).await?;
        let client = schema.client();
        let fleet = fleet::Fleet::start(processes, url, &schema.name, wasm, plan.pool)?;
        let load = server::Load::start(url).await?;
        let started = duroxide::clock::system_now_ms();
        super::start_all(&client, &ids, "Sequence", "5").await?;
        let done = super::wait_all(&client, &ids).await?;
        fleet.stop().await?;
        schema.close_client().await;
        let load = load.finish(url, "orch", instances).await?;
        schema.drop_now().await?;
        (super::Throughput::of(started, &done), load)
    };
    let sqlite = super::measure_hello_seq5(wasm, instances).await?;
    println!(
        "workload=hello_seq5_pg processes={processes} instances={instances} completed={} \
         orch_per_s={:.0} p50_ms={} p99_ms={} {load} sqlite_orch_per_s={:.0} sqlite_p99_ms={} \
         loadavg={}",
        pg.completed,
        pg.orch_per_s,
        pg.p50_ms,
        pg.p99_ms,
        sqlite.orch_per_s,
        sqlite.p99_ms,
        server::loadavg()
    );
    Ok(())
}

/// One orchestration joining `n` activities on `processes` runtimes, then
/// on one runtime and SQLite.
#[cfg(feature = "postgres")]
async fn fan_out(wasm: &Path, url: &str, processes: usize, plan: &Plan) -> anyhow::Result<()> {
    let n = plan.fan_out;
    let id = format!("fan-out-{n}");
    let (ms, load) = {
        let schema = server::Schema::create(url, plan.pool).await?;
        let client = schema.client();
        let fleet = fleet::Fleet::start(processes, url, &schema.name, wasm, plan.pool)?;
        let load = server::Load::start(url).await?;
        client
            .start_orchestration(&id, "FanOut", &n.to_string(), None)
            .await?;
        let done = super::wait_all(&client, std::slice::from_ref(&id)).await?;
        let (created, updated, ok) = done[0];
        if !ok {
            anyhow::bail!(
                "{id} did not complete: {:?}",
                client.get_orchestration_status(&id).await?
            );
        }
        fleet.stop().await?;
        schema.close_client().await;
        let load = load.finish(url, "activity", n).await?;
        schema.drop_now().await?;
        (updated.saturating_sub(created), load)
    };
    let sqlite_ms = super::run_one(wasm, "FanOut", &n.to_string()).await?;
    let per_s = |ms: u64| n as f64 * 1000.0 / ms.max(1) as f64;
    println!(
        "workload=fan_out_{n}_pg processes={processes} activities={n} total_ms={ms} \
         activities_per_s={:.0} {load} sqlite_total_ms={sqlite_ms} sqlite_activities_per_s={:.0} \
         loadavg={}",
        per_s(ms),
        per_s(sqlite_ms),
        server::loadavg()
    );
    Ok(())
}
