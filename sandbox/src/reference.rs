//! Reference mode: the program and an assert test in **one** interpreter, as a plain Python
//! harness runs them (HumanEval's `exec` of program and `check` together), with CPython 3.14's
//! native semantics and no isolation at all. It is the oracle the fidelity corpus judges the
//! two-instance boundary against (`tests/it/fidelity.rs`): where the two disagree, the boundary
//! lost Python's meaning, unless the case is one of the documented places where verdict is
//! deliberately stricter. Never used to score: the program runs beside the test's code.

use std::time::{Duration, Instant};

use crate::engine::{InstanceLimits, Status};
use crate::error::SandboxError;
use crate::job::{seed_for, RunJob};
use crate::local::Local;
use verdict_contract::rollout::TestCase;
use verdict_contract::score::Outcome;

/// Each test's outcome in reference mode (`None` for a test that is not an assert test):
/// `passed`, `failed` (an `AssertionError`), `runtime_error` (any other exception or exit) or
/// `timeout` (fuel or wall clock).
pub(crate) async fn run(
    local: &Local,
    job: &RunJob<'_>,
) -> Result<Vec<Option<Outcome>>, SandboxError> {
    let limits = local.config.effective(job.limits);
    let seed = local.config.limits.seed.unwrap_or_else(|| seed_for(job.id));
    let mut outcomes = Vec::with_capacity(job.tests.len());
    for test in job.tests {
        let TestCase::Assert { code, .. } = test else {
            outcomes.push(None);
            continue;
        };
        let _permit = local.pool.slots(1).await;
        let mut live = local.pool.fresh().await?;
        live.configure(InstanceLimits {
            memory_bytes: limits.memory_bytes,
            output_bytes: limits.output_bytes,
            deadline: Instant::now() + Duration::from_millis(limits.time_ms),
        });
        live.begin("", limits.fuel, seed)?;
        // The program is a module, not `__main__` (as in the candidate's `load`); the setup,
        // the judge's setup and the test run after it in the same globals.
        let source = format!(
            "__name__ = 'solution'\n{}\n__name__ = '__main__'\n{}\n{}\n{}\n",
            job.program,
            job.setup.unwrap_or(""),
            job.judge_setup.unwrap_or(""),
            code
        );
        let outcome = match live
            .judge("", &source, "{}", seed, limits.output_bytes)
            .await
        {
            Ok(Status::Ok) => Outcome::Passed,
            Ok(Status::Raised(f)) if f.kind == "AssertionError" => Outcome::Failed,
            Ok(_) => Outcome::RuntimeError,
            Err(crate::engine::Ended::OutOfFuel | crate::engine::Ended::Deadline) => {
                Outcome::Timeout
            }
            Err(_) => Outcome::RuntimeError,
        };
        outcomes.push(Some(outcome));
    }
    Ok(outcomes)
}
