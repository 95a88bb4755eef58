//! Sandboxed Python: run a rollout's code against its tests in fresh WebAssembly instances of
//! a pre-initialized CPython, and judge the results on the host.
//!
//! # Files
//! - [`config`]: [`SandboxConfig`], the `[sandbox]` section (limits are defaults *and* caps).
//! - [`runtime`]: obtain (pip, hash-pinned), build (componentize-py), verify and cache the runtime.
//! - [`engine`]: wasmtime configuration, epoch ticker, fresh instances serving tests.
//! - [`limits`]: memory limiter and per-run store state.
//! - [`compare`]: host-side comparison of stdout and returned values.
//! - [`guard`]: host-side rewrite of assert tests so user-defined types cannot decide them.
//! - [`stdin`]: the instance's stdin, refilled before each test.
//! - [`output`]: the instance's stdout/stderr, captured and capped per test.
//! - [`workers`]: optional worker processes (`sandbox.workers`), one guest thread each.
//! - [`cli`]: the `verdict runtime` subcommand.
//! - [`error`]: [`SandboxError`], failures of the service (never of the program).
//!
//! # One run
//! Every rollout gets a fresh instance of the pre-initialized component: the interpreter is
//! already started and the harness imported, so an instance costs under a millisecond. The
//! tests of a rollout run in that instance one after another; each runs the program again in
//! fresh globals, with pristine builtins and new `sys.stdout`/`sys.stdin` streams, and the host
//! refills the WASI stdin with the test's input (empty for assert and call tests). A test that
//! traps, exits, runs out of time or hits a limit discards its instance; the next test starts
//! from a fresh one. No preopened directories, no environment, no network, stdin from memory,
//! stdout/stderr into capped memory pipes, fuel and an epoch deadline, a memory limiter.
//! Nothing of one rollout is visible to the next. The harness protocol is in
//! `sandbox/PROTOCOL.md`.
//!
//! # Verdicts
//! Decided here, from what the host observes: stdout and the canonical return value are
//! compared on the host; exits, traps, exhausted fuel, deadlines, refused memory growth and
//! output overflow are seen by the host directly. A program cannot claim its own success.
//!
//! # Determinism
//! The snapshot freezes CPython's hash seed (string hashes are the same in every run) and the
//! state of `random`; the harness reseeds `random` per run from [`SandboxConfig::seed`] or, by
//! default, from the rollout id. Fuel is counted per test around the harness's `execute` call,
//! minus the fuel of the same call on an empty program (calibrated at start-up), so
//! [`TestResult::fuel`] is the candidate's own work and is the same on every run.

pub mod cli;
pub mod compare;
pub mod config;
pub(crate) mod engine;
pub mod error;
pub mod guard;
pub(crate) mod limits;
pub(crate) mod output;
pub mod runtime;
pub(crate) mod stdin;
pub mod workers;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::Engine;

pub use compare::Tolerance;
pub use config::{EffectiveLimits, SandboxConfig};
pub use error::SandboxError;

use crate::rollout::{Limits, TestCase};
use crate::score::{Outcome, TestReport, TestResult};
use engine::{Ended, HarnessPre, InstanceLimits, Live, Phase, Status, Test};
use limits::RunState;

/// The shared sandbox: cheap to clone, `Send + Sync`. Build one per process.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    engine: Engine,
    pre: HarnessPre<RunState>,
    slots: Semaphore,
    /// Fresh instances made ahead of demand, never used (at most `config.prewarm`).
    ready: std::sync::Mutex<Vec<Live>>,
    /// Instances being made for `ready` right now.
    refilling: AtomicUsize,
    /// Whether taking a ready instance starts making the next one (else the owner calls
    /// [`Sandbox::refill`] when it is idle: a single-threaded worker process).
    refill_when_taken: bool,
    /// With `sandbox.workers > 0`, the worker processes that run rollouts instead of this one.
    workers: Option<workers::WorkerPool>,
    /// `execute` fuel of an empty program, per test kind (assert, stdio, call).
    baseline: [u64; 3],
    _ticker: engine::Ticker,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.inner.config)
            .field("baseline_fuel", &self.inner.baseline)
            .finish_non_exhaustive()
    }
}

/// One program and its tests.
#[derive(Debug, Clone, Copy)]
pub struct RunJob<'a> {
    /// The rollout id: seeds `random` (unless the config fixes a seed) and labels logs.
    pub id: &'a str,
    /// The candidate's code.
    pub program: &'a str,
    /// Trusted code run after the program and before each test.
    pub setup: Option<&'a str>,
    /// The tests; at most `max_tests` of them run.
    pub tests: &'a [TestCase],
    /// The rollout's own limits, capped by the configuration.
    pub limits: Option<&'a Limits>,
    /// Stop at the first test that does not pass (the rest are reported as not run, failed).
    pub stop_on_failure: bool,
}

/// What running a program against its tests found. A bad program is a verdict here, not an
/// error.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    /// `passed` when every test passed; otherwise the outcome of the first test that did not.
    pub outcome: Outcome,
    /// Per-test results (the first `max_tests` tests).
    pub tests: TestReport,
    /// Fuel of the candidate's own work, summed over tests (deterministic).
    pub fuel: u64,
    /// Fuel of interpreter and harness overhead (instantiation, compilation, serialization).
    pub overhead_fuel: u64,
    /// Wall time of the whole run, in milliseconds.
    pub wall_ms: f64,
    /// Tests beyond `max_tests` that were not run.
    pub tests_dropped: usize,
    /// The message of the first test that did not pass.
    pub message: Option<String>,
}

impl RunReport {
    /// Fraction of tests passed (0 when there are none).
    pub fn pass_fraction(&self) -> f64 {
        if self.tests.total == 0 {
            0.0
        } else {
            self.tests.passed as f64 / self.tests.total as f64
        }
    }
}

fn kind_index(test: &TestCase) -> usize {
    match test {
        TestCase::Assert { .. } => 0,
        TestCase::Stdio { .. } => 1,
        TestCase::Call { .. } => 2,
    }
}

/// The seed for a rollout: the first 8 bytes of `sha256("verdict-seed:" + id)`.
pub fn seed_for(id: &str) -> u64 {
    let d = Sha256::digest(format!("verdict-seed:{id}").as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

impl Sandbox {
    /// Loads the cached compiled component, or installs, builds and compiles it (with progress
    /// on stderr) when it is missing; starts the epoch ticker; calibrates the fuel baseline.
    pub fn new(config: &SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.validate()?;
        let engine = engine::engine(config)?;
        let component = runtime::load(config, &engine)?;
        let pre = engine::instance_pre(&engine, &component)?;
        let ticker = engine::Ticker::start(engine.clone());
        let mut sandbox = Sandbox {
            inner: Arc::new(Inner {
                config: config.clone(),
                engine,
                pre,
                slots: Semaphore::new(config.max_instances as usize),
                ready: std::sync::Mutex::new(Vec::new()),
                refilling: AtomicUsize::new(0),
                refill_when_taken: true,
                workers: match config.workers {
                    Some(n) if n > 0 => Some(workers::WorkerPool::new(config, n)?),
                    _ => None,
                },
                baseline: [0; 3],
                _ticker: ticker,
            }),
        };
        let baseline = sandbox.calibrate()?;
        Arc::get_mut(&mut sandbox.inner)
            .expect("not shared yet")
            .baseline = baseline;
        tracing::debug!(?baseline, "Sandbox ready.");
        Ok(sandbox)
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// The wasmtime engine (for `verdict runtime`).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn calibrate(&self) -> Result<[u64; 3], SandboxError> {
        // Its own thread and runtime: `new` may be called from inside an async runtime.
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map_err(|e| SandboxError::io("start", "calibration runtime", e))?;
                self.calibrate_on(&rt)
            })
            .join()
            .unwrap_or_else(|_| Err(SandboxError::Config("calibration panicked".into())))
        })
    }

    fn calibrate_on(&self, rt: &tokio::runtime::Runtime) -> Result<[u64; 3], SandboxError> {
        let tests = [
            TestCase::Assert {
                code: String::new(),
                timing: false,
            },
            TestCase::Stdio {
                stdin: String::new(),
                stdout: String::new(),
                timing: false,
            },
            TestCase::Call {
                function: "f".into(),
                args: vec![],
                expected: serde_json::Value::Null,
                timing: false,
            },
        ];
        let mut out = [0; 3];
        for (i, test) in tests.iter().enumerate() {
            let program = if i == 2 { "def f(): pass" } else { "" };
            let job = RunJob {
                id: "calibration",
                program,
                setup: None,
                tests: std::slice::from_ref(test),
                limits: None,
                stop_on_failure: false,
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            let (result, exec_fuel, _) =
                rt.block_on(self.run_test(&job, test, deadline, 0, &mut None))?;
            if !result.passed {
                return Err(SandboxError::Config(format!(
                    "the runtime failed its self-test ({} test): {}",
                    test.kind(),
                    result.message.unwrap_or_default()
                )));
            }
            out[i] = exec_fuel;
        }
        Ok(out)
    }

    /// Runs the program against each test (fresh instances; see the module docs) and judges
    /// the results on the host.
    ///
    /// Dropping the future stops the running interpreter and frees its slot.
    pub async fn run(&self, job: &RunJob<'_>) -> Result<RunReport, SandboxError> {
        if let Some(pool) = &self.inner.workers {
            return pool.run(job).await;
        }
        let start = Instant::now();
        let config = &self.inner.config;
        let limits = config.effective(job.limits);
        let deadline = start + Duration::from_millis(limits.time_ms);
        let n = job.tests.len().min(config.max_tests);
        let mut results: Vec<TestResult> = Vec::with_capacity(n);
        let (mut fuel, mut overhead) = (0u64, 0u64);
        // A failure of the program itself (it does not compile, or raises/exits before any test
        // code runs) is the same for every assert/call test: run it once, reuse the verdict.
        let mut program_failure: Option<TestResult> = None;
        let mut stopped = false;
        // The instance serving this rollout's tests.
        let mut live: Option<(Live, tokio::sync::SemaphorePermit<'_>)> = None;
        for (index, test) in job.tests[..n].iter().enumerate() {
            // Whether a failure of the program itself is the same for every test of this kind
            // (not for stdio tests: there it can depend on the input).
            let reusable = !matches!(test, TestCase::Stdio { .. });
            if stopped {
                results.push(TestResult {
                    index,
                    kind: test.kind().to_string(),
                    passed: false,
                    outcome: Outcome::Failed,
                    message: Some("not run: an earlier test did not pass".into()),
                    fuel: 0,
                    wall_ms: 0.0,
                });
                continue;
            }
            if let (true, Some(prev)) = (reusable, &program_failure) {
                results.push(TestResult {
                    index,
                    kind: test.kind().to_string(),
                    wall_ms: 0.0,
                    fuel: 0,
                    ..prev.clone()
                });
                continue;
            }
            if Instant::now() >= deadline {
                results.push(TestResult {
                    index,
                    kind: test.kind().to_string(),
                    passed: false,
                    outcome: Outcome::Timeout,
                    message: Some(format!(
                        "not run: the {} ms budget was spent",
                        limits.time_ms
                    )),
                    fuel: 0,
                    wall_ms: 0.0,
                });
                continue;
            }
            let baseline = self.inner.baseline[kind_index(test)];
            let (mut result, exec_fuel, other_fuel) =
                self.run_test(job, test, deadline, index, &mut live).await?;
            result.fuel = exec_fuel.saturating_sub(baseline);
            fuel += result.fuel;
            overhead += other_fuel + exec_fuel.min(baseline);
            if reusable
                && result
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with(PROGRAM_PREFIX))
            {
                program_failure = Some(result.clone());
            }
            if job.stop_on_failure && !result.passed {
                stopped = true;
            }
            results.push(result);
        }
        let passed = results.iter().filter(|r| r.passed).count();
        let first_bad = results.iter().find(|r| !r.passed);
        let outcome = first_bad.map_or(
            if n == 0 {
                Outcome::Failed
            } else {
                Outcome::Passed
            },
            |r| r.outcome,
        );
        let message =
            first_bad.and_then(|r| r.message.clone().map(|m| format!("test {}: {m}", r.index)));
        tracing::debug!(id = job.id, %outcome, passed, total = n, fuel, "Sandbox run finished.");
        Ok(RunReport {
            outcome,
            tests: TestReport {
                passed,
                total: n,
                results,
            },
            fuel,
            overhead_fuel: overhead,
            wall_ms: start.elapsed().as_secs_f64() * 1e3,
            tests_dropped: job.tests.len() - n,
            message,
        })
    }

    /// One test, in `live` (instantiated first when empty). `live` is emptied after a test
    /// that trapped, exited, hit a limit or ran out of time, so the next test starts fresh.
    /// Returns the result, the `execute` fuel and the harness fuel.
    async fn run_test<'s>(
        &'s self,
        job: &RunJob<'_>,
        test: &TestCase,
        deadline: Instant,
        index: usize,
        live: &mut Option<(Live, tokio::sync::SemaphorePermit<'s>)>,
    ) -> Result<(TestResult, u64, u64), SandboxError> {
        let start = Instant::now();
        let config = &self.inner.config;
        let limits = config.effective(job.limits);
        let seed = config.seed.unwrap_or_else(|| seed_for(job.id));
        let (wit_test, stdin) = match test {
            TestCase::Assert { code, .. } => match guard::guard(code) {
                Some(guarded) => (Test::Guarded(guarded), ""),
                None => (Test::Assertion(code.clone()), ""),
            },
            TestCase::Stdio { stdin, .. } => (Test::Stdio, stdin.as_str()),
            TestCase::Call { function, args, .. } => (
                engine::call_test(function, serde_json::Value::Array(args.clone()).to_string()),
                "",
            ),
        };
        let wit_job = engine::job(job.program, job.setup.unwrap_or(""), wit_test, seed);
        let mut result = TestResult {
            index,
            kind: test.kind().to_string(),
            passed: false,
            outcome: Outcome::Failed,
            message: None,
            fuel: 0,
            wall_ms: 0.0,
        };
        let mut spent_fuel = 0;
        let out = loop {
            let (instance, _) = match live {
                Some(l) => l,
                None => {
                    let permit = self
                        .inner
                        .slots
                        .acquire()
                        .await
                        .expect("semaphore never closed");
                    let mut instance = self.fresh_instance().await?;
                    instance.configure(InstanceLimits {
                        memory_bytes: limits.memory_bytes,
                        output_bytes: limits.output_bytes,
                        deadline,
                    });
                    live.insert((instance, permit))
                }
            };
            let fresh = instance.is_fresh();
            let remaining = deadline.saturating_duration_since(Instant::now());
            // Sleeping guests are parked in the async WASI poll, where epochs cannot reach
            // them; the timeout drops the future, which stops the instance; dropping `live`
            // frees the slot.
            let ran = tokio::time::timeout(
                remaining + engine::EPOCH_TICK,
                instance.run(
                    &wit_job,
                    stdin,
                    limits.fuel,
                    matches!(test, TestCase::Call { .. }),
                ),
            )
            .await;
            result.wall_ms = start.elapsed().as_secs_f64() * 1e3;
            let out = match ran {
                Err(_) => {
                    *live = None;
                    result.outcome = Outcome::Timeout;
                    result.message = Some(format!(
                        "wall-clock budget of {} ms exceeded",
                        limits.time_ms
                    ));
                    return Ok((result, 0, 0));
                }
                Ok(out) => out?,
            };
            // An earlier test of the rollout closed fd 0, 1 or 2: run this one in a fresh
            // instance (a fresh instance is never spent, so this happens at most once).
            if out.spent() && !fresh {
                spent_fuel += out.harness_fuel;
                *live = None;
                continue;
            }
            break out;
        };
        if !out.reusable() {
            *live = None;
        }
        let tol = Tolerance {
            rel: config.float_rel_tol,
            abs: config.float_abs_tol,
        };
        let verdict = judge(test, &out, tol, &limits);
        result.passed = verdict.0 == Outcome::Passed;
        result.outcome = verdict.0;
        result.message = verdict.1;
        Ok((result, out.execute_fuel, out.harness_fuel + spent_fuel))
    }
}

impl Sandbox {
    /// A never-used instance: one made ahead of demand when there is one, else a new one.
    /// Either way the pool of ready instances is topped up in the background.
    async fn fresh_instance(&self) -> Result<Live, SandboxError> {
        let ready = self
            .inner
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if self.inner.refill_when_taken {
            self.refill();
        }
        match ready {
            Some(live) => Ok(live),
            None => Live::new(&self.inner.engine, &self.inner.pre).await,
        }
    }

    /// For a single-threaded owner: instances are made ahead only when it calls
    /// [`Sandbox::refill`], between runs, never in the middle of one.
    pub(crate) fn refill_only_when_asked(mut self) -> Sandbox {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.refill_when_taken = false;
        }
        self
    }

    /// Starts making instances in the background until `prewarm` are ready or being made.
    /// Needs a tokio runtime; without one (or with `prewarm = 0`) nothing is made ahead.
    pub(crate) fn refill(&self) {
        let inner = &self.inner;
        let target = inner.config.prewarm as usize;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        loop {
            let ready = inner
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            let making = inner.refilling.load(Ordering::Acquire);
            if ready + making >= target {
                return;
            }
            if inner
                .refilling
                .compare_exchange(making, making + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let making = Making(Arc::clone(inner));
            handle.spawn(async move {
                let inner = &making.0;
                match Live::new(&inner.engine, &inner.pre).await {
                    Ok(live) => inner
                        .ready
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(live),
                    Err(e) => tracing::warn!(error = %e, "Making an instance ahead failed."),
                }
            });
        }
    }
}

/// One instance being made ahead; the count drops when it is done or abandoned (its runtime
/// shut down).
struct Making(Arc<Inner>);

impl Drop for Making {
    fn drop(&mut self) {
        self.0.refilling.fetch_sub(1, Ordering::AcqRel);
    }
}

const PROGRAM_PREFIX: &str = "program: ";

/// Turns what the host observed into an outcome and a message.
fn judge(
    test: &TestCase,
    out: &engine::RunOutput,
    tol: Tolerance,
    limits: &EffectiveLimits,
) -> (Outcome, Option<String>) {
    let fail = |o: Outcome, m: String| (o, Some(m));
    if out.output_overflow {
        return fail(
            Outcome::OutputLimit,
            format!("output exceeded {} KiB", limits.output_bytes >> 10),
        );
    }
    let is_stdio = matches!(test, TestCase::Stdio { .. });
    let stdio_judge = |out: &engine::RunOutput| -> (Outcome, Option<String>) {
        let TestCase::Stdio { stdout, .. } = test else {
            unreachable!()
        };
        let actual = String::from_utf8_lossy(&out.stdout);
        match compare::stdout_matches(&actual, stdout, Some(tol)) {
            Ok(()) => (Outcome::Passed, None),
            Err(m) => (Outcome::Failed, Some(format!("wrong output: {m}"))),
        }
    };
    match &out.ended {
        Ended::OutOfFuel => fail(
            Outcome::Timeout,
            format!("fuel budget of {} exhausted", limits.fuel),
        ),
        Ended::Deadline => fail(
            Outcome::Timeout,
            format!("wall-clock budget of {} ms exceeded", limits.time_ms),
        ),
        _ if out.memory_hit && !matches!(out.ended, Ended::Status(Status::Ok)) => fail(
            Outcome::MemoryLimit,
            format!("memory cap of {} MiB reached", limits.memory_bytes >> 20),
        ),
        Ended::Trapped(m) => fail(
            Outcome::RuntimeError,
            format!("the interpreter trapped: {}", first_line(m)),
        ),
        Ended::Exited(0) if is_stdio => stdio_judge(out),
        Ended::Exited(code) => fail(
            Outcome::RuntimeError,
            format!(
                "{PROGRAM_PREFIX}the process exited with code {code} before the tests finished"
            ),
        ),
        Ended::Rejected(f) => {
            let outcome = if f.phase == Phase::Program && f.kind == "SyntaxError" {
                Outcome::SyntaxError
            } else {
                Outcome::RuntimeError
            };
            let prefix = if f.phase == Phase::Program {
                PROGRAM_PREFIX.to_string()
            } else {
                format!("{}: ", engine::phase_name(f.phase))
            };
            fail(outcome, format!("{prefix}{}: {}", f.kind, f.message))
        }
        Ended::Status(Status::Exit(0)) if is_stdio => stdio_judge(out),
        Ended::Status(Status::Exit(code)) => fail(
            Outcome::RuntimeError,
            format!("{PROGRAM_PREFIX}SystemExit({code}) before the tests finished"),
        ),
        Ended::Status(Status::Raised(f)) => {
            let where_ = if f.phase == Phase::Program {
                PROGRAM_PREFIX.to_string()
            } else {
                format!("{}: ", engine::phase_name(f.phase))
            };
            let outcome = if f.phase == Phase::Test && f.kind == "AssertionError" && !is_stdio {
                Outcome::Failed
            } else {
                Outcome::RuntimeError
            };
            let message = if f.message.is_empty() {
                f.kind.clone()
            } else {
                format!("{}: {}", f.kind, f.message)
            };
            fail(outcome, format!("{where_}{message}"))
        }
        Ended::Status(Status::Ok) => match test {
            TestCase::Assert { .. } => (Outcome::Passed, None),
            TestCase::Stdio { .. } => stdio_judge(out),
            TestCase::Call { expected, .. } => match &out.value {
                Some(Ok(canonical)) => match compare::value_matches(canonical, expected, tol) {
                    Ok(()) => (Outcome::Passed, None),
                    Err(m) => fail(Outcome::Failed, format!("wrong value: {m}")),
                },
                Some(Err(why)) => fail(Outcome::Failed, format!("wrong value: {why}")),
                None => fail(Outcome::Failed, "no value was returned".into()),
            },
        },
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn sandbox_is_shareable() {
        assert_send_sync::<Sandbox>();
    }

    #[test]
    fn seeds_are_derived_from_the_rollout_id() {
        assert_eq!(seed_for("r-1"), seed_for("r-1"));
        assert_ne!(seed_for("r-1"), seed_for("r-2"));
    }

    #[test]
    fn pass_fraction_of_an_empty_report_is_zero() {
        let r = RunReport {
            outcome: Outcome::Failed,
            tests: TestReport::default(),
            fuel: 0,
            overhead_fuel: 0,
            wall_ms: 0.0,
            tests_dropped: 0,
            message: None,
        };
        assert_eq!(r.pass_fraction(), 0.0);
    }
}
