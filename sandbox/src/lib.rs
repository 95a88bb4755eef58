//! Sandboxed Python: run a rollout's code against its tests in fresh WebAssembly instances of
//! a pre-initialized CPython, and judge the results on the host.
//!
//! # Threat model
//! The candidate's program is hostile: it may try anything Python allows inside its own
//! interpreter (frames, `gc`, `__globals__`, shadowed names, patched modules, tracing hooks) and
//! anything WASI allows outside it. So nothing trusted ever runs in the interpreter that runs
//! it. Every rollout gets **two instances**: the *candidate* runs the program and answers
//! questions about it (`serve`); the *judge*, a fresh interpreter no candidate code ever
//! touched, runs the setup and the assert tests, with the program's names bound to proxies
//! whose every use is forwarded through the host to the candidate. Only plain data crosses, and
//! the judge rebuilds it as genuine builtin values, so its `==`, `abs`, `math.isclose` and
//! `assert` are the real ones. stdio and call tests are judged on the host from the WASI-level
//! stdout and the answer's data. Instances have no filesystem, network, environment or
//! subprocesses, and run under fuel, an epoch deadline, a memory cap and capped output. See
//! `sandbox/PROTOCOL.md` for what crosses, the limits, and what cannot be judged this way.
//!
//! # Files
//! - [`config`]: [`SandboxConfig`], the `[sandbox]` section (limits are defaults *and* caps).
//! - [`runtime`]: obtain (pip, hash-pinned), build (componentize-py), verify and cache the runtime.
//! - `engine`: wasmtime configuration, epoch ticker, the linker with `peer.forward`, instances.
//! - `exchange`: the ping-pong of requests between a judge and its candidate (callbacks).
//! - `pool`: the instance pool (slots, instances made ahead of demand).
//! - `calibrate`: fuel baselines of the harness, measured at start-up.
//! - `request`: the call test's operation, the one request the host writes itself.
//! - `run`: one rollout: its candidate and judge instances, test by test, fuel.
//! - `reference`: reference mode (program and test in one interpreter), the fidelity oracle.
//! - `judging`: what the host observed, turned into outcomes and messages.
//! - [`compare`]: host-side comparison of stdout and returned values.
//! - `limits`: memory limiter and per-instance store state.
//! - `stdin`/`output`: the instance's stdin (refilled per test) and capped stdout/stderr.
//! - `workers`: worker processes (`engine.workers`), one guest thread each; the child's loop is
//!   [`serve_worker`].
//! - `names`: the candidate's names report, checked before the judge sees it.
//! - `entropy`: WASI randomness and clocks seeded from the job.
//! - `checker`: a stdio test's checker, validated on the expected output first.
//! - [`error`]: [`SandboxError`], failures of the service (never of the program).
//!
//! # Determinism
//! The snapshot freezes CPython's hash seed and the state of `random`; the harness reseeds
//! `random` per test from [`LimitsConfig::seed`] or, by default, from the rollout id. A test's
//! fuel is everything its candidate instance burnt for it (loading the program, every call)
//! minus the calibrated cost of an empty program making the same calls, read from the store by
//! the host, so [`TestResult::fuel`](verdict_contract::score::TestResult) is the candidate's own work and
//! is the same on every run.

#![deny(missing_docs)]

mod calibrate;
mod checker;
pub mod compare;
pub mod config;
mod engine;
mod entropy;
pub mod error;
mod exchange;
mod job;
mod judging;
mod limits;
mod local;
mod names;
mod output;
mod pool;
mod reference;
mod request;
mod run;
pub mod runtime;
mod stdin;
mod workers;

use std::sync::Arc;
use std::time::Instant;

pub use calibrate::Baselines;
pub use compare::{Rule, Tolerance};
pub use config::{
    EffectiveLimits, EngineConfig, JudgeConfig, LimitsConfig, RuntimeConfig, SandboxConfig,
};
pub use error::SandboxError;
pub use job::{RunJob, RunReport};
use local::Local;
pub use workers::serve as serve_worker;

use pool::Pool;
use verdict_contract::rollout::TestCase;
use verdict_contract::score::Outcome;

/// The shared sandbox: cheap to clone, `Send + Sync`. Build one per process.
///
/// It runs rollouts either in this process or in worker processes (`sandbox.workers`), chosen
/// when it is built.
#[derive(Clone)]
pub struct Sandbox {
    mode: Arc<Mode>,
}

enum Mode {
    /// Instances in this process.
    Local(Local),
    /// `verdict sandbox-worker` processes, each with a `Local` of its own.
    Workers {
        config: SandboxConfig,
        pool: workers::WorkerPool,
        /// Whether the parent found the compiled component in the cache.
        component_cached: bool,
    },
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Sandbox");
        d.field("config", self.config());
        if let Mode::Local(local) = &*self.mode {
            d.field("baselines", &local.baselines);
        }
        d.finish_non_exhaustive()
    }
}

/// Runs `f` on a thread of its own with a current-thread runtime: `Sandbox::new` may be called
/// from inside an async runtime, and calibration needs one.
fn on_own_runtime<T: Send>(
    f: impl FnOnce(&tokio::runtime::Runtime) -> Result<T, SandboxError> + Send,
) -> Result<T, SandboxError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| SandboxError::io("start", "calibration runtime", e))?;
            f(&rt)
        })
        .join()
        .unwrap_or_else(|_| Err(SandboxError::Config("calibration panicked".into())))
    })
}

impl Local {
    /// The pool, calibrated and self-tested.
    fn new(config: &SandboxConfig, refill_when_taken: bool) -> Result<Local, SandboxError> {
        let pool = Pool::new(config, refill_when_taken)?;
        let baselines = on_own_runtime(|rt| rt.block_on(calibrate::measure(&pool)))?;
        let local = Local {
            config: config.clone(),
            pool,
            baselines,
        };
        on_own_runtime(|rt| rt.block_on(local.self_test()))?;
        tracing::debug!(?baselines, "Sandbox ready.");
        Ok(local)
    }

    /// One run of every test kind on a right program: the runtime works end to end (the judge
    /// reaches the candidate through the host, a checker runs in a judge, among the rest).
    async fn self_test(&self) -> Result<(), SandboxError> {
        let tests = [
            TestCase::Assert {
                code: "assert f(1) == 2 and abs(f(0.5) - 1.5) < 1e-9".into(),
                timing: false,
            },
            TestCase::Stdio {
                stdin: "1\n".into(),
                stdout: "2\n".into(),
                timing: false,
                compare: None,
                checker: None,
            },
            TestCase::Stdio {
                stdin: "1\n".into(),
                stdout: "2.0\n".into(),
                timing: false,
                compare: None,
                checker: Some("def check(i, o, e):\n    return float(o) == float(e)\n".into()),
            },
            TestCase::Call {
                function: "f".into(),
                args: vec![serde_json::json!(41).into()],
                expected: serde_json::json!(42).into(),
                timing: false,
                compare: None,
            },
        ];
        let job = RunJob {
            id: "self-test",
            program: "def f(x):\n    return x + 1\n\nif __name__ == '__main__':\n    print(f(int(input())))\n",
            setup: None,
            judge_setup: None,
            tests: &tests,
            limits: None,
            stop_on_failure: false,
        };
        let report = self.run(&job).await?;
        if report.outcome != Outcome::Passed {
            return Err(SandboxError::Config(format!(
                "the runtime failed its self-test: {}",
                report.message.unwrap_or_default()
            )));
        }
        Ok(())
    }

    async fn run(&self, job: &RunJob<'_>) -> Result<RunReport, SandboxError> {
        let start = Instant::now();
        run::Rollout::start(self, job, start).await.run(start).await
    }
}

impl Sandbox {
    /// Loads the cached compiled component, or installs, builds and compiles it (with progress
    /// on stderr) when it is missing. In-process (`workers` unset or 0): starts the epoch
    /// ticker, calibrates the fuel baselines and self-tests. With workers: only makes sure the
    /// runtime is ready; each worker calibrates its own.
    pub fn new(config: &SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.validate()?;
        let mode = match config.engine.workers {
            Some(n) if n > 0 => {
                // Build and compile once here, not in every worker at once.
                let (_, component_cached) = runtime::load(config, &engine::engine(config)?)?;
                Mode::Workers {
                    config: config.clone(),
                    pool: workers::WorkerPool::new(config, n)?,
                    component_cached,
                }
            }
            _ => Mode::Local(Local::new(config, true)?),
        };
        Ok(Sandbox {
            mode: Arc::new(mode),
        })
    }

    /// An in-process sandbox whatever `engine.workers` says: calibrated and self-tested here
    /// (`verdict runtime` uses it to show that the runtime works in this process).
    pub fn in_process(config: &SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.validate()?;
        Ok(Sandbox {
            mode: Arc::new(Mode::Local(Local::new(config, true)?)),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &SandboxConfig {
        match &*self.mode {
            Mode::Local(local) => &local.config,
            Mode::Workers { config, .. } => config,
        }
    }

    /// The fuel baselines, for an in-process sandbox.
    pub fn baselines(&self) -> Option<Baselines> {
        match &*self.mode {
            Mode::Local(local) => Some(local.baselines),
            Mode::Workers { .. } => None,
        }
    }

    /// How busy it is now: the numbers a server's `/metrics` reads at each scrape.
    pub fn load(&self) -> SandboxLoad {
        match &*self.mode {
            Mode::Local(local) => SandboxLoad {
                waiting: local.pool.waiting(),
                busy: local.pool.in_use(),
                slots: local.pool.capacity(),
                ready: local.pool.ready(),
                workers: 0,
                component_cached: local.pool.component_cached(),
            },
            Mode::Workers {
                pool,
                component_cached,
                ..
            } => SandboxLoad {
                waiting: 0,
                busy: pool.busy(),
                slots: pool.capacity(),
                ready: 0,
                workers: pool.alive(),
                component_cached: *component_cached,
            },
        }
    }

    /// Reference mode, the fidelity oracle (see `reference.rs`): each assert test run with the
    /// program in one interpreter, natively, without isolation; `None` for other tests. Only
    /// for tests of verdict itself — never to score untrusted code. In-process sandboxes only.
    #[doc(hidden)]
    pub async fn reference(&self, job: &RunJob<'_>) -> Result<Vec<Option<Outcome>>, SandboxError> {
        match &*self.mode {
            Mode::Local(local) => reference::run(local, job).await,
            Mode::Workers { .. } => Err(SandboxError::Config(
                "reference mode runs only in an in-process sandbox".into(),
            )),
        }
    }

    /// Runs the program against each test (see the module docs) and judges the results on the
    /// host. Dropping the future stops the running interpreters and frees their slots.
    pub async fn run(&self, job: &RunJob<'_>) -> Result<RunReport, SandboxError> {
        match &*self.mode {
            Mode::Local(local) => local.run(job).await,
            Mode::Workers { pool, .. } => pool.run(job).await,
        }
    }
}

/// How busy a sandbox is (see [`Sandbox::load`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxLoad {
    /// Rollouts waiting for interpreter slots (in-process; 0 with workers).
    pub waiting: usize,
    /// Interpreters running tests now, or with workers: runs in flight across them.
    pub busy: usize,
    /// Interpreter slots: `max_instances`, or with workers `workers × max_instances`.
    pub slots: usize,
    /// Interpreters made ahead of demand, waiting (in-process).
    pub ready: usize,
    /// Worker processes alive.
    pub workers: usize,
    /// Whether the compiled component came from the cache when the sandbox was built (false:
    /// it was compiled, or built, for this one).
    pub component_cached: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn sandbox_is_shareable() {
        assert_send_sync::<Sandbox>();
    }
}
