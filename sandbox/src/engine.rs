//! The wasmtime side: engine configuration (fuel, epochs, pooling allocator with copy-on-write
//! memory images), the epoch ticker, the linker (WASI plus `peer.forward`, see `exchange`), and
//! [`Live`]: a fresh instance of the harness, in either role.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime::{Trap, UpdateDeadline};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::entropy::Entropy;
use crate::exchange::{Link, Peer};

use crate::config::SandboxConfig;
use crate::error::SandboxError;
use crate::limits::MemoryLimiter;
use crate::output::{TestOutput, OVERFLOW};
use crate::stdin::TestStdin;

#[allow(missing_docs, unreachable_pub, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "harness",
        exports: { default: async },
    });
}

pub(crate) use bindings::{Failure, Harness, HarnessPre, Item, Loaded, Phase, Status, SuiteStyle};

/// How often the epoch ticks; also the granularity of the wall-clock deadline and how often
/// running guests yield to the async executor.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The engine configuration. Serialized components are only valid for an engine built the
/// same way, which is why the compiled cache is keyed by the engine's compatibility hash.
///
/// Each setting was measured against its alternative (ARCHITECTURE.md, "Engine settings are
/// measured"; CPU time of pure-Python kernels and of on-demand rollouts, best of 7 interleaved
/// rounds): fuel costs 10–30 % of compute but is the per-test instruction limit and the
/// deterministic timing meter; turning epochs off gains ≤ 10 % and would remove the wall-clock
/// deadline; without copy-on-write images an instance costs 2.3–2.6× as much; a 512 MiB
/// reservation without guard pages (explicit bounds checks) makes compute 1.3–1.7× slower;
/// trapping without signals 1.15–1.4× slower; eager table initialization 1.12× per instance;
/// `SpeedAndSize` changes nothing. The four values set below are wasmtime 48's own defaults
/// on 64-bit hosts, written out so that nobody shrinks them by accident.
pub(crate) fn engine(config: &SandboxConfig) -> Result<Engine, SandboxError> {
    let mut c = Config::new();
    c.consume_fuel(true);
    c.epoch_interruption(true);
    c.memory_init_cow(true);
    // A 4 GiB reservation plus a 32 MiB guard lets Cranelift elide the bounds check of every
    // load and store of a 32-bit memory; out-of-bounds accesses trap through the guard's signal.
    c.memory_reservation(4 << 30);
    c.memory_guard_size(32 << 20);
    c.signals_based_traps(true);
    // libpython's function table is large and an instance calls few of its entries.
    c.table_lazy_init(true);
    c.wasm_backtrace_max_frames(None);
    c.max_wasm_stack(8 << 20);
    c.async_stack_size(10 << 20);
    if config.engine.pooling {
        // Running instances plus those instantiated ahead of demand.
        let n = config.engine.max_instances + config.engine.prewarm;
        let mut p = PoolingAllocationConfig::new();
        p.total_component_instances(n);
        p.total_core_instances(n * 32);
        p.max_core_instances_per_component(32);
        p.total_memories(n * 2);
        p.max_memories_per_component(2);
        p.max_memories_per_module(1);
        p.total_tables(n * 32);
        p.max_tables_per_component(32);
        p.max_tables_per_module(2);
        p.table_elements(64 * 1024);
        p.total_stacks(n);
        p.max_memory_size((config.limits.memory_mb as usize) << 20);
        p.max_component_instance_size(1 << 20);
        p.max_core_instance_size(4 << 20);
        // Reset slots by restoring only the pages a run dirtied (PAGEMAP_SCAN, Linux ≥ 6.7) and
        // keep them mapped, so the next instance in the slot takes no page faults on them.
        // With swap on, a dirty page that was swapped out is neither reset nor decommitted by
        // the scan (it asks for PRESENT pages): the next instance in the slot could read the
        // last rollout's bytes (wasmtime PR #14357). Then every slot is reset in full.
        p.pagemap_scan(if swap_is_on() {
            wasmtime::Enabled::No
        } else {
            wasmtime::Enabled::Auto
        });
        p.linear_memory_keep_resident(64 << 20);
        p.table_keep_resident(1 << 20);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Engine::new(&c).map_err(|e| SandboxError::wasm("engine configuration", e))
}

/// Whether `/proc/swaps` lists a swap device (unreadable: assumed on).
pub(crate) fn swap_is_on() -> bool {
    std::fs::read_to_string("/proc/swaps")
        .map_or(true, |s| s.lines().skip(1).any(|l| !l.trim().is_empty()))
}

/// The WIT instance the judge imports `forward` from.
const PEER_INTERFACE: &str = "verdict:sandbox/peer@0.2.0";

/// The linker (WASI p2, async, and `peer.forward`) pre-resolved against the component.
pub(crate) fn instance_pre(
    engine: &Engine,
    component: &Component,
) -> Result<HarnessPre<RunState>, SandboxError> {
    let mut linker = Linker::<RunState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| SandboxError::wasm("linking WASI", e))?;
    linker
        .instance(PEER_INTERFACE)
        .and_then(|mut peer| {
            peer.func_wrap_async(
                "forward",
                |mut store: wasmtime::StoreContextMut<'_, RunState>, (request,): (String,)| {
                    Box::new(async move { Ok((forward(&mut store, request).await,)) })
                },
            )
        })
        .map_err(|e| SandboxError::wasm("linking peer.forward", e))?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| SandboxError::wasm("resolving the component's imports", e))?;
    HarnessPre::new(pre).map_err(|e| SandboxError::wasm("finding the harness exports", e))
}

/// Increments the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    pub(crate) fn start(engine: Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("verdict-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Ticker { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `peer.forward`, in either role: a judge's request or reply goes to its attached candidate
/// ([`Peer::forward`]); a candidate attached to a judge sends a callback or a reply through its
/// [`Link`]; any other instance has no peer.
async fn forward(
    store: &mut wasmtime::StoreContextMut<'_, RunState>,
    message: String,
) -> Result<String, String> {
    if let Some(peer) = store.data_mut().peer.as_mut() {
        return peer.forward(message).await;
    }
    let remaining = store.get_fuel().unwrap_or(0);
    match store.data_mut().link.as_mut() {
        Some(link) => link.call(message, remaining).await,
        None => Err("this instance has no peer to forward to".into()),
    }
}

/// The limits of one rollout, applied to an instance before its first test.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstanceLimits {
    /// Linear-memory cap.
    pub(crate) memory_bytes: usize,
    /// Output cap per test (stdout and stderr each).
    pub(crate) output_bytes: usize,
    /// Wall-clock deadline.
    pub(crate) deadline: Instant,
}

/// How a call into an instance ended abnormally, as observed by the host. After any of these
/// the instance is spent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ended {
    /// The guest stopped with `proc_exit` (e.g. `os._exit`).
    Exited(i32),
    /// Fuel ran out.
    OutOfFuel,
    /// The wall-clock deadline passed.
    Deadline,
    /// Some other trap (stack overflow, unreachable after an abort, output past the cap, …).
    Trapped(String),
}

impl Ended {
    /// A short description for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Ended::Exited(code) => format!("the process exited with code {code}"),
            Ended::OutOfFuel => "it ran out of fuel".into(),
            Ended::Deadline => "the wall-clock budget was spent".into(),
            Ended::Trapped(m) => format!("the interpreter trapped: {}", first_line(m)),
        }
    }
}

/// The first line of a message.
pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// What the host saw of an instance during the current test.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// What the test wrote to stdout.
    pub(crate) stdout: Vec<u8>,
    /// Whether stdout or stderr went past the cap.
    pub(crate) output_overflow: bool,
    /// Whether linear memory growth was refused.
    pub(crate) memory_hit: bool,
}

/// A fresh instance of the harness, serving the tests of one rollout in one role.
pub(crate) struct Live {
    store: Store<RunState>,
    harness: Harness,
    stdin: TestStdin,
    stdout: TestOutput,
    stderr: TestOutput,
    output_bytes: usize,
    /// Fuel loaded at the start of the current test.
    fuel_start: u64,
    /// Fuel spent on instantiation, charged once as overhead.
    pending_overhead: u64,
    /// Its WASI randomness and clocks, restarted from the job's seed at every test.
    entropy: Entropy,
}

/// Fuel loaded into a store before it is configured; far above any per-test limit.
const FUEL_RESERVE: u64 = u64::MAX / 4;

/// Most bytes one guest-to-host call may carry (wasmtime's `hostcall_fuel`, 128 MiB by
/// default): the largest answer or forwarded operation (1 MiB) with room for its encoding.
const HOSTCALL_FUEL: usize = 4 << 20;

/// Most bytes of one operation the judge sends the candidate (a test's own argument, which
/// the test's trusted code chose): far above the cap on what comes back
/// ([`LimitsConfig::output_kb`](crate::LimitsConfig)), below what a candidate's memory holds
/// once decoded. The judge's store may carry this much in one `forward`.
pub(crate) const MAX_ARGUMENT_BYTES: usize = 16 << 20;

/// Most random bytes one WASI call may ask for (64 MiB by default).
const MAX_RANDOM_BYTES: u64 = 1 << 20;

impl Live {
    /// Instantiates the pre-initialized component with no filesystem, environment or network.
    /// Its limits are set by [`Live::configure`] before the first test (an instance may be
    /// created ahead of the rollout it serves).
    pub(crate) async fn new(
        engine: &Engine,
        pre: &HarnessPre<RunState>,
    ) -> Result<Live, SandboxError> {
        let stdout = TestOutput::default();
        let stderr = TestOutput::default();
        let stdin = TestStdin::default();
        let entropy = Entropy::default();
        let wasi = WasiCtxBuilder::new()
            .secure_random(entropy.clone())
            .insecure_random(entropy.clone())
            .insecure_random_seed(0)
            .max_random_size(MAX_RANDOM_BYTES)
            .wall_clock(entropy.clone())
            .monotonic_clock(entropy.clone())
            .stdin(stdin.clone())
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .args(&["main.py"])
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(
            engine,
            RunState {
                wasi,
                table: ResourceTable::new(),
                // Until `configure`: no cap beyond the pool's, and instantiation never times out.
                limiter: MemoryLimiter::new(usize::MAX),
                deadline: Instant::now() + Duration::from_secs(3600),
                interrupted: false,
                peer: None,
                link: None,
            },
        );
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        store
            .set_fuel(FUEL_RESERVE)
            .map_err(|e| SandboxError::wasm("setting fuel", e))?;
        store.epoch_deadline_callback(|mut ctx| {
            if Instant::now() >= ctx.data().deadline {
                ctx.data_mut().interrupted = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        let harness: Harness = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| SandboxError::wasm("instantiating the harness", e))?;
        // The first call into an instance costs ≈0.1 M fuel more than later ones (the
        // component runtime's one-time set-up). Pay it here, with a call that runs no program
        // (`serve` with nothing loaded), so an instance made ahead of demand has it behind it.
        // Every instance does this, so fuel does not depend on how it was made.
        harness
            .call_serve(&mut store, "[]", 64)
            .await
            .map_err(|e| SandboxError::wasm("warming the harness", e))?;
        let pending_overhead = FUEL_RESERVE - store.get_fuel().unwrap_or(FUEL_RESERVE);
        Ok(Live {
            store,
            harness,
            stdin,
            stdout,
            stderr,
            output_bytes: 0,
            fuel_start: 0,
            pending_overhead,
            entropy,
        })
    }

    /// Applies a rollout's limits: memory cap, per-test output cap, wall-clock deadline.
    pub(crate) fn configure(&mut self, limits: InstanceLimits) {
        let state = self.store.data_mut();
        state.limiter.max_bytes = limits.memory_bytes;
        state.deadline = limits.deadline;
        self.output_bytes = limits.output_bytes;
        self.store.set_epoch_deadline(1);
    }

    /// Starts a test: refills stdin, empties the captured output, loads `fuel`.
    pub(crate) fn begin(&mut self, stdin: &str, fuel: u64, seed: u64) -> Result<(), SandboxError> {
        self.entropy.reset(seed);
        self.stdin.set(stdin);
        self.stdout.begin(self.output_bytes);
        self.stderr.begin(self.output_bytes);
        self.store
            .set_fuel(fuel)
            .map_err(|e| SandboxError::wasm("setting fuel", e))?;
        self.fuel_start = fuel;
        Ok(())
    }

    /// Fuel this instance burnt since [`Live::begin`] (every call, whatever it did).
    pub(crate) fn fuel_used(&self) -> u64 {
        self.fuel_start
            .saturating_sub(self.store.get_fuel().unwrap_or(0))
    }

    /// Fuel of instantiation not yet charged to any test (taken once).
    pub(crate) fn take_overhead(&mut self) -> u64 {
        std::mem::take(&mut self.pending_overhead)
    }

    /// What the host saw during the current test.
    pub(crate) fn observe(&self, ended: Option<&Ended>) -> Observed {
        let stdout = self.stdout.contents();
        Observed {
            output_overflow: self.stdout.overflowed()
                || self.stderr.overflowed()
                || matches!(ended, Some(Ended::Trapped(m)) if m.contains(OVERFLOW)),
            memory_hit: self.store.data().limiter.hit,
            stdout: stdout.to_vec(),
        }
    }

    /// Parks `peer` (the candidate) in this instance's store, for the judge's `forward`.
    pub(crate) fn attach(&mut self, peer: Peer) {
        // A judge sends the test's own arguments: trusted, and larger than any answer.
        self.store
            .set_hostcall_fuel(MAX_ARGUMENT_BYTES.saturating_add(HOSTCALL_FUEL));
        self.store.data_mut().peer = Some(Box::new(peer));
    }

    /// Candidate role: the way to the judge it is attached to.
    pub(crate) fn link(&mut self, link: Link) {
        self.store.data_mut().link = Some(link);
    }

    /// Candidate role: detached from its judge.
    pub(crate) fn unlink(&mut self) {
        self.store.data_mut().link = None;
    }

    /// Fuel loaded at the start of the current test.
    pub(crate) fn fuel_start(&self) -> u64 {
        self.fuel_start
    }

    /// Its stdout and stderr (clones share the captured bytes).
    pub(crate) fn outputs(&self) -> (TestOutput, TestOutput) {
        (self.stdout.clone(), self.stderr.clone())
    }

    /// Takes the parked candidate back.
    pub(crate) fn detach(&mut self) -> Option<Peer> {
        self.store.data_mut().peer.take().map(|p| *p)
    }

    /// Candidate role: runs the program (and `setup`) in fresh globals.
    pub(crate) async fn load(
        &mut self,
        program: &str,
        setup: &str,
        main: bool,
        seed: u64,
    ) -> Result<Loaded, Ended> {
        let r = self
            .harness
            .call_load(&mut self.store, program, setup, main, seed)
            .await;
        r.map_err(|e| classify(&self.store, e))
    }

    /// Candidate role: one operation on the loaded program.
    pub(crate) async fn serve(&mut self, request: &str, limit: usize) -> Result<String, Ended> {
        // The answer may carry the request's own arguments back (changed in place): as much
        // as the (trusted) request held, beyond the cap on the answer itself. Attached to a
        // judge, its replies to nested requests may too (the host checks every size).
        let room = if self.store.data().link.is_some() {
            MAX_ARGUMENT_BYTES
        } else {
            request.len()
        };
        self.store
            .set_hostcall_fuel(HOSTCALL_FUEL.saturating_add(room));
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let r = self
            .harness
            .call_serve(&mut self.store, request, limit)
            .await;
        r.map_err(|e| classify(&self.store, e))
    }

    /// Judge role: runs the setup and an assert test against the parked candidate.
    pub(crate) async fn judge(
        &mut self,
        setup: &str,
        test: &str,
        names: &str,
        seed: u64,
        limit: usize,
    ) -> Result<Status, Ended> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let r = self
            .harness
            .call_judge(&mut self.store, setup, test, names, seed, limit)
            .await;
        r.map_err(|e| classify(&self.store, e))
    }
}

impl Live {
    /// Judge role: runs the setup and a test module against the parked candidate, then each of
    /// its items.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn judge_suite(
        &mut self,
        setup: &str,
        code: &str,
        names: &str,
        seed: u64,
        limit: usize,
        style: SuiteStyle,
        module: &str,
    ) -> Result<Vec<Item>, Ended> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let r = self
            .harness
            .call_judge_suite(
                &mut self.store,
                setup,
                code,
                names,
                seed,
                limit,
                style,
                module,
            )
            .await;
        r.map_err(|e| classify(&self.store, e))
    }
}

fn classify(store: &Store<RunState>, e: wasmtime::Error) -> Ended {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Ended::Exited(exit.0);
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Ended::OutOfFuel,
        Some(Trap::Interrupt) => Ended::Deadline,
        _ if store.data().interrupted => Ended::Deadline,
        _ => Ended::Trapped(format!("{e:#}")),
    }
}

/// For messages: where an exception was raised.
pub(crate) fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Program => "program",
        Phase::Setup => "setup",
        Phase::Test => "test",
    }
}

/// What a [`wasmtime::Store`] holds for one instance.
pub(crate) struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// Past this instant the epoch callback interrupts the guest.
    pub(crate) deadline: Instant,
    /// Set by the epoch callback when it interrupted the guest for the deadline.
    pub(crate) interrupted: bool,
    /// In a judge's store while it runs a test: the candidate its `peer.forward` reaches.
    pub(crate) peer: Option<Box<Peer>>,
    /// In a candidate's store while it is attached to a judge: its way to the judge.
    pub(crate) link: Option<Link>,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
