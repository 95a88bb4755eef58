//! What goes out: a [`Score`] per rollout, with the per-verifier breakdown.

use serde::{Deserialize, Serialize};

/// The single-word verdict on a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check that ran passed.
    Passed,
    /// At least one test (or a non-gating check) failed.
    Failed,
    /// No code found: prose, empty, or only reasoning.
    NotCode,
    /// Code, but of another language.
    NotPython,
    /// Python that does not parse.
    SyntaxError,
    /// The wall-clock or fuel budget ran out.
    Timeout,
    /// The memory cap was hit.
    MemoryLimit,
    /// The output cap was hit.
    OutputLimit,
    /// The program raised (or trapped) before the tests could judge it.
    RuntimeError,
    /// The input itself could not be scored (malformed line or request).
    InvalidInput,
    /// verdict itself could not judge the rollout (a sandbox worker died, the runtime failed its
    /// self-test, an internal error or panic). Says nothing about the rollout: its reward is
    /// `None` (`null` in JSONL) and a trainer should mask it out, not treat it as 0.
    Error,
    /// The problem ships no tests and too few generated tests survived validation to judge it
    /// (see the `generated` verifier). The reward is what the chain config says (the step
    /// skipped, or 0), never a silent 1.
    TestsUnavailable,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 12] = [
        Outcome::Passed,
        Outcome::Failed,
        Outcome::NotCode,
        Outcome::NotPython,
        Outcome::SyntaxError,
        Outcome::Timeout,
        Outcome::MemoryLimit,
        Outcome::OutputLimit,
        Outcome::RuntimeError,
        Outcome::InvalidInput,
        Outcome::Error,
        Outcome::TestsUnavailable,
    ];

    /// The snake_case name used in JSON and in the proto enum.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::NotCode => "not_code",
            Outcome::NotPython => "not_python",
            Outcome::SyntaxError => "syntax_error",
            Outcome::Timeout => "timeout",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::OutputLimit => "output_limit",
            Outcome::RuntimeError => "runtime_error",
            Outcome::InvalidInput => "invalid_input",
            Outcome::Error => "error",
            Outcome::TestsUnavailable => "tests_unavailable",
        }
    }

    /// Whether this outcome is verdict's own failure rather than a judgement of the rollout
    /// (only [`Outcome::Error`]); such scores carry no reward.
    pub fn is_verdict_failure(self) -> bool {
        self == Outcome::Error
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version of the reward semantics this build computes scores under: the rules that decide
/// a reward for the same data. It goes up whenever a change can give the same rollout another
/// reward or outcome; `CHANGELOG.md` (at the repository root) says what changed in each. Every
/// [`Score`] carries the version it was computed under, so a run that mixes versions shows it.
///
/// - 1: the rules before versioning (a record without a version was computed under them).
/// - 2: checkers validated on the expected output (`checker_raised`), a forged `stop` is a
///   failed test, Decimal/float comparison without exponent expansion, stdlib bindings only
///   where the program imports them, `null` means absent, a config without steps keeps the
///   default chain, a rollout without tests is `tests_unavailable`.
/// - 3: a problem is its `problem_id`, else its prompt, for every grouping (groupwise timing,
///   dual agreement on generated tests, the timing reference's seed); `bytearray`, `asyncio`,
///   PEP 758 `except A, B:`, large test arguments and output of exactly the cap are judged as
///   natively; a trailing usage example never replaces the solution.
/// - 4: callbacks (a test's objects handed to the program), identity within a call, records,
///   dates, enums and hashes across the boundary, data globals read again after a call, fuel
///   baselines that are lower bounds, the `pytest`/`unittest` test kinds (and the BigCodeBench
///   and KodCode `test` fields read as such), exact OpenRLHF labels.
pub const REWARD_SEMANTICS: u32 = 4;

/// The version of a record that carries none: it predates versioning (version 1).
pub const UNVERSIONED_SEMANTICS: u32 = 1;

fn unversioned() -> u32 {
    UNVERSIONED_SEMANTICS
}

/// The scored result of one rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The rollout's `id`.
    pub id: String,
    /// The scalar reward in [0, 1]; `None` (`null` in JSONL) when the outcome is
    /// [`Outcome::Error`]: verdict could not judge the rollout, so a trainer masks it out.
    pub reward: Option<f64>,
    /// The single-word verdict.
    pub outcome: Outcome,
    /// The reward-semantics version the score was computed under ([`REWARD_SEMANTICS`] for a
    /// score of this build; a record without one reads as [`UNVERSIONED_SEMANTICS`]).
    #[serde(default = "unversioned")]
    pub semantics: u32,
    /// One entry per verifier that ran (or was skipped), in chain order.
    #[serde(default)]
    pub verifiers: Vec<VerifierScore>,
    /// Per-test results, once tests ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestReport>,
    /// What scoring cost.
    #[serde(default)]
    pub cost: Cost,
    /// Why the input could not be scored (`invalid_input`) or why verdict could not judge it
    /// (`error`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Score {
    /// The record for an input that could not be scored: reward 0, outcome `invalid_input`.
    ///
    /// `id` is the rollout's own id where it has a non-empty one; otherwise the record is named
    /// by its position, `position` (1-based: the line number of a file, the index + 1 of a
    /// batch or stream message), as `input-N` — the one id scheme of every transport.
    pub fn invalid(id: Option<&str>, position: usize, error: impl Into<String>) -> Self {
        let id = match id {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => format!("input-{position}"),
        };
        Score {
            id,
            reward: Some(0.0),
            outcome: Outcome::InvalidInput,
            semantics: REWARD_SEMANTICS,
            verifiers: Vec::new(),
            tests: None,
            cost: Cost::default(),
            error: Some(error.into()),
        }
    }
}

impl Score {
    /// The record for a rollout verdict could not judge: outcome `error`, no reward, `reason`
    /// in `error`. Never a 0 that would look like a wrong answer.
    pub fn verdict_failure(id: impl Into<String>, reason: impl Into<String>) -> Self {
        Score {
            id: id.into(),
            reward: None,
            outcome: Outcome::Error,
            semantics: REWARD_SEMANTICS,
            verifiers: Vec::new(),
            tests: None,
            cost: Cost::default(),
            error: Some(reason.into()),
        }
    }
}

/// One verifier's contribution to a [`Score`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifierScore {
    /// The verifier's name as configured.
    pub name: String,
    /// Its score in [0, 1].
    pub score: f64,
    /// Its weight in the reward.
    pub weight: f64,
    /// Whether a failure of this verifier ends the chain.
    pub gate: bool,
    /// True where the verifier did not apply (e.g. no tests); it then counts for nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Structured findings (verifier-specific).
    #[serde(default)]
    pub details: serde_json::Value,
}

/// Per-test results of a sandbox run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that ran.
    pub total: usize,
    /// One entry per test, in order.
    pub results: Vec<TestResult>,
}

/// The result of one test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// Position of the test in the rollout's `tests`.
    pub index: usize,
    /// `assert`, `stdio`, `call`, `pytest` or `unittest`.
    pub kind: String,
    /// Whether it passed.
    pub passed: bool,
    /// What happened (`passed`, `failed`, `timeout`, `runtime_error`, …).
    pub outcome: Outcome,
    /// Why it failed: the exception, the first differing line, the mismatching value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Fuel the candidate's own work consumed in this test.
    #[serde(default)]
    pub fuel: u64,
    /// Wall time of this test, in milliseconds.
    #[serde(default)]
    pub wall_ms: f64,
    /// Partial credit in [0, 1) a checker gave a test that did not pass; counted by the pass
    /// fraction (a pass counts 1, any other failure 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// For an item of a test module (`pytest`, `unittest`): its name (`test_add`,
    /// `test_add[1-2]`, `TestCases.test_case_1`). A module gives one result per item, each with
    /// the module's `index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

/// What scoring a rollout cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// WebAssembly fuel consumed by the candidate's own work (deterministic).
    pub fuel: u64,
    /// Wall time of the whole chain, in milliseconds.
    pub wall_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_carries_its_semantics_version() {
        let line = serde_json::to_value(Score::invalid(Some("r"), 1, "bad")).unwrap();
        assert_eq!(line["semantics"], REWARD_SEMANTICS);
        let line = serde_json::to_value(Score::verdict_failure("r", "down")).unwrap();
        assert_eq!(line["semantics"], REWARD_SEMANTICS);
        // A record written before versioning reads as version 1.
        let old: Score = serde_json::from_str(
            r#"{"id": "r", "reward": 1.0, "outcome": "passed", "verifiers": [], "cost": {"fuel": 0, "wall_ms": 0.0}}"#,
        )
        .unwrap();
        assert_eq!(old.semantics, UNVERSIONED_SEMANTICS);
    }
}
