//! The `timing` verifier: among correct programs, prefer the cheaper one — deterministically.
//!
//! ## What it checks
//! The cost of the candidate's own work on the tests, measured in wasmtime **fuel** (executed
//! WebAssembly instructions, with interpreter start-up and harness overhead subtracted; see
//! [`crate::sandbox`]). Fuel is the same on every run of the same program on the same input, so
//! the reward does not carry the noise of wall-clock time. Wall time is reported beside it.
//!
//! When some tests are marked `"timing": true` (bigger inputs, so that O(n²) and O(n log n)
//! differ), only those count; otherwise every test counts.
//!
//! ## Reward
//! Runs only when every test passed; a rollout with failing tests scores 0 (no speed bonus), one
//! with no tests is skipped. With `b` the baseline's fuel and `c` the candidate's:
//!
//! ```text
//! score = min(1, (b + 1) / (c + 1))
//! ```
//!
//! bounded in (0, 1], 1 when the candidate is at least as cheap as the baseline, monotone
//! decreasing in `c` (half the score at twice the baseline's cost). The baseline is one of:
//! - `reference`: the rollout's `reference` solution run on the same tests (its fuel cached per
//!   reference, setup and tests); a reference that fails its own tests gives no baseline
//!   (skipped, with the reason);
//! - `group`: the cheapest passing rollout of the same problem in the same batch (gRPC
//!   `ScoreBatch`, or a `verdict score --group-window` of lines), so the cheapest scores 1; a
//!   problem is the `problem_id`, else the prompt ([`Rollout::problem_key`]); a rollout with
//!   neither keeps 1;
//! - `budget`: an absolute fuel budget: the rollout's `fuel_budget` field, else `budget_fuel`.
//!
//! Its default weight is small (0.1) so it refines correctness rather than replacing it.
//!
//! It reads the tests the `tests` step ran and their report from the [`Context`], so a chain
//! must have a `tests` step before `timing` (the config rejects one without).
//!
//! ## Failure modes
//! Skipped without a baseline (no reference, no budget) or without tests; 0 when a test failed.
//! A sandbox failure while running the reference is verdict's own: [`Verdict::error`].
//!
//! ## Example
//! ```toml
//! [[verifier]]
//! kind = "timing"
//! weight = 0.1
//! baseline = "reference"
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::kind::{settings_of, BuildContext, BuildError, Kind};
use super::{Context, GroupInput, GroupMember, Verdict, Verifier};
use crate::rollout::{Limits, ProblemKey, Rollout, TestCase};
use crate::sandbox::{RunJob, Sandbox};
use crate::score::Outcome;

/// What the candidate's cost is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The rollout's reference solution on the same tests.
    Reference,
    /// The cheapest passing rollout of the same problem in the batch.
    Group,
    /// An absolute fuel budget.
    Budget,
}

/// Settings of the `timing` verifier.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// The baseline: `reference`, `group` or `budget`. Default: `reference`.
    pub baseline: Baseline,
    /// Fuel budget for `budget` (and the fallback of `reference` when a rollout has no
    /// reference) where the rollout has no `fuel_budget`. Default: unset.
    pub budget_fuel: Option<u64>,
    /// How many reference costs to keep in memory. Default: 10000.
    pub cache_entries: usize,
}

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            baseline: Baseline::Reference,
            budget_fuel: None,
            cache_entries: 10_000,
        }
    }
}

/// The `timing` kind: after `tests`, whose report it reads.
pub fn kind() -> Kind {
    Kind::new(
        "timing",
        "among correct programs, prefers the cheaper one (deterministic wasm fuel)",
        |settings, cx| Ok(Box::new(settings_of::<TimingConfig>(settings)?.build(cx)?)),
    )
    .with_sandbox()
    .requiring(&["tests"])
}

impl TimingConfig {
    /// Validate the settings and build the verifier around the shared sandbox.
    pub fn build(&self, cx: &BuildContext<'_>) -> Result<TimingVerifier, BuildError> {
        let sandbox = cx.sandbox("timing")?;
        if self.baseline == Baseline::Budget && self.budget_fuel == Some(0) {
            return Err(BuildError("budget_fuel must be positive".into()));
        }
        Ok(TimingVerifier {
            sandbox: sandbox.clone(),
            baseline: self.baseline,
            budget_fuel: self.budget_fuel,
            cache_entries: self.cache_entries.max(1),
            reference_cost: Mutex::new(HashMap::new()),
        })
    }
}

/// The `timing` verifier (see the module docs).
#[derive(Debug)]
pub struct TimingVerifier {
    sandbox: Sandbox,
    baseline: Baseline,
    budget_fuel: Option<u64>,
    cache_entries: usize,
    /// Reference fuel (or why there is none), keyed by a hash of reference, setup and tests.
    reference_cost: Mutex<HashMap<[u8; 32], Result<u64, String>>>,
}

/// What `timing` with `baseline = "group"` keeps beside a provisional score for the group pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupFuel(pub u64);

/// The timing score for cost `c` against baseline `b` (see the module docs).
pub fn timing_score(baseline: u64, cost: u64) -> f64 {
    ((baseline as f64 + 1.0) / (cost as f64 + 1.0)).min(1.0)
}

/// Indexes of the tests that count for cost: the timing tests if any, else all.
fn counted(tests: &[TestCase]) -> Vec<usize> {
    let timing: Vec<usize> = (0..tests.len()).filter(|&i| tests[i].is_timing()).collect();
    if timing.is_empty() {
        (0..tests.len()).collect()
    } else {
        timing
    }
}

impl TimingVerifier {
    async fn reference_fuel(
        &self,
        rollout: &Rollout,
        reference: &str,
        tests: &[TestCase],
        setup: Option<&str>,
        limits: Option<&Limits>,
        counted: &[usize],
    ) -> Result<u64, ReferenceFailure> {
        let mut h = Sha256::new();
        h.update(reference.as_bytes());
        h.update([0]);
        h.update(setup.unwrap_or("").as_bytes());
        h.update([0]);
        h.update(rollout.judge_setup.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(tests).expect("tests serialize"));
        let key: [u8; 32] = h.finalize().into();
        if let Some(hit) = self.reference_cost.lock().expect("not poisoned").get(&key) {
            return hit.clone().map_err(ReferenceFailure::Fails);
        }
        // The reference is seeded by its problem, not by the rollout, so every rollout of the
        // problem sees the same reference cost.
        let problem = match rollout.problem_key() {
            Some(ProblemKey::Id(text) | ProblemKey::Prompt(text)) => text,
            None => String::new(),
        };
        let seed_id = format!("reference:{problem}");
        let job = RunJob {
            id: &seed_id,
            program: reference,
            setup,
            judge_setup: rollout.judge_setup.as_deref(),
            tests,
            limits,
            stop_on_failure: true,
        };
        let result = match self.sandbox.run(&job).await {
            Ok(report) if report.outcome == Outcome::Passed => {
                Ok(counted.iter().map(|&i| report.tests.results[i].fuel).sum())
            }
            Ok(report) => Err(format!(
                "the reference fails its own tests: {}",
                report.message.unwrap_or_else(|| report.outcome.to_string())
            )),
            Err(e) => {
                return Err(ReferenceFailure::Sandbox(format!(
                    "sandbox failure running the reference: {e}"
                )))
            }
        };
        let mut cache = self.reference_cost.lock().expect("not poisoned");
        if cache.len() >= self.cache_entries {
            cache.clear();
        }
        cache.insert(key, result.clone());
        result.map_err(ReferenceFailure::Fails)
    }

    fn budget_for(&self, rollout: &Rollout) -> Option<u64> {
        rollout
            .extra
            .get("fuel_budget")
            .and_then(|v| v.as_u64())
            .or(self.budget_fuel)
    }
}

/// Why the reference gave no baseline.
enum ReferenceFailure {
    /// It fails its own tests (cached: the rollout is skipped).
    Fails(String),
    /// The sandbox failed (verdict's own failure: not cached).
    Sandbox(String),
}

#[async_trait]
impl Verifier for TimingVerifier {
    fn kind(&self) -> &'static str {
        "timing"
    }

    async fn verify(&self, rollout: &Rollout, ctx: &mut Context) -> Verdict {
        let Some(report) = &ctx.tests else {
            return Verdict::skip(json!({"reason": "no tests ran"}));
        };
        if report.total == 0 {
            return Verdict::skip(json!({"reason": "no tests ran"}));
        }
        if report.passed < report.total {
            return Verdict::pass(
                0.0,
                json!({"reason": "not every test passed: no speed bonus"}),
            );
        }
        let Some(resolved) = &ctx.resolved else {
            return Verdict::skip(json!({"reason": "no tests ran"}));
        };
        let n = report.total.min(resolved.tests.len());
        let tests = &resolved.tests[..n];
        let counted = counted(tests);
        let fuel: u64 = counted
            .iter()
            .filter_map(|&i| report.results.get(i))
            .map(|r| r.fuel)
            .sum();
        let timing_tests = tests.iter().filter(|t| t.is_timing()).count();
        let mut details = json!({
            "baseline": self.baseline,
            "fuel": fuel,
            "counted_tests": counted.len(),
            "timing_tests": timing_tests,
        });
        let baseline = match self.baseline {
            Baseline::Group => {
                // Provisional: the chain compares the group once every rollout is scored (the
                // flag in the details tells readers; the group pass reads the typed input).
                details["provisional"] = json!(true);
                return Verdict::pass(1.0, details)
                    .with_group_input(GroupInput::new(GroupFuel(fuel)));
            }
            Baseline::Budget => match self.budget_for(rollout) {
                Some(b) => b,
                None => {
                    details["reason"] =
                        json!("no fuel_budget on the rollout and no budget_fuel configured");
                    return Verdict::skip(details);
                }
            },
            Baseline::Reference => match rollout.reference.as_deref() {
                Some(reference) => {
                    match self
                        .reference_fuel(
                            rollout,
                            reference,
                            tests,
                            resolved.setup.as_deref(),
                            resolved.limits.as_ref(),
                            &counted,
                        )
                        .await
                    {
                        Ok(b) => b,
                        Err(ReferenceFailure::Fails(reason)) => {
                            details["reason"] = json!(reason);
                            return Verdict::skip(details);
                        }
                        Err(ReferenceFailure::Sandbox(reason)) => return Verdict::error(reason),
                    }
                }
                None => match self.budget_for(rollout) {
                    Some(b) => b,
                    None => {
                        details["reason"] =
                            json!("the rollout has no reference (and no fuel budget)");
                        return Verdict::skip(details);
                    }
                },
            },
        };
        details["baseline_fuel"] = json!(baseline);
        details["ratio"] =
            json!(((fuel as f64 + 1.0) / (baseline as f64 + 1.0) * 1000.0).round() / 1000.0);
        Verdict::pass(timing_score(baseline, fuel), details)
    }

    fn describe(&self) -> String {
        let b = match self.baseline {
            Baseline::Reference => "reference solution",
            Baseline::Group => "cheapest passing rollout of the group",
            Baseline::Budget => "fuel budget",
        };
        format!("score = min(1, (baseline+1)/(fuel+1)), baseline = {b}")
    }

    fn is_groupwise(&self) -> bool {
        self.baseline == Baseline::Group
    }

    fn rescore_group(&self, step: &str, group: &mut [GroupMember<'_>]) {
        let fuel_of = |m: &GroupMember<'_>| m.input.and_then(|g| g.get::<GroupFuel>()).map(|f| f.0);
        let Some(best) = group.iter().filter_map(fuel_of).min() else {
            return;
        };
        for member in group.iter_mut() {
            let Some(fuel) = fuel_of(member) else {
                continue;
            };
            if let Some(v) = member.score.verifiers.iter_mut().find(|v| v.name == step) {
                v.score = timing_score(best, fuel);
                if let Some(details) = v.details.as_object_mut() {
                    details.remove("provisional");
                    details.insert("baseline_fuel".into(), json!(best));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_bounded_and_monotone() {
        assert_eq!(timing_score(1000, 1000), 1.0);
        assert_eq!(
            timing_score(1000, 10),
            1.0,
            "cheaper than the baseline caps at 1"
        );
        assert!(
            (timing_score(999, 1999) - 0.5).abs() < 1e-12,
            "twice the cost, half the score"
        );
        let mut last = 1.0;
        for c in (0..100_000).step_by(997) {
            let s = timing_score(5000, c);
            assert!(s <= last && s > 0.0);
            last = s;
        }
        assert_eq!(timing_score(0, 0), 1.0);
    }

    #[test]
    fn timing_tests_are_the_only_ones_counted_when_present() {
        let t = |timing| TestCase::Assert {
            code: "pass".into(),
            timing,
        };
        assert_eq!(counted(&[t(false), t(false)]), [0, 1]);
        assert_eq!(counted(&[t(false), t(true), t(true)]), [1, 2]);
    }

    #[test]
    fn config_rejects_unknown_baseline() {
        assert!(toml::from_str::<TimingConfig>("baseline = \"vibes\"").is_err());
        let c: TimingConfig = toml::from_str("baseline = \"group\"").unwrap();
        assert_eq!(c.baseline, Baseline::Group);
    }
}
