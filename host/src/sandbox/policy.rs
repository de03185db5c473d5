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
/// library needs to start. Orchestrations get them answered deterministically
/// (clocks, randomness, output) or empty (files, environment), and sockets
/// that reach nothing: a language runtime that links sockets (CPython does)
/// loads, and a connection or name lookup fails inside the guest.
const COMMON_IMPORTS: &[&str] = &[
    "duroxide:orchestration/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// Further interfaces an activity-only component may import: HTTP, which
/// reaches only the hosts granted to the component. A component that
/// provides orchestrations may not import it, as the orchestration sandbox
/// could not answer it.
const ACTIVITY_IMPORTS: &[&str] = &["wasi:http/"];

/// Whether a guest may import interface `name`; `provides_orchestrations`
/// is whether its component provides any orchestration.
fn import_allowed(name: &str, provides_orchestrations: bool) -> bool {
    COMMON_IMPORTS.iter().any(|p| name.starts_with(p))
        || (!provides_orchestrations && ACTIVITY_IMPORTS.iter().any(|p| name.starts_with(p)))
}

/// The first import of `component` that a guest of its kind may not have.
pub(crate) fn forbidden_import(
    engine: &Engine,
    component: &Component,
    provides_orchestrations: bool,
) -> Option<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .find(|name| !import_allowed(name, provides_orchestrations))
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

/// WASI for an orchestration: the turn clock, output to the replay-safe log,
/// sockets that reach nothing; no environment, arguments or directories. Its
/// randomness is answered apart, by `wasi_random`.
pub(crate) fn orchestration_wasi(clock: TurnClock, output: &OutputSink) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .wall_clock(clock.clone())
        .monotonic_clock(clock)
        .stdout(output.stream(Stream::Stdout))
        .stderr(output.stream(Stream::Stderr));
    deny_network(&mut builder);
    builder.build()
}

/// WASI for an activity: real clocks and randomness, output to the log, the
/// directories and environment variables of `grants` (validated when the
/// component was loaded); no arguments, and sockets that reach nothing
/// (outbound HTTP goes through `wasi:http`, see `http_grant`). A granted
/// directory that can no longer be opened fails the attempt rather than
/// running it without.
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
        .stderr(output.stream(Stream::Stderr));
    deny_network(&mut builder);
    builder
}

/// Sockets for every guest: none can be created, no address is permitted
/// (should one be), and no name resolves. Set here, not left to the
/// builder's defaults (which wasmtime-wasi 48 documents two ways), so no
/// change of those opens anything.
fn deny_network(builder: &mut WasiCtxBuilder) {
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
}

#[cfg(test)]
mod tests {
    use wasmtime::component::ResourceTable;
    use wasmtime_wasi::clocks::WasiClocksCtxView;
    use wasmtime_wasi::p2::bindings::clocks::{monotonic_clock, wall_clock};
    use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
    use wasmtime_wasi::p2::bindings::sockets::{
        instance_network, ip_name_lookup, tcp_create_socket, udp_create_socket,
    };
    use wasmtime_wasi::sockets::WasiSocketsCtxView;

    use super::*;
    use crate::sandbox::engine::shared_engine;

    #[test]
    fn orchestrations_may_not_import_http_nor_anyone_an_unknown_interface() {
        for (name, orchestration, activity) in [
            ("duroxide:orchestration/context@0.2.0", true, true),
            ("wasi:cli/environment@0.2.0", true, true),
            ("wasi:sockets/tcp@0.2.0", true, true),
            ("wasi:sockets/ip-name-lookup@0.2.9", true, true),
            ("wasi:http/outgoing-handler@0.2.0", false, true),
            ("wasi:http/types@0.2.0", false, true),
            ("wasi:keyvalue/store@0.2.0", false, false),
            ("acme:payments/charge", false, false),
            // A prefix is matched as a whole namespace and package.
            ("wasi:socketsx/tcp@0.2.0", false, false),
        ] {
            assert_eq!(import_allowed(name, true), orchestration, "{name}");
            assert_eq!(import_allowed(name, false), activity, "{name}");
        }
    }

    #[test]
    fn the_first_forbidden_import_is_named() -> Result<(), String> {
        let engine = shared_engine()?;
        let text = r#"(component
            (import "wasi:sockets/tcp@0.2.0" (instance))
            (import "wasi:http/types@0.2.0" (instance))
            (import "acme:payments/charge" (instance)))"#;
        let bytes = wat::parse_str(text).map_err(|e| e.to_string())?;
        let component = Component::new(&engine, bytes).map_err(|e| e.to_string())?;
        assert_eq!(
            forbidden_import(&engine, &component, true).as_deref(),
            Some("wasi:http/types@0.2.0")
        );
        assert_eq!(
            forbidden_import(&engine, &component, false).as_deref(),
            Some("acme:payments/charge")
        );
        Ok(())
    }

    /// What a guest's sockets reach in `ctx`: the errors of creating a TCP
    /// and a UDP socket and of resolving a name (`None` where it worked).
    async fn socket_errors(ctx: &mut WasiCtx) -> wasmtime::Result<[Option<ErrorCode>; 3]> {
        let mut table = ResourceTable::new();
        let mut view = WasiSocketsCtxView {
            ctx: ctx.sockets(),
            table: &mut table,
        };
        let code = |e: wasmtime_wasi::p2::SocketError| e.downcast().ok();
        let tcp = tcp_create_socket::Host::create_tcp_socket(&mut view, IpAddressFamily::Ipv4);
        let udp = udp_create_socket::Host::create_udp_socket(&mut view, IpAddressFamily::Ipv4);
        let udp = udp.await;
        let network = instance_network::Host::instance_network(&mut view)?;
        let lookup =
            ip_name_lookup::Host::resolve_addresses(&mut view, network, "localhost".into());
        Ok([
            tcp.err().and_then(code),
            udp.err().and_then(code),
            lookup.err().and_then(code),
        ])
    }

    #[tokio::test]
    async fn no_guest_socket_is_created_nor_name_resolved() -> wasmtime::Result<()> {
        let output = OutputSink::new("t", Default::default(), Default::default());
        let denied = [
            Some(ErrorCode::AccessDenied),
            Some(ErrorCode::AccessDenied),
            Some(ErrorCode::PermanentResolverFailure),
        ];
        let mut orchestration = orchestration_wasi(TurnClock::default(), &output);
        assert_eq!(socket_errors(&mut orchestration).await?, denied);
        let mut activity = activity_wasi(&output, &Grants::none()).map_err(wasmtime::Error::msg)?;
        assert_eq!(socket_errors(&mut activity).await?, denied);
        Ok(())
    }

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
