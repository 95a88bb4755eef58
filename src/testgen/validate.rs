//! Validation before any generated test is trusted: runs in the sandbox.
//!
//! - **With a reference** ([`with_reference`]): the reference solution runs the candidate
//!   tests twice, under two different seeds for `random`; a test is kept when it passes both
//!   times, dropped as `reference_fails` when it fails both, `nondeterministic` when the two
//!   runs disagree.
//! - **Without one** ([`twice`] on every rollout of the group, then
//!   [`super::agreement::select`]): each rollout runs the candidates twice the same way; a test
//!   whose result changes on any rollout is `nondeterministic`, and the others are judged by
//!   dual agreement.
//!
//! The seeds come from the run's id (see the sandbox's `seed_for`); a config that fixes
//! `sandbox.seed` makes both runs use the same seed, and then only non-determinism that does
//! not come from `random` (hash order of objects, say) can show.

use crate::rollout::{Limits, TestCase};
use crate::sandbox::{RunJob, RunReport, Sandbox, SandboxError};

use super::cache::{Method, Validation};
use super::extract::DropReason;

/// Two runs of one program on the same tests under different seeds.
#[derive(Debug, Clone)]
pub struct TwoRuns {
    /// The first run's report.
    pub first: RunReport,
    /// Per test: passed on both runs.
    pub passed: Vec<bool>,
    /// Per test: the same result on both runs.
    pub stable: Vec<bool>,
}

/// Run `program` on every test of `tests` twice (ids `id` and `id` + `#reseeded`).
pub async fn twice(
    sandbox: &Sandbox,
    id: &str,
    program: &str,
    setup: Option<&str>,
    tests: &[TestCase],
    limits: Option<&Limits>,
) -> Result<TwoRuns, SandboxError> {
    let second_id = format!("{id}#reseeded");
    let job = |id| RunJob {
        id,
        program,
        setup,
        judge_setup: None,
        tests,
        limits,
        stop_on_failure: false,
    };
    let first = sandbox.run(&job(id)).await?;
    let second = sandbox.run(&job(&second_id)).await?;
    let passes = |r: &RunReport| {
        let mut v = vec![false; tests.len()];
        for t in &r.tests.results {
            if let Some(slot) = v.get_mut(t.index) {
                *slot = t.passed;
            }
        }
        v
    };
    let (a, b) = (passes(&first), passes(&second));
    Ok(TwoRuns {
        passed: a.iter().zip(&b).map(|(x, y)| *x && *y).collect(),
        stable: a.iter().zip(&b).map(|(x, y)| x == y).collect(),
        first,
    })
}

/// The tests a reference solution keeps, and why each other was dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// The tests kept, in order.
    pub kept: Vec<TestCase>,
    /// The others: (index in the candidates, why).
    pub dropped: Vec<(usize, DropReason)>,
}

impl Validated {
    /// The record of this validation of the generation `key` (digest) for `problem`, with the
    /// reference `basis` (see [`reference_basis`]), out of `candidates` tests.
    pub fn record(
        &self,
        key: String,
        problem: String,
        basis: String,
        candidates: usize,
    ) -> Validation {
        Validation {
            key,
            problem,
            method: Method::Reference,
            basis,
            kept: (0..candidates)
                .filter(|i| !self.dropped.iter().any(|(d, _)| d == i))
                .collect(),
            dropped: self.dropped.clone(),
            note: None,
            at: 0,
        }
    }
}

/// What identifies a reference validation besides the generation: sha256 of the reference and
/// the setup, hex.
pub fn reference_basis(reference: &str, setup: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(reference);
    h.update([0]);
    h.update(setup.unwrap_or(""));
    hex::encode(h.finalize())
}

/// Keep the tests `reference` passes on two runs under different seeds.
pub async fn with_reference(
    sandbox: &Sandbox,
    reference: &str,
    setup: Option<&str>,
    tests: &[TestCase],
    limits: Option<&Limits>,
) -> Result<Validated, SandboxError> {
    let runs = twice(
        sandbox,
        "testgen-reference",
        reference,
        setup,
        tests,
        limits,
    )
    .await?;
    let mut out = Validated {
        kept: Vec::new(),
        dropped: Vec::new(),
    };
    for (i, test) in tests.iter().enumerate() {
        if !runs.stable[i] {
            out.dropped.push((i, DropReason::Nondeterministic));
        } else if runs.passed[i] {
            out.kept.push(test.clone());
        } else {
            out.dropped.push((i, DropReason::ReferenceFails));
        }
    }
    Ok(out)
}
