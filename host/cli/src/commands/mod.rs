//! One module per group of subcommands, and the dispatch.

mod build;
mod control;
mod deploy;
mod inspect;
mod new;
mod replay;
mod worker;

use crate::args::{Cli, Command};
use crate::exit::Code;

/// Runs the command `cli` names.
pub async fn run(cli: Cli) -> anyhow::Result<Code> {
    crate::store::set_tenant(cli.tenant);
    let (db, json) = (cli.db.as_str(), cli.json);
    match cli.command {
        Command::Deploy {
            file,
            label,
            policy,
            check,
            upgrade,
        } => {
            let what = deploy::What {
                file: &file,
                label: label.as_deref(),
                policy: policy.as_deref(),
            };
            deploy::deploy(db, json, what, check, upgrade).await
        }
        Command::Components => deploy::components(db, json).await,
        Command::Remove { digest } => deploy::remove(db, json, &digest).await,
        Command::Run { metrics } => worker::run(db, metrics).await,
        Command::Start {
            name,
            id,
            input,
            version,
            delay,
        } => control::start(db, json, &name, id, &input, version, delay).await,
        Command::Raise { id, event, data } => control::raise(db, json, &id, &event, &data).await,
        Command::Cancel { id, reason } => control::cancel(db, json, &id, &reason).await,
        Command::Status { id } => control::status(db, json, &id).await,
        Command::Wait { id, timeout } => control::wait(db, json, &id, timeout).await,
        Command::List {
            status,
            name,
            since,
            limit,
        } => inspect::list(db, json, status.as_deref(), name, since, limit).await,
        Command::Show { id } => inspect::show(db, json, &id).await,
        Command::History { id, execution } => inspect::history(db, json, &id, execution).await,
        Command::Health => inspect::health(db, json).await,
        Command::Purge {
            before,
            name,
            status,
        } => inspect::purge(db, json, before, name, status.as_deref()).await,
        Command::Replay { id, component } => replay::replay(db, json, &id, &component).await,
        Command::Build {
            dir,
            output,
            duroxide,
            tools,
        } => build::build(&dir, output, duroxide, tools),
        Command::New {
            name,
            path,
            duroxide,
        } => new::new(&name, path, duroxide),
    }
}
