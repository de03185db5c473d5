//! Test guest: orchestrations that race an activity against a timer or wait
//! on one, call one and report how it ended, look for files and environment
//! variables and open sockets themselves; and an activity that reads a
//! file, so a component with both kinds shows what each of its sandboxes
//! got.

use std::time::Duration;

use duroxide_guest::{Either, OrchestrationContext, Registry, select2};

/// Races activity "name" against a timer of "ms", then runs `Echo`:
/// "winner, then echo".
async fn race(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let (name, ms) = input.split_once('|').ok_or("expected name|ms")?;
    let ms: u64 = ms.parse().map_err(|e| format!("bad ms: {e}"))?;
    let activity = ctx.schedule_activity(name, "");
    let timer = ctx.schedule_timer(Duration::from_millis(ms));
    let winner = match select2(activity, timer).await {
        Either::Left(result) => format!("{name}: {result:?}"),
        Either::Right(()) => "timer".to_string(),
    };
    let after = ctx.schedule_activity("Echo", "after").await?;
    Ok(format!("{winner}, then {after}"))
}

/// Waits for activity `input`.
async fn wait_for(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_activity(&input, "").await
}

/// Calls activity "name|input" and reports how it ended, without failing.
async fn call(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let (name, input) = input.split_once('|').unwrap_or((&input, ""));
    match ctx.schedule_activity(name, input).await {
        Ok(output) => Ok(format!("ok: {output}")),
        Err(error) => Ok(format!("err: {error}")),
    }
}

/// Looks for the file at path "file" and the variable "var" itself, given
/// "file|var": what an orchestration sandbox sees.
async fn probe(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let (file, var) = input.split_once('|').ok_or("expected file|var")?;
    let file = std::fs::read_to_string(file).map_err(|e| e.kind().to_string());
    let var = std::env::var(var).map_err(|e| e.to_string());
    let vars = std::env::vars().count();
    Ok(format!("file: {file:?}; var: {var:?}; vars: {vars}"))
}

/// Tries to resolve `localhost` and to connect a TCP socket to `input`
/// (`ip:port`) itself: what an orchestration sandbox's sockets reach.
async fn connect(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let lookup = ("localhost", 80).to_socket_addrs().map(|a| a.count());
    let lookup = lookup.map_err(|e| e.kind().to_string());
    let connect = std::net::TcpStream::connect(&input).map(|_| "connected");
    let connect = connect.map_err(|e| e.kind().to_string());
    Ok(format!("lookup: {lookup:?}; connect: {connect:?}"))
}

/// Reads the file at path `input`.
fn read_file_here(input: String) -> Result<String, String> {
    std::fs::read_to_string(&input).map_err(|e| format!("cannot read {input}: {e}"))
}

fn echo(input: String) -> Result<String, String> {
    Ok(input)
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("Race", race)
        .orchestration("WaitFor", wait_for)
        .orchestration("Call", call)
        .orchestration("Probe", probe)
        .orchestration("Connect", connect)
        .activity("ReadFileHere", read_file_here)
        .activity("Echo", echo);
}

duroxide_guest::component!(register);
