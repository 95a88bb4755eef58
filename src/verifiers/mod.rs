//! The [`Verifier`] trait, what verifiers share ([`Context`], [`Verdict`]), and the registry of
//! built-in verifiers.
//!
//! | name     | file          | what it checks                                             |
//! |----------|---------------|------------------------------------------------------------|
//! | `format` | `format.rs`   | R1 `<think>…</think>` structure and reasoning language     |
//! | `parse`  | `parse.rs`    | the answer is Python that parses (tree-sitter-python)      |
//! | `tests`  | `tests.rs`    | the code passes the rollout's tests in the sandbox         |
//! | `timing` | `timing.rs`   | among correct programs, the cheaper (in fuel) scores higher |
//!
//! Every kind is chosen by the one `match` in [`crate::config`]; plug-ins arrive as a
//! `Box<dyn Verifier>` through the same table.

pub mod format;
pub mod parse;
pub mod tests;
pub mod timing;

use async_trait::async_trait;
use serde_json::Value;

use crate::extract::Answer;
use crate::rollout::Rollout;
use crate::score::{Cost, Outcome, Score, TestReport};
use parse::Classification;

/// What earlier steps of the chain established about a rollout.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The extracted answer (always present: extraction runs before every verifier).
    pub answer: Answer,
    /// The parse classification, once the `parse` verifier ran.
    pub parse: Option<Classification>,
    /// Test results, once the `tests` verifier ran.
    pub tests: Option<TestReport>,
    /// Accumulated cost of sandbox work.
    pub cost: Cost,
}

/// A verifier's finding on one rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Score in [0, 1]. Ignored when `skipped`.
    pub score: f64,
    /// The outcome this verifier concluded. A gate whose verdict carries a non-`passed` outcome
    /// ends the chain with that outcome.
    pub outcome: Outcome,
    /// True where the verifier did not apply; it then counts for nothing in the reward.
    pub skipped: bool,
    /// Structured findings.
    pub details: Value,
}

impl Verdict {
    /// A passing verdict with the given score.
    pub fn pass(score: f64, details: Value) -> Self {
        Verdict {
            score: score.clamp(0.0, 1.0),
            outcome: Outcome::Passed,
            skipped: false,
            details,
        }
    }

    /// A failing verdict with an outcome and score (0 unless partial credit applies).
    pub fn fail(outcome: Outcome, score: f64, details: Value) -> Self {
        Verdict {
            score: score.clamp(0.0, 1.0),
            outcome,
            skipped: false,
            details,
        }
    }

    /// The verifier did not apply to this rollout.
    pub fn skip(details: Value) -> Self {
        Verdict {
            score: 0.0,
            outcome: Outcome::Passed,
            skipped: true,
            details,
        }
    }
}

/// A check on a rollout that yields a score in [0, 1].
///
/// Verifiers see the rollout and the [`Context`] built by the steps before them; they may add to
/// the context (the parse result, the test report) for the steps after them. They know nothing of
/// gRPC, JSONL or each other's implementation.
#[async_trait]
pub trait Verifier: Send + Sync {
    /// The kind of verifier (`format`, `parse`, …), as written in the config.
    fn kind(&self) -> &'static str;

    /// Check one rollout.
    async fn verify(&self, rollout: &Rollout, ctx: &mut Context) -> Verdict;

    /// A one-line, human-readable summary of the effective settings, for `verdict verifiers`.
    fn describe(&self) -> String {
        String::new()
    }

    /// Whether this verifier compares the rollouts of one group (same `problem_id`) after each
    /// has been scored; the chain then calls [`Verifier::rescore_group`].
    fn is_groupwise(&self) -> bool {
        false
    }

    /// Adjust this verifier's entry (`step`, by name) in the scores of one group of rollouts that
    /// all passed. Called only when [`Verifier::is_groupwise`] is true; the chain recomputes the
    /// rewards afterwards.
    fn rescore_group(&self, step: &str, group: &mut [&mut Score]) {
        let _ = (step, group);
    }
}
