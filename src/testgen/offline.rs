//! Offline generation (`verdict tests generate`): make a dataset verifiable once, then score it
//! anywhere without an LLM.
//!
//! For every problem whose rollouts have no tests (grouped by `problem_id`, else prompt), tests
//! are generated (through the cache) and validated against the problem's `reference`; when at
//! least `min_tests` survive, they become the `tests` of each of its rollouts. A problem
//! without a reference is left as it is: with no programs to agree, nothing would vouch for its
//! tests, and shipping unvalidated tests as data is what this tool exists to avoid.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::generator::{Problem, Testgen, TestgenError};
use super::validate;
use crate::adapters::resolve_tests;
use crate::rollout::{ProblemKey, Rollout};
use crate::sandbox::{Sandbox, SandboxError};

/// What happened to one problem.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// The problem's `problem_id`, else its first rollout's id.
    pub problem: String,
    /// `tests_written`, `tests_unavailable` (too few survived), `no_reference`.
    pub status: &'static str,
    /// Candidates read from the answer.
    pub generated: usize,
    /// Tests written into its rollouts.
    pub kept: usize,
    /// Dropped candidates by reason.
    pub dropped: BTreeMap<String, usize>,
}

/// Why offline generation stopped: verdict's own failure.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// Generation failed.
    #[error("problem {0}: {1}")]
    Generate(String, TestgenError),
    /// The sandbox failed.
    #[error("problem {0}: sandbox failure: {1}")]
    Sandbox(String, SandboxError),
}

/// Fill in the `tests` of the rollouts that have none, problem by problem; `done` is called
/// after each problem (for a progress bar).
pub async fn fill_tests(
    sandbox: &Sandbox,
    testgen: &Testgen,
    rollouts: &mut [Rollout],
    min_tests: usize,
    mut done: impl FnMut(),
) -> Result<Vec<Generated>, OfflineError> {
    let mut order: Vec<Option<ProblemKey>> = Vec::new();
    let mut groups: HashMap<Option<ProblemKey>, Vec<usize>> = HashMap::new();
    for (i, r) in rollouts.iter().enumerate() {
        if resolve_tests(r, true).is_ok_and(|a| !a.tests.is_empty()) {
            continue;
        }
        let key = r.problem_key();
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(i);
    }
    let mut out = Vec::new();
    for key in order {
        let members = &groups[&key];
        let first = &rollouts[members[0]];
        let name = first.problem_name().to_string();
        let problem = Problem::of(first, testgen.shape_choice());
        let generated = testgen
            .generate(&problem)
            .await
            .map_err(|e| OfflineError::Generate(name.clone(), e))?;
        let candidates = &generated.extraction.tests;
        let mut dropped: BTreeMap<String, usize> = generated
            .extraction
            .dropped
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), *n))
            .collect();
        let mut result = Generated {
            problem: name.clone(),
            status: "no_reference",
            generated: candidates.len(),
            kept: 0,
            dropped: BTreeMap::new(),
        };
        if let Some(reference) = first.reference.clone() {
            let setup = resolve_tests(first, true).ok().and_then(|a| a.setup);
            let v = validate::with_reference(
                sandbox,
                &reference,
                setup.as_deref(),
                candidates,
                first.limits.as_ref(),
            )
            .await
            .map_err(|e| OfflineError::Sandbox(name.clone(), e))?;
            testgen.record(v.record(
                generated.key.digest(),
                name.clone(),
                validate::reference_basis(&reference, setup.as_deref()),
                candidates.len(),
            ));
            for (_, reason) in &v.dropped {
                *dropped.entry(reason.as_str().to_string()).or_default() += 1;
            }
            if v.kept.len() >= min_tests {
                for &i in members {
                    rollouts[i].tests = v.kept.clone();
                }
                result.status = "tests_written";
                result.kept = v.kept.len();
            } else {
                result.status = "tests_unavailable";
            }
        }
        result.dropped = dropped;
        out.push(result);
        done();
    }
    Ok(out)
}
