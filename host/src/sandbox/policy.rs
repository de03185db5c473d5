//! What each kind of guest may import and the WASI context it gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

use super::grants::{DirMode, Grants};
use super::guest_output::{OutputSink, Stream};

/// Interfaces any guest may import: the contract, and the WASI a standard
/// library needs to start (answered deterministically for orchestrations).
const COMMON_IMPORTS: &[&str] = &[
    "duroxide:orchestration/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
];

/// Further interfaces an activity-only component may import. Sockets are
/// always denied; HTTP reaches only the hosts granted to the component.
const ACTIVITY_IMPORTS: &[&str] = &["wasi:sockets/", "wasi:http/"];

/// The first import of `component` that a guest of its kind may not have.
pub(crate) fn forbidden_import(
    engine: &Engine,
    component: &Component,
    provides_orchestrations: bool,
) -> Option<String> {
    let allowed = |name: &str| {
        COMMON_IMPORTS.iter().any(|p| name.starts_with(p))
            || (!provides_orchestrations && ACTIVITY_IMPORTS.iter().any(|p| name.starts_with(p)))
    };
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .find(|name| !allowed(name))
        .map(str::to_string)
}

/// The orchestration's notion of now, shared by the WASI clocks and the
/// context so both answer the same deterministic time.
#[derive(Clone, Default)]
pub(crate) struct TurnClock(Arc<AtomicU64>);

impl TurnClock {
    /// Set the time the guest sees, in ms since the Unix epoch.
    pub(crate) fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::Relaxed);
    }

    /// The time the guest sees, in ms since the Unix epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl HostWallClock for TurnClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms())
    }
}

impl HostMonotonicClock for TurnClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        self.now_ms().saturating_mul(1_000_000)
    }
}

/// WASI for an orchestration: the turn clock, output to the replay-safe log;
/// no environment, arguments, directories or network. Its randomness is
/// answered apart, by `wasi_random`.
pub(crate) fn orchestration_wasi(clock: TurnClock, output: &OutputSink) -> WasiCtx {
    WasiCtx::builder()
        .wall_clock(clock.clone())
        .monotonic_clock(clock)
        .stdout(output.stream(Stream::Stdout))
        .stderr(output.stream(Stream::Stderr))
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .build()
}

/// WASI for an activity: real clocks and randomness, output to the log, the
/// directories and environment variables of `grants` (validated when the
/// component was loaded); no arguments, and no sockets (outbound HTTP goes
/// through `wasi:http`, see `http_grant`). A granted directory that can no
/// longer be opened fails the attempt rather than running it without.
pub(crate) fn activity_wasi(output: &OutputSink, grants: &Grants) -> Result<WasiCtx, String> {
    let mut builder = ungranted(output);
    for dir in &grants.dirs {
        let perms = match dir.mode {
            DirMode::ReadOnly => FsPerms::ReadOnly,
            DirMode::ReadWrite => FsPerms::ReadWrite,
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| {
                format!(
                    "cannot open granted directory {}: {e:#}",
                    dir.host.display()
                )
            })?;
    }
    for var in &grants.env {
        let value = match &var.value {
            Some(value) => Some(value.clone()),
            None => std::env::var(&var.name).ok(),
        };
        if let Some(value) = value {
            builder.env(&var.name, &value);
        }
    }
    Ok(builder.build())
}

/// WASI for an activity with nothing granted (see `activity_wasi`).
pub(crate) fn ungranted(output: &OutputSink) -> WasiCtxBuilder {
    let mut builder = WasiCtx::builder();
    builder
        .stdout(output.stream(Stream::Stdout))
        .stderr(output.stream(Stream::Stderr))
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false);
    builder
}

#[cfg(test)]
mod tests {
    use wasmtime::component::ResourceTable;
    use wasmtime_wasi::clocks::WasiClocksCtxView;
    use wasmtime_wasi::p2::bindings::clocks::{monotonic_clock, wall_clock};

    use super::*;

    #[test]
    fn wasi_clocks_answer_the_turn_time() -> wasmtime::Result<()> {
        let clock = TurnClock::default();
        let output = OutputSink::new("t", Default::default(), Default::default());
        let mut ctx = orchestration_wasi(clock.clone(), &output);
        let mut table = ResourceTable::new();
        clock.set_ms(1_700_000_000_123);
        let mut view = WasiClocksCtxView {
            ctx: ctx.clocks(),
            table: &mut table,
        };
        let now = wall_clock::Host::now(&mut view)?;
        assert_eq!((now.seconds, now.nanoseconds), (1_700_000_000, 123_000_000));
        assert_eq!(
            monotonic_clock::Host::now(&mut view)?,
            1_700_000_000_123_000_000
        );
        // The next turn moves both.
        clock.set_ms(1_700_000_005_000);
        assert_eq!(wall_clock::Host::now(&mut view)?.seconds, 1_700_000_005);
        assert_eq!(
            monotonic_clock::Host::now(&mut view)?,
            1_700_000_005_000_000_000
        );
        Ok(())
    }
}
