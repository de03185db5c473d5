//! What each kind of guest may import and the WASI context it gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

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

/// Further interfaces an activity-only component may import. Network access
/// is still denied unless granted to the component.
const ACTIVITY_IMPORTS: &[&str] = &["wasi:sockets/"];

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

/// WASI for an orchestration: the turn clock, randomness seeded from the
/// execution, output to the replay-safe log; no environment, arguments,
/// directories or network.
pub(crate) fn orchestration_wasi(clock: TurnClock, seed: u64, output: &OutputSink) -> WasiCtx {
    WasiCtx::builder()
        .wall_clock(clock.clone())
        .monotonic_clock(clock)
        .secure_random(StdRng::seed_from_u64(seed))
        .insecure_random(StdRng::seed_from_u64(seed.rotate_left(17)))
        .insecure_random_seed(u128::from(seed))
        .stdout(output.stream(Stream::Stdout))
        .stderr(output.stream(Stream::Stderr))
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .build()
}

/// WASI for an activity: real clocks and randomness, output to the log; no
/// environment, arguments, directories or network until granted.
pub(crate) fn activity_wasi(output: &OutputSink) -> WasiCtx {
    WasiCtx::builder()
        .stdout(output.stream(Stream::Stdout))
        .stderr(output.stream(Stream::Stderr))
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .build()
}
