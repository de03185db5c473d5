//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Deploy WebAssembly workflows, run workers, and start, watch and manage
/// orchestrations, all through one store file.
#[derive(Debug, Parser)]
#[command(name = "duroxide", version, about)]
pub struct Cli {
    /// The store: a path, an `sqlite:` URL, or a `postgres://` URL (with
    /// the `postgres` feature).
    #[arg(
        long,
        global = true,
        env = "DUROXIDE_DB",
        default_value = "./duroxide.db"
    )]
    pub db: String,
    /// The tenant (namespace) whose components and instances the command
    /// sees: 1 to 63 characters of a-z, 0-9 and '-', not starting with '-'.
    /// `run` serves every tenant.
    #[arg(
        long,
        global = true,
        env = "DUROXIDE_TENANT",
        default_value = duroxide::Tenant::DEFAULT
    )]
    pub tenant: duroxide::Tenant,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy a component (.wasm) to the store; workers load it within a second.
    Deploy {
        /// The component file.
        file: PathBuf,
        /// A name for people, shown by `components`.
        #[arg(long)]
        label: Option<String>,
        /// The policy the component runs under: a TOML (`*.toml`) or JSON
        /// file of `ComponentPolicy` fields (see the README's "Policies and
        /// limits"); fields left out keep their defaults.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Replay every running instance of its orchestrations against it and
        /// report which replay cleanly; deploys nothing.
        #[arg(long, conflicts_with = "upgrade")]
        check: bool,
        /// Deploy, then move the running instances that replay cleanly onto it.
        #[arg(long)]
        upgrade: bool,
    },
    /// List the deployed components.
    Components,
    /// Remove a deployed component (refused while unfinished instances use it).
    Remove {
        /// Its digest, or a unique prefix of it.
        digest: String,
    },
    /// Run a worker executing every deployed component, until Ctrl-C or SIGTERM.
    Run {
        /// Serve Prometheus metrics at http://ADDR/metrics.
        #[arg(long)]
        metrics: Option<SocketAddr>,
    },
    /// Start an orchestration instance.
    Start {
        /// The orchestration.
        name: String,
        /// The instance id (a new one by default).
        #[arg(long)]
        id: Option<String>,
        /// The input text (JSON by convention).
        #[arg(long, default_value = "")]
        input: String,
        /// The orchestration version (the latest deployed by default).
        #[arg(long)]
        version: Option<String>,
        /// Start after this many milliseconds.
        #[arg(long)]
        delay: Option<u64>,
    },
    /// Raise an external event to an instance.
    Raise {
        /// The instance.
        id: String,
        /// The event name.
        event: String,
        /// The event data.
        #[arg(long, default_value = "")]
        data: String,
    },
    /// Cancel an instance.
    Cancel {
        /// The instance.
        id: String,
        /// Why.
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
    },
    /// Show an instance's status.
    Status {
        /// The instance.
        id: String,
    },
    /// Wait until an instance finishes and show its status.
    Wait {
        /// The instance.
        id: String,
        /// Give up after this many milliseconds.
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// List instances, newest first.
    List {
        /// Only instances in this state (pending, running, completed, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only instances of this orchestration.
        #[arg(long)]
        name: Option<String>,
        /// Only instances created in the last this many milliseconds.
        #[arg(long)]
        since: Option<u64>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show an instance in detail, with its executions and pending work.
    Show {
        /// The instance.
        id: String,
    },
    /// Print an instance's history.
    History {
        /// The instance.
        id: String,
        /// The execution (the current one by default).
        #[arg(long)]
        execution: Option<u64>,
    },
    /// Show counts by state and the health score.
    Health,
    /// Delete finished instances.
    Purge {
        /// Only instances that finished more than this many milliseconds ago (default: all finished).
        #[arg(long)]
        before: Option<u64>,
        /// Only instances of this orchestration.
        #[arg(long)]
        name: Option<String>,
        /// Only instances that ended this way (completed, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
    },
    /// Check offline that a component replays an instance's history.
    Replay {
        /// The instance.
        id: String,
        /// The component file to replay with.
        #[arg(long)]
        component: PathBuf,
    },
    /// Build a Python (app.py) or JavaScript (app.js) guest directory into
    /// a component, with the pinned build tools (installed on first use).
    Build {
        /// The guest's directory.
        dir: PathBuf,
        /// The component file to write (default: ./DIRNAME.wasm).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The duroxide sources whose SDK and WIT contract it builds with
        /// (default: those this binary was built from).
        #[arg(long)]
        duroxide: Option<PathBuf>,
        /// Where the build tools are installed (default: the sources'
        /// target/tools).
        #[arg(long)]
        tools: Option<PathBuf>,
    },
    /// Create a project: a guest crate and a host example that runs it.
    New {
        /// The project's name (lower-case letters, digits and '-').
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        path: Option<PathBuf>,
        /// The duroxide sources its path dependencies point at (default:
        /// those this binary was built from).
        #[arg(long)]
        duroxide: Option<PathBuf>,
    },
}
