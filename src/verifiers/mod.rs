//! The [`Verifier`] trait, what verifiers share ([`Context`], [`Verdict`]), and the registry of
//! built-in verifiers.
//!
//! | name     | file          | what it checks                                             |
//! |----------|---------------|------------------------------------------------------------|
//! | `format` | `format.rs`   | R1 `<think>…</think>` structure and reasoning language     |
//! | `parse`  | `parse.rs`    | the answer is Python that parses (tree-sitter-python)      |
//! | `match`  | `matcher.rs`  | the final answer equals the rollout's `answer` (math)      |
//! | `tests`  | `tests.rs`    | the code passes the rollout's tests in the sandbox         |
//! | `timing` | `timing.rs`   | among correct programs, the cheaper (in fuel) scores higher |
//! | `generated` | `generated.rs` | no tests shipped: validated LLM-generated tests       |
//!
//! Every kind, built-in or a library user's, is an entry of the [`crate::registry`]: a name, a
//! description, whether it needs the sandbox, and a build function. Verifiers hand each other
//! typed values through the [`Context`] (the extracted answer, the tests that ran and their
//! report) and hand the chain's group pass a typed [`GroupInput`], never each other's JSON.

pub mod format;
pub mod generated;
pub mod kind;
pub mod matcher;
pub mod parse;
pub mod tests;
pub mod timing;

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::extract::Answer;
use crate::rollout::Rollout;
use crate::score::{Cost, Outcome, Score, TestReport};
use parse::Classification;
use tests::ResolvedTests;

/// What earlier steps of the chain established about a rollout.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The extracted answer (always present: extraction runs before every verifier).
    pub answer: Answer,
    /// The parse classification, once the `parse` verifier ran.
    pub parse: Option<Classification>,
    /// Test results, once the `tests` verifier ran.
    pub tests: Option<TestReport>,
    /// The tests the `tests` verifier ran (after dataset adapters and its `max_tests` cut) and
    /// their setup, in the order of [`Context::tests`]' results.
    pub resolved: Option<ResolvedTests>,
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
    /// For groupwise verifiers: what the chain keeps beside the score for
    /// [`Verifier::rescore_group`] (e.g. the fuel `timing` compares).
    pub group: Option<GroupInput>,
}

impl Verdict {
    /// A passing verdict with the given score.
    pub fn pass(score: f64, details: Value) -> Self {
        Verdict {
            score: score.clamp(0.0, 1.0),
            outcome: Outcome::Passed,
            skipped: false,
            details,
            group: None,
        }
    }

    /// A failing verdict with an outcome and score (0 unless partial credit applies).
    pub fn fail(outcome: Outcome, score: f64, details: Value) -> Self {
        Verdict {
            score: score.clamp(0.0, 1.0),
            outcome,
            skipped: false,
            details,
            group: None,
        }
    }

    /// verdict itself could not judge the rollout (a dead sandbox worker, a runtime that failed
    /// its self-test, an internal error): the chain stops and the score gets the `error`
    /// outcome with no reward. Never use it for a program's own failure (timeout, crash).
    pub fn error(reason: impl Into<String>) -> Self {
        Verdict::fail(
            Outcome::Error,
            0.0,
            serde_json::json!({"error": reason.into()}),
        )
    }

    /// The same verdict carrying `input` for the chain's group pass.
    pub fn with_group_input(mut self, input: GroupInput) -> Self {
        self.group = Some(input);
        self
    }

    /// The verifier did not apply to this rollout.
    pub fn skip(details: Value) -> Self {
        Verdict {
            score: 0.0,
            outcome: Outcome::Passed,
            skipped: true,
            details,
            group: None,
        }
    }
}

/// A typed value a groupwise verifier keeps beside one rollout's score until the group pass
/// ([`Verifier::rescore_group`]); the verifier reads it back with [`GroupInput::get`].
#[derive(Clone)]
pub struct GroupInput(Arc<dyn Any + Send + Sync>);

impl GroupInput {
    /// Wrap `value`.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        GroupInput(Arc::new(value))
    }

    /// The value, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for GroupInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupInput(..)")
    }
}

impl PartialEq for GroupInput {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// One passing rollout of a group, as [`Verifier::rescore_group`] sees it: its score (to
/// adjust) and what this verifier's step kept for it, if anything.
#[derive(Debug)]
pub struct GroupMember<'a> {
    /// The rollout's score; the chain recomputes its reward afterwards.
    pub score: &'a mut Score,
    /// The step's [`Verdict::group`], if it set one.
    pub input: Option<&'a GroupInput>,
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
    /// all passed; each member carries the [`GroupInput`] this step returned for it. Called only
    /// when [`Verifier::is_groupwise`] is true; the chain recomputes the rewards afterwards.
    fn rescore_group(&self, step: &str, group: &mut [GroupMember<'_>]) {
        let _ = (step, group);
    }
}
