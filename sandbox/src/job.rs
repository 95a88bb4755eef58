//! What the sandbox is asked and what it answers: one program and its tests ([`RunJob`]), what
//! running them found ([`RunReport`]), and the seed a rollout's randomness derives from.

use sha2::{Digest, Sha256};
use verdict_contract::rollout::{Limits, TestCase};
use verdict_contract::score::{Outcome, TestReport};

/// One program and its tests.
#[derive(Debug, Clone, Copy)]
pub struct RunJob<'a> {
    /// The rollout id: seeds `random` (unless the config fixes a seed) and labels logs.
    pub id: &'a str,
    /// The candidate's code.
    pub program: &'a str,
    /// Trusted code both sides see: run after the program in the candidate (imports, shared
    /// classes), and in the judge before each assert test.
    pub setup: Option<&'a str>,
    /// Trusted code only the judge sees, run after `setup` before each assert test: test
    /// tables and expected data the program must never read.
    pub judge_setup: Option<&'a str>,
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
    /// Fraction of tests passed (0 when there are none), a checker's partial credit counted
    /// for the tests it gave one.
    pub fn pass_fraction(&self) -> f64 {
        if self.tests.total == 0 {
            0.0
        } else {
            let partial: f64 = self
                .tests
                .results
                .iter()
                .filter(|r| !r.passed)
                .filter_map(|r| r.score)
                .map(|s| s.clamp(0.0, 1.0))
                .sum();
            (self.tests.passed as f64 + partial) / self.tests.total as f64
        }
    }
}

/// The seed for a rollout: the first 8 bytes of `sha256("verdict-seed:" + id)`.
pub(crate) fn seed_for(id: &str) -> u64 {
    let d = Sha256::digest(format!("verdict-seed:{id}").as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
