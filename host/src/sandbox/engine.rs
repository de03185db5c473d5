//! The process-wide wasmtime engine, its epoch ticker and compile cache.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of CPU budgets.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Activity sandboxes the pooled engine holds at once.
const ACTIVITY_POOL: u32 = 256;

/// Bytes of each pooled table and stack reset in place on reuse.
const KEEP_RESIDENT: usize = 256 << 10;

/// Bytes of each pooled linear memory reset in place on reuse. Small: the
/// kernel reports every page a memory ever held as written, so the reset
/// rewrites this much on each reuse however little the guest touched, while
/// a short activity touches only a few pages.
const KEEP_MEMORY_RESIDENT: usize = 16 << 10;

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
static POOLED_ACTIVITY_ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The engine every runtime in this process shares, so a component is compiled
/// once per process (and once per machine, through the on-disk cache).
///
/// One deterministic configuration serves orchestrations and activities alike:
/// NaN canonicalization and deterministic relaxed SIMD cost activities little,
/// and a component that provides both is compiled only once.
pub(crate) fn shared_engine() -> Result<Engine, String> {
    ENGINE.get_or_init(|| build_engine(false)).clone()
}

/// The engine activities run on first: the shared engine's settings with a
/// pooling allocator, so an activity's sandbox reuses the memory, tables and
/// stack an earlier one had, instead of mapping and unmapping its own (which
/// cost most of a short activity's time). Its pool holds
/// [`ACTIVITY_POOL`] sandboxes; when it is full, activities run on the
/// shared engine. Parked orchestrations stay on the shared engine, whose
/// sandboxes are not bounded by a pool.
pub(crate) fn pooled_activity_engine() -> Result<Engine, String> {
    POOLED_ACTIVITY_ENGINE
        .get_or_init(|| build_engine(true))
        .clone()
}

fn build_engine(pooled: bool) -> Result<Engine, String> {
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
    if pooled {
        let mut pool = PoolingAllocationConfig::default();
        // A component holds several core instances (its modules and the
        // adapters), and each may have a memory and some tables.
        pool.total_component_instances(ACTIVITY_POOL)
            .total_core_instances(ACTIVITY_POOL * 8)
            .total_memories(ACTIVITY_POOL * 2)
            .total_tables(ACTIVITY_POOL * 4)
            .total_stacks(ACTIVITY_POOL)
            // Reset a returned sandbox's first pages by writing them rather
            // than asking the kernel, and return the rest to the kernel in
            // batches.
            .linear_memory_keep_resident(KEEP_MEMORY_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .async_stack_keep_resident(KEEP_RESIDENT)
            .decommit_batch_size(32);
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
