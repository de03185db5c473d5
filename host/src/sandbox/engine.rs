//! The process-wide wasmtime engine, its epoch ticker and compile cache.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of CPU budgets.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Sandboxes the pooled engine holds at once, running activities and parked
/// orchestration executions together, unless `$DUROXIDE_SANDBOX_POOL` says
/// otherwise (0 turns the pool off).
const SANDBOX_POOL: u32 = 2048;

/// Bytes of each pooled table and stack reset in place on reuse.
const KEEP_RESIDENT: usize = 256 << 10;

/// Bytes of each pooled linear memory's written pages kept mapped and reset
/// in place (copied back from the component's memory image) on reuse, so
/// the next guest in the slot writes them without a page fault. A parked
/// Python execution holds about 1.4 MB of written pages; keeping 4 MiB
/// measured no faster, since a new execution's sandbox has the pages its
/// component writes populated anyway (see `prefault`). Where the kernel's
/// page scan finds the written pages (Linux 6.7 and later), only those are
/// reset; without it, the lowest pages are rewritten, touched or not, so
/// this would better stay small there.
const KEEP_MEMORY_RESIDENT: usize = 1 << 20;

/// Core instances one sandbox's component may hold, on average: a Rust
/// component holds a few (its module and the adapters), a Python one 38
/// (the interpreter's libraries, each a module, and their shims). The pool
/// only counts them, so a generous figure costs nothing.
const CORE_INSTANCES_PER_SANDBOX: u32 = 64;

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
static POOLED_ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The engine every runtime in this process shares, so a component is compiled
/// once per process (and once per machine, through the on-disk cache). Its
/// sandboxes are mapped on demand: it takes what the pooled engine has no
/// room for.
///
/// One deterministic configuration serves orchestrations and activities alike:
/// NaN canonicalization and deterministic relaxed SIMD cost activities little,
/// and a component that provides both is compiled only once per engine.
pub(crate) fn shared_engine() -> Result<Engine, String> {
    ENGINE.get_or_init(|| build_engine(None)).clone()
}

/// The engine guests run on first: the shared engine's settings with a
/// pooling allocator, so a new sandbox reuses the memory, tables and stack
/// an earlier one had, instead of mapping and unmapping its own (which cost
/// most of a short activity's time, and much of a short orchestration's).
/// Its pool holds [`SANDBOX_POOL`] sandboxes, an activity's for the length of
/// its call and an orchestration's while its execution is parked; when it is
/// full, guests run on the shared engine.
pub(crate) fn pooled_engine() -> Result<Engine, String> {
    POOLED_ENGINE
        .get_or_init(|| match pool_size()? {
            0 => Err("the sandbox pool is turned off".into()),
            size => build_engine(Some(size)),
        })
        .clone()
}

/// How many sandboxes of the pool are in use now (running activities and
/// parked executions); `None` while the pool is off or not yet built.
pub(crate) fn pooled_sandboxes_in_use() -> Option<u64> {
    let engine = POOLED_ENGINE.get()?.as_ref().ok()?;
    Some(engine.pooling_allocator_metrics()?.component_instances())
}

/// The pool's size: [`SANDBOX_POOL`], or `$DUROXIDE_SANDBOX_POOL`.
fn pool_size() -> Result<u32, String> {
    match std::env::var("DUROXIDE_SANDBOX_POOL") {
        Ok(size) => size
            .trim()
            .parse()
            .map_err(|_| format!("DUROXIDE_SANDBOX_POOL is not a number of sandboxes: {size:?}")),
        Err(_) => Ok(SANDBOX_POOL),
    }
}

/// An engine whose sandboxes come from a pool of `pool` if given, else are
/// mapped on demand.
fn build_engine(pool: Option<u32>) -> Result<Engine, String> {
    let mut config = Config::new();
    // Threads are not compiled into this wasmtime build, so guests have none.
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true);
    if let Some(cache) = compile_cache() {
        config.cache(Some(cache));
    }
    if let Some(size) = pool {
        let mut pool = PoolingAllocationConfig::default();
        // A component holds several core instances (its modules and the
        // adapters) with some tables, and usually one memory. Each memory
        // reserves about 4 GiB of address space (never used), so one per
        // sandbox; a component with more finds the pool full sooner.
        pool.total_component_instances(size)
            .total_core_instances(size.saturating_mul(CORE_INSTANCES_PER_SANDBOX))
            .total_memories(size)
            .total_tables(size.saturating_mul(4))
            .total_stacks(size)
            // Reset the pages a returned sandbox holds by writing them rather
            // than asking the kernel, and return the rest to the kernel in
            // batches. The kernel's page scan finds which pages those are
            // (Linux 6.7 and later); without it, the lowest pages are kept,
            // which a guest whose stack comes first never touches.
            .linear_memory_keep_resident(KEEP_MEMORY_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .async_stack_keep_resident(KEEP_RESIDENT)
            .decommit_batch_size(32)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    let engine = Engine::new(&config).map_err(|e| format!("cannot create wasmtime engine: {e}"))?;
    start_epoch_ticker(engine.clone());
    Ok(engine)
}

/// Compiled code cached on disk by content digest, under
/// `$DUROXIDE_CACHE_DIR` or the user's cache directory. Caching is an
/// optimisation: without a usable directory components are simply compiled.
fn compile_cache() -> Option<wasmtime::Cache> {
    let dir = std::env::var_os("DUROXIDE_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache"))
                })?;
            Some(base.join("duroxide").join("compiled"))
        })?;
    let mut cache_config = wasmtime::CacheConfig::new();
    cache_config.with_directory(dir);
    match wasmtime::Cache::new(cache_config) {
        Ok(cache) => Some(cache),
        Err(e) => {
            tracing::warn!("compile cache disabled: {e}");
            None
        }
    }
}

/// Advance the engine's epoch forever, so epoch deadlines measure time.
fn start_epoch_ticker(engine: Engine) {
    let spawned = std::thread::Builder::new()
        .name("duroxide-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the epoch thread; CPU budgets will not be enforced: {e}");
    }
}

/// The engine's deterministic settings, one test per rule, on core modules
/// run directly: what a guest computes must not depend on the machine.
#[cfg(test)]
mod determinism {
    use wasmtime::{Instance, Module, Store};

    use super::shared_engine;

    /// Runs the `run` export of the module `wat`, which returns an `i64`.
    fn run_i64(wat: &str) -> i64 {
        let engine = shared_engine().expect("engine");
        let bytes = wat::parse_str(wat).expect("valid text");
        let module = Module::new(&engine, bytes).expect("compiles");
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
        let run = instance
            .get_typed_func::<(), i64>(&mut store, "run")
            .expect("exports run");
        run.call(&mut store, ()).expect("runs")
    }

    #[test]
    fn arithmetic_on_nans_yields_the_canonical_nan() {
        // A NaN with a payload, through an arithmetic instruction: hardware
        // passes the payload on, so without canonicalisation the bits would
        // differ between machines (and from the canonical pattern).
        let bits = run_i64(
            r#"(module (func (export "run") (result i64)
                 (i64.reinterpret_f64
                   (f64.add (f64.const nan:0x4000000000001) (f64.const 1)))))"#,
        );
        assert_eq!(bits as u64, 0x7ff8_0000_0000_0000);
    }

    #[test]
    fn relaxed_simd_conversions_answer_the_same_everywhere() {
        // `relaxed_trunc` of a NaN is left to the hardware by the proposal
        // (x86 answers i32::MIN); deterministic mode answers 0, as the
        // saturating conversion does, on every machine.
        let lane = run_i64(
            r#"(module (func (export "run") (result i64)
                 (i64.extend_i32_s
                   (i32x4.extract_lane 0
                     (i32x4.relaxed_trunc_f32x4_s (v128.const f32x4 nan 0 0 0))))))"#,
        );
        assert_eq!(lane, 0);
    }

    #[test]
    fn modules_with_shared_memory_are_refused() {
        // No threads: a guest cannot run code whose interleaving would make
        // replay differ. Shared memory is what threads need first.
        let engine = shared_engine().expect("engine");
        let bytes = wat::parse_str(r#"(module (memory 1 1 shared))"#).expect("valid text");
        let refused = Module::new(&engine, bytes).expect_err("shared memory is refused");
        assert!(
            format!("{refused:#}").contains("threads"),
            "the refusal names the missing feature: {refused:#}"
        );
    }
}
