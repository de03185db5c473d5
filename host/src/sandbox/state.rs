//! What a guest's wasmtime store holds, and the linkers that give guests
//! their imports.

use std::sync::{Arc, OnceLock};

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::MAX_TABLE_ELEMENTS;
use super::activity_call::ActivityCall;
use super::bindings::Workflows;
use super::cpu::CpuMeter;
use super::fault::GuestFault;
use super::guest_output::OutputSink;
use super::http_grant::GrantedHttp;
use super::memory_budget::{MemoryBudget, SandboxMemory};
use super::orchestration_host::OrchestrationHost;
use super::wasi_random::{DeterministicRandom, RandomView, SeededRandom};

/// Caps a guest's memory, and reserves it from its component's budget;
/// growing past either traps with a typed fault. What it reserved (less
/// what a parked execution lent back) is given back when the sandbox is
/// freed (its store dropped).
pub(crate) struct GuestLimiter {
    pub(crate) max_memory_bytes: usize,
    /// The guest's linear memory, read by the execution cache.
    pub(crate) memory: Arc<SandboxMemory>,
    /// The budget of the guest's component, shared by all its sandboxes.
    pub(crate) budget: Option<Arc<MemoryBudget>>,
    /// What this guest reserved from `budget`.
    reserved: usize,
}

impl GuestLimiter {
    /// A limiter capping a guest at `max_memory_bytes`, within `budget`.
    pub(crate) fn new(max_memory_bytes: usize, budget: Option<Arc<MemoryBudget>>) -> Self {
        Self {
            max_memory_bytes,
            memory: Arc::default(),
            budget,
            reserved: 0,
        }
    }
}

impl GuestLimiter {
    /// Gives back all it reserved: its sandbox's memory is gone.
    pub(crate) fn release(&mut self) {
        let counted = self.memory.take_counted(self.reserved);
        if let Some(budget) = &self.budget {
            budget.release(counted);
        }
        self.reserved = 0;
        self.memory.set_declared(0);
    }
}

impl GuestLimiter {
    /// Its sandbox goes idle between activity calls: all it reserved goes
    /// back to the budget until [`wake`](Self::wake).
    pub(crate) fn idle(&mut self) {
        if let Some(budget) = &self.budget {
            self.memory.park(budget, 0);
        }
    }

    /// Its idle sandbox serves again: takes back what it gave the budget,
    /// or fails naming the budget (and stays idle) if there is no room.
    pub(crate) fn wake(&mut self) -> Result<(), GuestFault> {
        match &self.budget {
            Some(budget) => self.memory.resume_within(budget),
            None => Ok(()),
        }
    }
}

impl Drop for GuestLimiter {
    fn drop(&mut self) {
        self.release();
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            return Err(GuestFault::MemoryLimit {
                desired,
                limit: self.max_memory_bytes,
            }
            .into());
        }
        let grown = desired.saturating_sub(current);
        if let Some(budget) = &self.budget {
            budget.reserve(grown, self.reserved)?;
        }
        self.reserved += grown;
        self.memory.set_declared(self.reserved);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of one guest store: WASI state, limits, and for orchestrations
/// the host behind the `context` imports.
pub(crate) struct GuestState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: GuestLimiter,
    pub(crate) output: OutputSink,
    /// The CPU the current turn or call has used of its budget.
    pub(crate) cpu: CpuMeter,
    /// Present for orchestration instances; activities have no context.
    pub(crate) orchestration: Option<Box<dyn OrchestrationHost>>,
    /// Present for activity attempts: the call they serve.
    pub(crate) activity: Option<ActivityCall>,
    /// An orchestration's `wasi:random`; activities use WASI's own.
    pub(crate) random: Option<SeededRandom>,
    /// An activity's `wasi:http` state (orchestrations are not linked to it).
    pub(crate) http: WasiHttpCtx,
    /// Which outbound requests an activity may make: none unless granted.
    pub(crate) http_grant: GrantedHttp,
}

impl wasmtime_wasi_io::IoView for GuestState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_grant,
        }
    }
}

/// Linkers for the two kinds of guest instance.
pub(crate) struct Linkers {
    /// Orchestrations: deterministic WASI, sockets that reach nothing, plus
    /// the context.
    pub(crate) orchestration: Linker<GuestState>,
    /// Activities: WASI and `wasi:http` (reaching only what the component
    /// was granted), plus a context whose calls trap.
    pub(crate) activity: Linker<GuestState>,
}

static LINKERS: OnceLock<Result<Linkers, String>> = OnceLock::new();
static POOLED_LINKERS: OnceLock<Result<Linkers, String>> = OnceLock::new();

/// The linkers for the shared engine, built once per process.
pub(crate) fn linkers(engine: &Engine) -> Result<&'static Linkers, String> {
    linkers_in(&LINKERS, engine)
}

/// The linkers for the pooled engine, built once per process.
pub(crate) fn pooled_linkers(engine: &Engine) -> Result<&'static Linkers, String> {
    linkers_in(&POOLED_LINKERS, engine)
}

fn linkers_in(
    cell: &'static OnceLock<Result<Linkers, String>>,
    engine: &Engine,
) -> Result<&'static Linkers, String> {
    cell.get_or_init(|| build_linkers(engine).map_err(|e| format!("cannot build linkers: {e}")))
        .as_ref()
        .map_err(Clone::clone)
}

fn build_linkers(engine: &Engine) -> wasmtime::Result<Linkers> {
    let mut orchestration = Linker::new(engine);
    add_deterministic_wasi(&mut orchestration)?;
    Workflows::add_to_linker::<_, HasSelf<_>>(&mut orchestration, |s| s)?;
    let mut activity = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut activity)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut activity)?;
    Workflows::add_to_linker::<_, HasSelf<_>>(&mut activity, |s| s)?;
    Ok(Linkers {
        orchestration,
        activity,
    })
}

/// WASI for orchestrations: everything a Rust, Python (or other) standard
/// library needs to start, answered by the deterministic context built in
/// `policy` and the seeded randomness of `wasi:random`, and sockets that
/// context denies every use of.
fn add_deterministic_wasi(l: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{LinkOptions, cli, clocks, filesystem, random, sockets};
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

    wasmtime_wasi_io::add_to_linker_async(l)?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, |s| s.clocks())?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, |s| s.clocks())?;
    filesystem::types::add_to_linker::<_, WasiFilesystem>(l, |s| s.filesystem())?;
    filesystem::preopens::add_to_linker::<_, WasiFilesystem>(l, |s| s.filesystem())?;
    random::random::add_to_linker::<_, DeterministicRandom>(l, seeded_random)?;
    random::insecure::add_to_linker::<_, DeterministicRandom>(l, seeded_random)?;
    random::insecure_seed::add_to_linker::<_, DeterministicRandom>(l, seeded_random)?;
    cli::exit::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::environment::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    let network = (&LinkOptions::default()).into();
    sockets::network::add_to_linker::<_, WasiSockets>(l, &network, |s| s.sockets())?;
    sockets::instance_network::add_to_linker::<_, WasiSockets>(l, |s| s.sockets())?;
    sockets::ip_name_lookup::add_to_linker::<_, WasiSockets>(l, |s| s.sockets())?;
    sockets::tcp_create_socket::add_to_linker::<_, WasiSockets>(l, |s| s.sockets())?;
    sockets::tcp::add_to_linker::<_, WasiSockets>(l, |s| s.sockets())?;
    sockets::udp_create_socket::add_to_linker::<_, WasiSockets>(l, |s| s.sockets())?;
    sockets::udp::add_to_linker::<_, WasiSockets>(l, |s| s.sockets())?;
    Ok(())
}

/// An orchestration's `wasi:random`, seeded from its execution.
fn seeded_random(state: &mut GuestState) -> RandomView<'_> {
    RandomView(state.random.as_mut())
}
