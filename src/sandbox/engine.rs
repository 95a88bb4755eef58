//! The wasmtime side: engine configuration (fuel, epochs, pooling allocator with copy-on-write
//! memory images), the epoch ticker, and [`Live`]: a fresh instance serving tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime::{Trap, UpdateDeadline};
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

use super::limits::{MemoryLimiter, RunState};
use super::output::{TestOutput, OVERFLOW};
use super::stdin::TestStdin;
use super::{SandboxConfig, SandboxError};

#[allow(missing_docs, unreachable_pub, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "sandbox/wit",
        world: "harness",
        exports: { default: async },
    });
}

pub(crate) use bindings::{CallTest, Failure, Harness, HarnessPre, Job, Phase, Status, Test};

/// How often the epoch ticks; also the granularity of the wall-clock deadline and how often
/// running guests yield to the async executor.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The engine configuration. Serialized components are only valid for an engine built the
/// same way, which is why the compiled cache is keyed by the engine's compatibility hash.
pub(crate) fn engine(config: &SandboxConfig) -> Result<Engine, SandboxError> {
    let mut c = Config::new();
    c.consume_fuel(true);
    c.epoch_interruption(true);
    c.memory_init_cow(true);
    c.wasm_backtrace_max_frames(None);
    c.max_wasm_stack(1 << 20);
    c.async_stack_size(4 << 20);
    if config.pooling {
        // Running instances plus those instantiated ahead of demand.
        let n = config.max_instances + config.prewarm;
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
        p.max_memory_size((config.memory_mb as usize) << 20);
        p.max_component_instance_size(1 << 20);
        p.max_core_instance_size(4 << 20);
        // Reset slots by restoring only the pages a run dirtied (PAGEMAP_SCAN, Linux ≥ 6.7) and
        // keep them mapped, so the next instance in the slot takes no page faults on them.
        p.pagemap_scan(wasmtime::Enabled::Auto);
        p.linear_memory_keep_resident(64 << 20);
        p.table_keep_resident(1 << 20);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Engine::new(&c).map_err(|e| SandboxError::wasm("engine configuration", e))
}

/// The linker (WASI p2, async) pre-resolved against the component.
pub(crate) fn instance_pre(
    engine: &Engine,
    component: &Component,
) -> Result<HarnessPre<RunState>, SandboxError> {
    let mut linker = Linker::<RunState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| SandboxError::wasm("linking WASI", e))?;
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

/// The limits of one rollout, applied to its instance before the first test.
pub(crate) struct InstanceLimits {
    /// Linear-memory cap.
    pub(crate) memory_bytes: usize,
    /// Output cap per test (stdout and stderr each).
    pub(crate) output_bytes: usize,
    /// Wall-clock deadline.
    pub(crate) deadline: Instant,
}

/// How a run ended, as observed by the host.
#[derive(Debug)]
pub(crate) enum Ended {
    /// `prepare` refused the job (syntax error, malformed arguments).
    Rejected(Failure),
    /// `execute` returned a status.
    Status(Status),
    /// The guest stopped with `proc_exit` (e.g. `os._exit`).
    Exited(i32),
    /// Fuel ran out.
    OutOfFuel,
    /// The wall-clock deadline passed.
    Deadline,
    /// Some other trap (stack overflow, unreachable after an abort, …).
    Trapped(String),
}

/// What one test produced.
#[derive(Debug)]
pub(crate) struct RunOutput {
    pub(crate) ended: Ended,
    /// What the test wrote to stdout.
    pub(crate) stdout: Vec<u8>,
    /// Whether stdout or stderr went past the cap.
    pub(crate) output_overflow: bool,
    /// Whether linear memory growth was refused.
    pub(crate) memory_hit: bool,
    /// Fuel burnt in `execute` (candidate code plus a fixed harness part).
    pub(crate) execute_fuel: u64,
    /// Fuel burnt in `prepare` and `collect` (harness only), plus instantiation for the first
    /// test of an instance.
    pub(crate) harness_fuel: u64,
    /// The canonical JSON of a call test's value, or why there is none.
    pub(crate) value: Option<Result<String, String>>,
}

/// The failure kind `prepare` reports when an earlier test closed fd 0 or 1 (see
/// `sandbox/PROTOCOL.md`): the test must run again in a fresh instance.
const SPENT_KIND: &str = "VerdictInstanceSpent";

impl RunOutput {
    /// Whether the instance refused the test because an earlier test left it unusable (closed fd 0 or 1).
    pub(crate) fn spent(&self) -> bool {
        matches!(&self.ended, Ended::Rejected(f) if f.kind == SPENT_KIND)
    }

    /// Whether the instance can serve another test of the same rollout: it ended normally
    /// (no trap, exit, limit).
    pub(crate) fn reusable(&self) -> bool {
        matches!(self.ended, Ended::Status(_) | Ended::Rejected(_))
            && !self.memory_hit
            && !self.output_overflow
    }
}

/// A fresh instance of the harness, serving the tests of one rollout.
pub(crate) struct Live {
    store: Store<RunState>,
    harness: Harness,
    stdin: TestStdin,
    stdout: TestOutput,
    stderr: TestOutput,
    output_bytes: usize,
    /// Fuel spent on instantiation, charged to the first test as overhead.
    pending_overhead: u64,
    /// How many tests this instance has run.
    tests_run: usize,
}

/// Fuel loaded into a store before each test; far above any per-test limit.
const FUEL_RESERVE: u64 = u64::MAX / 4;

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
        let wasi = WasiCtxBuilder::new()
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
            },
        );
        store.limiter(|s| &mut s.limiter);
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
        // component runtime's one-time set-up). Pay it here, with a call that runs no candidate
        // code (`collect` with nothing to collect), so an instance made ahead of demand has it
        // behind it. Every instance does this, so fuel does not depend on how it was made.
        harness
            .call_collect(&mut store)
            .await
            .map_err(|e| SandboxError::wasm("warming the harness", e))?
            .err()
            .ok_or_else(|| SandboxError::Config("a fresh harness had a value to collect".into()))?;
        let pending_overhead = FUEL_RESERVE - store.get_fuel().unwrap_or(FUEL_RESERVE);
        Ok(Live {
            store,
            harness,
            stdin,
            stdout,
            stderr,
            output_bytes: 0,
            pending_overhead,
            tests_run: 0,
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

    /// Whether no test has run in this instance yet.
    pub(crate) fn is_fresh(&self) -> bool {
        self.tests_run == 0
    }

    /// Runs one test with `stdin` as its standard input. Errors are service failures only;
    /// whatever the program does ends up in [`RunOutput::ended`].
    pub(crate) async fn run(
        &mut self,
        job: &Job,
        stdin: &str,
        fuel: u64,
        collect: bool,
    ) -> Result<RunOutput, SandboxError> {
        self.stdin.set(stdin);
        self.stdout.begin(self.output_bytes);
        self.stderr.begin(self.output_bytes);
        self.tests_run += 1;
        let store = &mut self.store;
        store
            .set_fuel(fuel)
            .map_err(|e| SandboxError::wasm("setting fuel", e))?;
        let left = |store: &Store<RunState>| store.get_fuel().unwrap_or(0);
        let mut execute_fuel = 0;
        let mut value = None;
        let ended = match self.harness.call_prepare(&mut *store, job).await {
            Ok(Err(failure)) => Ended::Rejected(failure),
            Err(e) => classify(store, e),
            Ok(Ok(())) => {
                let f1 = left(store);
                let r = self.harness.call_execute(&mut *store).await;
                execute_fuel = f1.saturating_sub(left(store));
                match r {
                    Err(e) => classify(store, e),
                    Ok(status) => {
                        if collect && matches!(status, Status::Ok) {
                            value = Some(match self.harness.call_collect(&mut *store).await {
                                Ok(v) => v,
                                Err(e) => Err(format!("collecting the value failed: {e}")),
                            });
                        }
                        Ended::Status(status)
                    }
                }
            }
        };
        let total = fuel.saturating_sub(left(store));
        tracing::trace!(
            instantiate = self.pending_overhead,
            execute = execute_fuel,
            prepare_collect = total - execute_fuel,
            "Test fuel."
        );
        let stdout = self.stdout.contents();
        let err_len = self.stderr.contents().len();
        let output_overflow = stdout.len() >= self.output_bytes
            || err_len >= self.output_bytes
            || matches!(&ended, Ended::Trapped(m) if m.contains(OVERFLOW));
        let harness_fuel =
            total.saturating_sub(execute_fuel) + std::mem::take(&mut self.pending_overhead);
        Ok(RunOutput {
            memory_hit: store.data().limiter.hit,
            ended,
            stdout: stdout.to_vec(),
            output_overflow,
            execute_fuel,
            harness_fuel,
            value,
        })
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

/// Builds the harness's view of a job.
pub(crate) fn job(program: &str, setup: &str, test: Test, seed: u64) -> Job {
    Job {
        program: program.to_string(),
        setup: setup.to_string(),
        test,
        seed,
    }
}

/// The call-test payload.
pub(crate) fn call_test(name: &str, args_json: String) -> Test {
    Test::Call(CallTest {
        name: name.to_string(),
        args_json,
    })
}

/// For messages: where an exception was raised.
pub(crate) fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Program => "program",
        Phase::Setup => "setup",
        Phase::Test => "test",
    }
}
