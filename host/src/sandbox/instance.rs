//! Creating guest stores and calling into guests.

use std::sync::Arc;

use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::{ComponentNamedList, ComponentType, Instance, InstancePre, Lower};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{ResourceTable, WasiCtx};
use wasmtime_wasi_http::WasiHttpCtx;

use super::SandboxLimits;
use super::activity_call::ActivityCall;
use super::bindings::orchestrator;
use super::cpu::CpuMeter;
use super::failure::describe_failure;
use super::fault::GuestFault;
use super::grants::{Grants, HttpGrant};
use super::guest_output::OutputSink;
use super::http_grant::GrantedHttp;
use super::loader::LoadedComponent;
use super::memory_budget::{MemoryBudget, SandboxMemory};
use super::orchestration_host::OrchestrationHost;
use super::policy::{activity_wasi, orchestration_wasi, ungranted};
use super::reaper;
use super::state::{GuestLimiter, GuestState};
use super::warm::{CallEnd, WarmActivities, WarmSandbox};

/// A store for one activity call (or a manifest read).
pub(crate) fn activity_store(
    engine: &Engine,
    label: &str,
    limits: &SandboxLimits,
) -> Store<GuestState> {
    let output = OutputSink::new(label, Default::default(), limits.text_limits());
    let wasi = ungranted(&output).build();
    configured(
        engine,
        activity_state(output, wasi, None, None, limits, None),
    )
}

/// The state of one activity call's sandbox (`call`, absent for a manifest
/// read), writing to `output`, reaching what `wasi` and `http` grant, its
/// memory reserved from `budget`.
fn activity_state(
    output: OutputSink,
    wasi: WasiCtx,
    http: Option<&HttpGrant>,
    call: Option<ActivityCall>,
    limits: &SandboxLimits,
    budget: Option<Arc<MemoryBudget>>,
) -> GuestState {
    GuestState {
        wasi,
        table: ResourceTable::new(),
        limiter: GuestLimiter::new(limits.max_memory_bytes, budget),
        output,
        cpu: CpuMeter::new(limits.activity_cpu_budget, "activity_cpu_budget"),
        orchestration: None,
        activity: call,
        random: None,
        http: WasiHttpCtx::new(),
        http_grant: GrantedHttp::new(http),
    }
}

/// The state of one orchestration execution's sandbox, its context served
/// by `host`, its memory reserved from `budget`.
pub(crate) fn orchestration_state(
    host: Box<dyn OrchestrationHost>,
    limits: &SandboxLimits,
    budget: Option<Arc<MemoryBudget>>,
) -> GuestState {
    let output = OutputSink::new(
        host.instance_id(),
        host.replaying_flag(),
        limits.text_limits(),
    );
    GuestState {
        wasi: orchestration_wasi(host.clock(), &output),
        table: ResourceTable::new(),
        limiter: GuestLimiter::new(limits.max_memory_bytes, budget),
        output,
        cpu: CpuMeter::new(
            limits.orchestration_turn_budget,
            "orchestration_turn_budget",
        ),
        random: Some(host.wasi_random()),
        orchestration: Some(host),
        activity: None,
        // Orchestrations are not linked to `wasi:http`; nothing is granted.
        http: WasiHttpCtx::new(),
        http_grant: GrantedHttp::default(),
    }
}

/// The sandbox of an orchestration execution that ended. Freeing it costs
/// more than a cached turn, so the dispatcher frees it after the turn
/// commits.
pub(crate) struct SpentSandbox(Store<GuestState>);

impl SpentSandbox {
    /// Frees the sandbox, on the reaper's thread.
    pub(crate) fn free(self) {
        reaper::free(self.0);
    }
}

/// Run orchestration `name` at `version` of `component` on `input` in a
/// fresh sandbox holding `state`, from its beginning to its end: between
/// turns it stays parked inside `wait`. How the call ended (output, error,
/// fault or continue-as-new) is reported to the state's host, and the last
/// turn handed to it. `None` if the call ended without a host to report to,
/// or lost its link to it.
pub(crate) async fn run_orchestration(
    component: &LoadedComponent,
    state: GuestState,
    name: &str,
    version: &str,
    input: &str,
) -> Option<SpentSandbox> {
    let shared = component.shared.orchestrator.as_ref()?;
    (state.limiter.memory).writes_like(component.orchestration_writes.clone());
    let (mut store, instantiated) = orchestration_sandbox(component, shared, state).await;
    let result = match instantiated {
        Ok((instance, indices)) => {
            call_orchestration(&mut store, &instance, indices, name, version, input).await
        }
        Err(error) => Err(error),
    };
    let state = store.data_mut();
    let reason = match &result {
        Err(error) => match error.downcast_ref::<GuestFault>() {
            Some(GuestFault::Unlinked) => return None,
            Some(fault) if fault.waits_for_room() => {
                // Replay has no side effects: the turn runs again later.
                state
                    .orchestration
                    .as_deref_mut()?
                    .give_back(fault.to_string());
                return None;
            }
            // The execution ended by continuing as new: nothing failed.
            Some(GuestFault::ContinuedAsNew) => None,
            _ => Some(describe_failure(error, &state.output)),
        },
        Ok(_) => None,
    };
    let host = state.orchestration.as_deref_mut()?;
    let ended = match (result, reason) {
        (Ok(Ok(output)), _) => host.complete(output),
        (Ok(Err(error)), _) => host.fail(error, true),
        (Err(_), Some(reason)) => host.fail(reason, false),
        (Err(_), None) => Ok(()),
    };
    if let Err(fault) = ended {
        // Ending diverged from history, or the output or error was too large.
        let _ = host.fail(fault.to_string(), false);
    }
    host.end_turn().ok()?;
    state.limiter.memory.teach();
    Some(SpentSandbox(store))
}

/// A fresh sandbox holding `state`, with the orchestrations of `component`
/// instantiated in it (`shared` is the component on the shared engine). The
/// store comes back even if instantiating failed, for the failure's report.
async fn orchestration_sandbox<'a>(
    component: &'a LoadedComponent,
    shared: &'a (InstancePre<GuestState>, orchestrator::GuestIndices),
    state: GuestState,
) -> (
    Store<GuestState>,
    wasmtime::Result<(Instance, &'a orchestrator::GuestIndices)>,
) {
    let pooled = component
        .pooled
        .as_ref()
        .and_then(|p| p.orchestrator.as_ref());
    sandbox(pooled, shared, state).await
}

/// A fresh sandbox holding `state` with a component instantiated in it: one
/// from the pool (`pooled`) when it has room, else a newly mapped one
/// (`shared`). Only instantiation falls back (a full pool, say): the guest
/// has not run yet, so running it on the other engine runs it once. The
/// store comes back even if instantiating failed, for the failure's report.
async fn sandbox<'a, I>(
    pooled: Option<&'a (InstancePre<GuestState>, I)>,
    shared: &'a (InstancePre<GuestState>, I),
    mut state: GuestState,
) -> (Store<GuestState>, wasmtime::Result<(Instance, &'a I)>) {
    if let Some((pre, indices)) = pooled {
        let mut store = configured(pre.engine(), state);
        match pre.instantiate_async(&mut store).await {
            Ok(instance) => return (store, Ok((instance, indices))),
            Err(e) => tracing::debug!("no pooled sandbox, mapping one: {e:#}"),
        }
        state = store.into_data();
    }
    let (pre, indices) = shared;
    let mut store = configured(pre.engine(), state);
    let instance = pre.instantiate_async(&mut store).await;
    (store, instance.map(|instance| (instance, indices)))
}

fn configured(engine: &Engine, state: GuestState) -> Store<GuestState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    // Every epoch tick while the guest runs Wasm: charge its CPU budget,
    // and yield to other tasks while within it.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        if cancelled(ctx.data()) {
            return Err(GuestFault::Cancelled.into());
        }
        let cpu = &mut ctx.data_mut().cpu;
        cpu.charge(std::time::Instant::now())?;
        Ok(UpdateDeadline::YieldCustom(1, cpu.yield_now()))
    });
    store
}

/// Whether the store serves an activity call whose result is no longer
/// wanted: its guest is stopped at the next epoch tick.
fn cancelled(state: &GuestState) -> bool {
    state
        .activity
        .as_ref()
        .is_some_and(|call| call.cancelled.is_cancelled())
}

/// Run an orchestration from its beginning in `instance`. The call returns when
/// the orchestration ends; between turns it stays parked inside `wait`.
/// Its input is handed over through [`MainMemoryProbe`], so the sandbox
/// learns where its main memory lies and can measure what it holds.
async fn call_orchestration(
    store: &mut Store<GuestState>,
    instance: &Instance,
    indices: &orchestrator::GuestIndices,
    name: &str,
    version: &str,
    input: &str,
) -> wasmtime::Result<Result<String, String>> {
    // Typechecks the export as the bindings do.
    indices.load(&mut *store, instance)?;
    let memory = store.data().limiter.memory.clone();
    let input = MainMemoryProbe {
        text: input,
        memory: &memory,
    };
    call_run(store, instance, ORCHESTRATOR, (name, version, input)).await
}

/// The first call of a fresh activity sandbox `instance`: like the
/// bindings' call, with its input handed over through [`MainMemoryProbe`],
/// so that the sandbox's main memory is found (and its component's learned
/// pages written in) before the guest's code runs.
async fn first_activity_call(
    store: &mut Store<GuestState>,
    instance: &Instance,
    name: &str,
    input: &str,
) -> wasmtime::Result<Result<String, String>> {
    let memory = store.data().limiter.memory.clone();
    let input = MainMemoryProbe {
        text: input,
        memory: &memory,
    };
    call_run(store, instance, ACTIVITIES, (name, input)).await
}

/// Calls `run` of the `interface` that `instance` exports (under the
/// contract's version, which the bindings have checked) with `params`.
async fn call_run<P>(
    store: &mut Store<GuestState>,
    instance: &Instance,
    interface: &str,
    params: P,
) -> wasmtime::Result<Result<String, String>>
where
    P: ComponentNamedList + Lower + Send + Sync,
{
    let exported = exported_as(store, instance, interface)
        .ok_or_else(|| wasmtime::format_err!("the component exports no {interface}"))?;
    let run = instance
        .get_export_index(&mut *store, None, &exported)
        .and_then(|exported| instance.get_export_index(&mut *store, Some(&exported), "run"))
        .ok_or_else(|| wasmtime::format_err!("the component exports no {exported}.run"))?;
    let run = instance.get_typed_func::<P, (Result<String, String>,)>(&mut *store, &run)?;
    let (result,) = run.call_async(&mut *store, params).await?;
    Ok(result)
}

/// The orchestrator interface, as exported without its version.
const ORCHESTRATOR: &str = "duroxide:orchestration/orchestrator";

/// The activities interface, as exported without its version.
const ACTIVITIES: &str = "duroxide:orchestration/activities";

/// The name `instance` exports `interface` under (with the contract's
/// version).
fn exported_as(store: &Store<GuestState>, instance: &Instance, interface: &str) -> Option<String> {
    let component = instance.instance_pre(store).component().clone();
    let exports = component.component_type();
    exports
        .exports(store.engine())
        .map(|(name, _)| name)
        .find(|name| name.split('@').next() == Some(interface))
        .map(str::to_string)
}

/// A string argument that, as it is copied into the guest, records where
/// the guest's main memory lies (the one its calls use) in `memory`.
/// wasmtime hands the host no other view of a component's memory.
struct MainMemoryProbe<'a> {
    text: &'a str,
    memory: &'a SandboxMemory,
}

impl MainMemoryProbe<'_> {
    fn record<U>(&self, cx: &mut LowerContext<'_, U>) {
        let main = cx.as_slice_mut();
        self.memory.found_main(main.as_ptr() as usize, main.len());
    }
}

// SAFETY: the probe is a `string` in the canonical ABI: its type, layout
// and typecheck are `str`'s.
#[allow(unsafe_code)]
unsafe impl ComponentType for MainMemoryProbe<'_> {
    type Lower = <str as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <str as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <str as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: lowered exactly as the `str` it holds; recording only reads the
// memory's address and length.
#[allow(unsafe_code)]
unsafe impl Lower for MainMemoryProbe<'_> {
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        dst: &mut std::mem::MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        self.text.linear_lower_to_flat(cx, ty, dst)?;
        self.record(cx);
        Ok(())
    }

    fn linear_lower_to_memory<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        self.text.linear_lower_to_memory(cx, ty, offset)?;
        self.record(cx);
        Ok(())
    }
}

/// Run one activity attempt for `tenant`: in a warm sandbox of the
/// component's `warm` ones if one is idle, else in a fresh one (from the
/// pool when it has room, else newly mapped), its memory reserved from
/// `budget`, reaching what `grants` allow. The sandbox is kept warm after
/// the call if [`may_serve_again`](super::warm::may_serve_again) says so.
/// `Err` is the failure reason handed to the orchestration.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn call_activity(
    component: &LoadedComponent,
    warm: &WarmActivities,
    tenant: &str,
    call: ActivityCall,
    input: &str,
    limits: &SandboxLimits,
    budget: Option<Arc<MemoryBudget>>,
    grants: &Grants,
) -> Result<String, String> {
    let name = call.info.name.clone();
    let (mut sandbox, fresh) = match warm.take(tenant) {
        Some(mut sandbox) => {
            begin_call(&mut sandbox.store, call, &name, limits);
            (sandbox, None)
        }
        None => {
            let (sandbox, instance) =
                fresh_activity(component, call, limits, budget, grants).await?;
            (sandbox, Some(instance))
        }
    };
    sandbox.calls += 1;
    let called = match fresh {
        Some(instance) => first_activity_call(&mut sandbox.store, &instance, &name, input).await,
        None => {
            (sandbox.guest)
                .call_run(&mut sandbox.store, &name, input)
                .await
        }
    };
    let (result, end) = match called {
        Ok(result) => {
            sandbox.store.data().limiter.memory.teach();
            (result, CallEnd::Returned)
        }
        Err(error) => {
            let reason = describe_failure(&error, &sandbox.store.data().output);
            (Err(reason), CallEnd::Stopped)
        }
    };
    warm.put(tenant, sandbox, end);
    result
}

/// Readies a warm sandbox for `call` of activity `name`: what the last
/// call was told, and what it used of its budget, is replaced.
fn begin_call(
    store: &mut Store<GuestState>,
    call: ActivityCall,
    name: &str,
    limits: &SandboxLimits,
) {
    let state = store.data_mut();
    state.output.begin_call(name);
    state.cpu = CpuMeter::new(limits.activity_cpu_budget, "activity_cpu_budget");
    state.activity = Some(call);
    store.set_epoch_deadline(1);
}

/// A fresh sandbox for `call`, its component's activities instantiated in
/// it (the instance is for its first call); `Err` is the failure reason.
async fn fresh_activity(
    component: &LoadedComponent,
    call: ActivityCall,
    limits: &SandboxLimits,
    budget: Option<Arc<MemoryBudget>>,
    grants: &Grants,
) -> Result<(WarmSandbox, Instance), String> {
    let Some(shared) = &component.shared.activities else {
        return Err("the component provides no activities".into());
    };
    let pooled = component
        .pooled
        .as_ref()
        .and_then(|p| p.activities.as_ref());
    let output = OutputSink::new(&call.info.name, Default::default(), limits.text_limits());
    let wasi = activity_wasi(&output, grants)?;
    let http = grants.http.as_ref();
    let mut state = activity_state(output, wasi, http, Some(call), limits, budget);
    (state.limiter.memory).writes_like(component.activity_writes.clone());
    // An activity whose component's other sandboxes hold the memory it
    // needs to start waits for room: none of its code has run yet. (Its
    // wall-clock budget bounds the wait.) Idle warm sandboxes hold none
    // of the budget, so freeing them would not help. Past its start, a
    // shortage fails the attempt, naming the budget.
    let (mut store, instantiated) = loop {
        let (store, instantiated) = sandbox(pooled, shared, state).await;
        match &instantiated {
            Err(error) if waits_for_room(error) => {
                state = store.into_data();
                state.limiter.release();
                tokio::time::sleep(ROOM_POLL).await;
            }
            _ => break (store, instantiated),
        }
    };
    let loaded = match instantiated {
        Ok((instance, indices)) => indices.load(&mut store, &instance).map(|g| (g, instance)),
        Err(error) => Err(error),
    };
    match loaded {
        Ok((guest, instance)) => Ok((
            WarmSandbox {
                store,
                guest,
                calls: 0,
            },
            instance,
        )),
        Err(error) => Err(describe_failure(&error, &store.data().output)),
    }
}

/// How often an activity waiting for room in its component's memory
/// budget tries to start again.
const ROOM_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Whether `error` is a shortage of the component's memory that other
/// sandboxes cause (see [`GuestFault::waits_for_room`]).
fn waits_for_room(error: &wasmtime::Error) -> bool {
    error
        .downcast_ref::<GuestFault>()
        .is_some_and(GuestFault::waits_for_room)
}
