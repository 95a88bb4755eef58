//! The [`Chain`]: runs verifiers in order, applies gates, weighs scores into one reward.
//!
//! ## Reward
//! `reward = Σ wᵢ·sᵢ / Σ wᵢ` over the steps that ran, were not skipped and have `wᵢ > 0` (the
//! weighted mean). A chain where no weighted step ran gives 1 when every step passed and 0
//! otherwise. A failed gate ends the chain at once with reward 0: nothing after it runs, so no
//! sandbox time is spent on prose.
//!
//! ## Outcome
//! The outcome of the failed gate, else the first non-`passed` outcome of any step, else
//! `passed` ("every check that ran passed"). A step that did not apply may still say why in its
//! outcome (`tests_unavailable`: the rollout has no tests for the `tests` step); a later step
//! that runs tests for the rollout (`generated`) overrules it.
//!
//! ## When verdict fails
//! A step that cannot judge ([`crate::Verdict::error`]: a dead sandbox worker, a runtime that failed its
//! self-test) and a panic inside any step end the chain with the `error` outcome and no reward
//! (`null` in JSONL): the rollout is to be masked, not scored 0. [`Chain::score`] catches the
//! panic, so one bad rollout never takes down the batch or the server.
//!
//! ## Batches and groups
//! [`Chain::score_batch`] (and [`Chain::score_batch_with`], which the gRPC `ScoreBatch` and the
//! JSONL loop use) scores many rollouts, then lets the groupwise steps compare the passing
//! rollouts of each `problem_id` ([`Chain::rescore_groups`]) through the typed
//! [`GroupInput`]s kept beside each score ([`Scored`]).

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use tracing::{debug, error};

use crate::extract::extract;
use crate::rollout::{ProblemKey, Rollout};
use crate::sandbox::Sandbox;
use crate::score::{Outcome, Score, VerifierScore};
use crate::verifiers::parse::parses_as_python;
use crate::verifiers::{Context, GroupInput, GroupMember, Verifier};

/// One configured step of the chain.
pub struct Step {
    /// Name shown in scores (defaults to the verifier kind).
    pub name: String,
    /// The verifier.
    pub verifier: Box<dyn Verifier>,
    /// Weight in the reward (≥ 0).
    pub weight: f64,
    /// Whether a failure ends the chain with reward 0.
    pub gate: bool,
    /// For gates: a score below this also counts as a failure.
    pub min_score: f64,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("kind", &self.verifier.kind())
            .field("weight", &self.weight)
            .field("gate", &self.gate)
            .field("min_score", &self.min_score)
            .finish()
    }
}

/// A score with what the chain keeps beside it until the group pass: the rollout's problem
/// ([`Rollout::problem_key`]) and the [`GroupInput`] of each groupwise step (by step index).
#[derive(Debug, Clone)]
pub struct Scored {
    /// The score.
    pub score: Score,
    group: Option<ProblemKey>,
    inputs: Vec<(usize, GroupInput)>,
}

impl Scored {
    /// A score that takes no part in the group pass (e.g. an `invalid_input` record).
    pub fn alone(score: Score) -> Self {
        Scored {
            score,
            group: None,
            inputs: Vec::new(),
        }
    }

    /// The score, without what the group pass needed.
    pub fn into_score(self) -> Score {
        self.score
    }
}

/// An ordered list of verifiers that turns a [`Rollout`] into a [`Score`].
#[derive(Debug, Default)]
pub struct Chain {
    steps: Vec<Step>,
    /// The sandbox its steps run code in, when it was built with one (read by `/metrics`).
    sandbox: Option<Sandbox>,
}

impl Chain {
    /// A chain of the given steps, run in order.
    pub fn new(steps: Vec<Step>) -> Self {
        Chain {
            steps,
            sandbox: None,
        }
    }

    /// The same chain, noting the sandbox its steps run code in (a server shows its load).
    pub fn with_sandbox(mut self, sandbox: Option<Sandbox>) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// The sandbox its steps run code in, when it was built with one.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether any step compares rollouts within a group (see [`Chain::score_batch`]).
    pub fn has_groupwise_steps(&self) -> bool {
        self.steps.iter().any(|s| s.verifier.is_groupwise())
    }

    /// Score a batch: every rollout concurrently (each on its own task), then the groupwise steps
    /// compare the passing rollouts of each `problem_id`. Scores are in input order.
    pub async fn score_batch(self: &Arc<Self>, rollouts: Vec<Rollout>) -> Vec<Score> {
        let items = rollouts.into_iter().map(Ok).collect();
        self.score_batch_with(items, |rollout| {
            let chain = Arc::clone(self);
            async move {
                match tokio::spawn(async move { chain.score_scored(&rollout).await }).await {
                    Ok(scored) => scored,
                    Err(join) => Scored::alone(Score::verdict_failure(
                        "",
                        format!("internal error: the scoring task ended: {join}"),
                    )),
                }
            }
        })
        .await
    }

    /// The chain's batch function: `items` are rollouts or the records already decided for
    /// them (invalid input); `run` scores one rollout (with [`Chain::score_scored`], on whatever
    /// task and under whatever admission the caller wants). All run concurrently; then the
    /// group pass; scores come back in input order. Dropping the future drops every `run`
    /// future.
    pub async fn score_batch_with<F, Fut>(
        &self,
        items: Vec<Result<Rollout, Box<Score>>>,
        mut run: F,
    ) -> Vec<Score>
    where
        F: FnMut(Rollout) -> Fut,
        Fut: Future<Output = Scored>,
    {
        let futures: Vec<_> = items
            .into_iter()
            .map(|item| match item {
                Ok(rollout) => {
                    let id = rollout.id.clone();
                    futures::future::Either::Left(run(rollout).map(move |mut s| {
                        if s.score.id.is_empty() {
                            s.score.id = id;
                        }
                        s
                    }))
                }
                Err(score) => {
                    futures::future::Either::Right(futures::future::ready(Scored::alone(*score)))
                }
            })
            .collect();
        let mut scored = futures::future::join_all(futures).await;
        self.rescore_groups(&mut scored);
        scored.into_iter().map(Scored::into_score).collect()
    }

    /// Apply the groupwise steps to already-scored rollouts of one problem each
    /// ([`Rollout::problem_key`]: the `problem_id`, else the prompt). Only rollouts that passed (or are `tests_unavailable`, pending the `generated` step's agreement) take
    /// part; their rewards are recomputed afterwards.
    pub fn rescore_groups(&self, scored: &mut [Scored]) {
        if !self.has_groupwise_steps() {
            return;
        }
        let mut by_group: HashMap<ProblemKey, Vec<&mut Scored>> = HashMap::new();
        for s in scored.iter_mut() {
            // `tests_unavailable` takes part: without a reference, the `generated` step decides
            // a rollout's tests in this pass.
            if let (Some(g), Outcome::Passed | Outcome::TestsUnavailable) =
                (s.group.clone(), s.score.outcome)
            {
                by_group.entry(g).or_default().push(s);
            }
        }
        for members in by_group.values_mut() {
            for (index, step) in self.steps.iter().enumerate() {
                if !step.verifier.is_groupwise() {
                    continue;
                }
                let mut view: Vec<GroupMember<'_>> = members
                    .iter_mut()
                    .map(|m| {
                        let Scored { score, inputs, .. } = &mut **m;
                        GroupMember {
                            score,
                            input: inputs.iter().find(|(i, _)| *i == index).map(|(_, g)| g),
                        }
                    })
                    .collect();
                step.verifier.rescore_group(&step.name, &mut view);
            }
            for m in members.iter_mut() {
                let all_passed = if m.score.outcome == Outcome::Passed {
                    1.0
                } else {
                    0.0
                };
                m.score.reward = Some(weighted_mean(&m.score.verifiers).unwrap_or(all_passed));
            }
        }
    }

    /// Score one rollout. Never fails: a bad candidate is a verdict, not an error; when
    /// verdict itself fails (a step's [`crate::Verdict::error`], or a panic in any step) the
    /// score has the `error` outcome and no reward.
    pub async fn score(&self, rollout: &Rollout) -> Score {
        self.score_scored(rollout).await.into_score()
    }

    /// [`Chain::score`], keeping what the group pass needs beside the score.
    pub async fn score_scored(&self, rollout: &Rollout) -> Scored {
        match AssertUnwindSafe(self.run_steps(rollout))
            .catch_unwind()
            .await
        {
            Ok(scored) => scored,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                error!(id = %rollout.id, panic = %what, "Scoring panicked.");
                Scored::alone(Score::verdict_failure(
                    rollout.id.clone(),
                    format!("internal error: scoring panicked: {what}"),
                ))
            }
        }
    }

    async fn run_steps(&self, rollout: &Rollout) -> Scored {
        let started = Instant::now();
        let mut ctx = Context {
            answer: extract(&rollout.completion, parses_as_python),
            ..Context::default()
        };
        let mut verifiers = Vec::with_capacity(self.steps.len());
        let mut inputs = Vec::new();
        let mut outcome = Outcome::Passed;
        // Whether `outcome` is that of a step that did not apply (`tests_unavailable`).
        let mut outcome_of_skipped = false;
        let mut gate_failed = false;
        let mut failure = None;
        let mut invalid = None;
        for (index, step) in self.steps.iter().enumerate() {
            let had_tests = ctx.tests.is_some();
            let verdict = step.verifier.verify(rollout, &mut ctx).await;
            let reason = |default: &str| {
                let reason = verdict.details.get("error").and_then(|e| e.as_str());
                format!("{}: {}", step.name, reason.unwrap_or(default))
            };
            if verdict.outcome.is_verdict_failure() {
                failure = Some(reason("the verifier could not judge the rollout"));
            } else if verdict.outcome == Outcome::InvalidInput && invalid.is_none() {
                invalid = Some(reason("the verifier found the input invalid"));
            }
            let failed = !verdict.skipped
                && (verdict.outcome != Outcome::Passed
                    || (step.gate && verdict.score < step.min_score));
            verifiers.push(VerifierScore {
                name: step.name.clone(),
                score: verdict.score,
                weight: step.weight,
                gate: step.gate,
                skipped: verdict.skipped,
                details: verdict.details,
            });
            if let Some(input) = verdict.group {
                inputs.push((index, input));
            }
            if failure.is_some() {
                break;
            }
            if outcome_of_skipped && !had_tests && ctx.tests.is_some() {
                // This step ran tests for a rollout an earlier step found none for.
                outcome = Outcome::Passed;
                outcome_of_skipped = false;
            }
            if verdict.skipped && verdict.outcome != Outcome::Passed && outcome == Outcome::Passed {
                // A step that did not apply but says why in an outcome (`tests_unavailable`):
                // it counts for nothing in the reward, and the outcome is not `passed`.
                outcome = verdict.outcome;
                outcome_of_skipped = true;
            }
            if failed {
                let step_outcome = match verdict.outcome {
                    Outcome::Passed => Outcome::Failed,
                    other => other,
                };
                if step.gate {
                    outcome = step_outcome;
                    gate_failed = true;
                    debug!(id = %rollout.id, step = %step.name, %outcome, "Gate failed.");
                    break;
                }
                if outcome == Outcome::Passed {
                    outcome = step_outcome;
                }
            }
        }
        let mut cost = ctx.cost;
        cost.wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        let reward = if failure.is_some() {
            None
        } else if gate_failed {
            Some(0.0)
        } else {
            Some(
                weighted_mean(&verifiers).unwrap_or(if outcome == Outcome::Passed {
                    1.0
                } else {
                    0.0
                }),
            )
        };
        Scored {
            score: Score {
                id: rollout.id.clone(),
                reward,
                outcome: if failure.is_some() {
                    Outcome::Error
                } else {
                    outcome
                },
                semantics: crate::score::REWARD_SEMANTICS,
                verifiers,
                tests: ctx.tests,
                cost,
                error: failure.or(invalid.filter(|_| outcome == Outcome::InvalidInput)),
            },
            group: rollout.problem_key(),
            inputs,
        }
    }
}

fn weighted_mean(scores: &[VerifierScore]) -> Option<f64> {
    let (num, den) = scores
        .iter()
        .filter(|v| !v.skipped && v.weight > 0.0)
        .fold((0.0, 0.0), |(n, d), v| {
            (n + v.weight * v.score, d + v.weight)
        });
    (den > 0.0).then(|| (num / den).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifiers::Verdict;
    use async_trait::async_trait;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A verifier that returns a fixed verdict and counts its calls.
    struct Fixed {
        verdict: Verdict,
        calls: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Verifier for Fixed {
        fn kind(&self) -> &'static str {
            "fixed"
        }
        async fn verify(&self, _r: &Rollout, _c: &mut Context) -> Verdict {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.verdict.clone()
        }
    }

    fn step(name: &str, verdict: Verdict, weight: f64, gate: bool) -> (Step, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let step = Step {
            name: name.into(),
            verifier: Box::new(Fixed {
                verdict,
                calls: calls.clone(),
            }),
            weight,
            gate,
            min_score: 1.0,
        };
        (step, calls)
    }

    fn run(chain: &Chain) -> Score {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(chain.score(&Rollout {
            id: "r".into(),
            completion: "x = 1".into(),
            ..Rollout::default()
        }))
    }

    #[test]
    fn reward_is_the_weighted_mean_of_steps_that_ran() {
        let (a, _) = step("a", Verdict::pass(1.0, json!({})), 3.0, false);
        let (b, _) = step("b", Verdict::pass(0.0, json!({})), 1.0, false);
        let (c, _) = step("c", Verdict::skip(json!({})), 5.0, false);
        let (d, _) = step("d", Verdict::pass(0.0, json!({})), 0.0, false);
        let s = run(&Chain::new(vec![a, b, c, d]));
        assert_eq!(s.reward, Some(0.75));
        assert_eq!(s.outcome, Outcome::Passed);
        assert_eq!(s.verifiers.len(), 4);
        assert!(s.verifiers[2].skipped);
    }

    #[test]
    fn failed_gate_stops_the_chain_with_zero_reward() {
        let (a, _) = step("a", Verdict::pass(1.0, json!({})), 1.0, false);
        let (gate, _) = step(
            "parse",
            Verdict::fail(Outcome::NotCode, 0.0, json!({})),
            0.0,
            true,
        );
        let (after, after_calls) = step("after", Verdict::pass(1.0, json!({})), 1.0, false);
        let s = run(&Chain::new(vec![a, gate, after]));
        assert_eq!(s.reward, Some(0.0));
        assert_eq!(s.outcome, Outcome::NotCode);
        assert_eq!(s.verifiers.len(), 2);
        assert_eq!(
            after_calls.load(Ordering::SeqCst),
            0,
            "nothing runs after a failed gate"
        );
    }

    #[test]
    fn gate_with_low_score_fails_even_when_passed() {
        let (gate, _) = step("format", Verdict::pass(0.5, json!({})), 1.0, true);
        let s = run(&Chain::new(vec![gate]));
        assert_eq!(s.outcome, Outcome::Failed);
        assert_eq!(s.reward, Some(0.0));
    }

    #[test]
    fn first_failing_outcome_wins_without_gates() {
        let (a, _) = step(
            "a",
            Verdict::fail(Outcome::Timeout, 0.0, json!({})),
            1.0,
            false,
        );
        let (b, _) = step(
            "b",
            Verdict::fail(Outcome::Failed, 0.5, json!({})),
            1.0,
            false,
        );
        let s = run(&Chain::new(vec![a, b]));
        assert_eq!(s.outcome, Outcome::Timeout);
        assert_eq!(s.reward, Some(0.25));
    }

    /// A verifier that runs tests (as `generated` does): records a report, then passes.
    struct RunsTests;

    #[async_trait]
    impl Verifier for RunsTests {
        fn kind(&self) -> &'static str {
            "runs_tests"
        }
        async fn verify(&self, _r: &Rollout, c: &mut Context) -> Verdict {
            c.tests = Some(crate::score::TestReport::default());
            Verdict::pass(1.0, json!({}))
        }
    }

    #[test]
    fn a_step_that_found_no_tests_says_so_unless_a_later_one_ran_some() {
        let no_tests = || {
            let mut v = Verdict::fail(Outcome::TestsUnavailable, 0.0, json!({}));
            v.skipped = true;
            step("tests", v, 1.0, false).0
        };
        let (format, _) = step("format", Verdict::pass(0.5, json!({})), 1.0, false);
        let s = run(&Chain::new(vec![format, no_tests()]));
        assert_eq!(s.outcome, Outcome::TestsUnavailable);
        assert_eq!(s.reward, Some(0.5), "the skipped step counts for nothing");

        let generated = Step {
            name: "generated".into(),
            verifier: Box::new(RunsTests),
            weight: 1.0,
            gate: false,
            min_score: 1.0,
        };
        let s = run(&Chain::new(vec![no_tests(), generated]));
        assert_eq!(s.outcome, Outcome::Passed);
        assert_eq!(s.reward, Some(1.0));
    }

    /// Groupwise test verifier: provisional score 1, then the cheapest of a group keeps 1 and the
    /// others get cheapest/own cost (cost = completion length).
    struct Cheapest;

    #[async_trait]
    impl Verifier for Cheapest {
        fn kind(&self) -> &'static str {
            "cheapest"
        }
        async fn verify(&self, r: &Rollout, _c: &mut Context) -> Verdict {
            Verdict::pass(1.0, json!({})).with_group_input(GroupInput::new(r.completion.len()))
        }
        fn is_groupwise(&self) -> bool {
            true
        }
        fn rescore_group(&self, step: &str, group: &mut [GroupMember<'_>]) {
            let cost = |m: &GroupMember<'_>| *m.input.unwrap().get::<usize>().unwrap() as f64;
            let min = group.iter().map(cost).fold(f64::INFINITY, f64::min);
            for m in group.iter_mut() {
                let c = cost(m);
                let v = m
                    .score
                    .verifiers
                    .iter_mut()
                    .find(|v| v.name == step)
                    .unwrap();
                v.score = min / c;
            }
        }
    }

    #[test]
    fn groupwise_steps_compare_passing_rollouts_of_one_problem() {
        let (gate, _) = step("gate", Verdict::pass(1.0, json!({})), 1.0, false);
        let cheapest = Step {
            name: "cheap".into(),
            verifier: Box::new(Cheapest),
            weight: 1.0,
            gate: false,
            min_score: 1.0,
        };
        let chain = Arc::new(Chain::new(vec![gate, cheapest]));
        let mk = |id: &str, group: Option<&str>, prompt: &str, completion: &str| Rollout {
            id: id.into(),
            problem_id: group.map(str::to_string),
            prompt: prompt.into(),
            completion: completion.into(),
            ..Rollout::default()
        };
        let rollouts = vec![
            mk("a", Some("p"), "", "xx"),
            mk("b", Some("p"), "", "xxxx"),
            mk("c", Some("q"), "", "xxxxxxxx"),
            mk("d", None, "", "xxxxxxxxxxxxxxxx"),
            // No problem_id: the prompt is the problem (a GRPO group as TRL sends it), and a
            // prompt that spells a problem_id is not that problem.
            mk("e", None, "p", "xxxxxx"),
            mk("f", None, "p", "xxxxxxxxxxxx"),
        ];
        let rt = tokio::runtime::Runtime::new().unwrap();
        let scores = rt.block_on(chain.score_batch(rollouts));
        let ids: Vec<_> = scores.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d", "e", "f"], "input order");
        assert_eq!(scores[0].reward, Some(1.0), "cheapest of group p");
        assert_eq!(scores[1].reward, Some(0.75), "(1 + 2/4) / 2");
        assert_eq!(scores[2].reward, Some(1.0), "alone in group q");
        assert_eq!(
            scores[3].reward,
            Some(1.0),
            "no problem_id, no prompt: provisional score kept"
        );
        assert_eq!(scores[4].reward, Some(1.0), "cheapest of prompt p");
        assert_eq!(scores[5].reward, Some(0.75), "(1 + 6/12) / 2");
    }

    /// A verifier that panics.
    struct Panics;

    #[async_trait]
    impl Verifier for Panics {
        fn kind(&self) -> &'static str {
            "panics"
        }
        async fn verify(&self, _r: &Rollout, _c: &mut Context) -> Verdict {
            panic!("a bug in a verifier")
        }
    }

    #[test]
    fn a_step_that_cannot_judge_gives_the_error_outcome_and_no_reward() {
        let (a, _) = step("a", Verdict::pass(1.0, json!({})), 1.0, false);
        let (b, _) = step(
            "tests",
            Verdict::error("the sandbox worker died"),
            1.0,
            false,
        );
        let (c, c_calls) = step("c", Verdict::pass(1.0, json!({})), 1.0, false);
        let s = run(&Chain::new(vec![a, b, c]));
        assert_eq!(s.outcome, Outcome::Error);
        assert_eq!(s.reward, None, "maskable, never 0");
        assert_eq!(s.error.as_deref(), Some("tests: the sandbox worker died"));
        assert_eq!(c_calls.load(Ordering::SeqCst), 0, "the chain stops");
        let line = serde_json::to_value(&s).unwrap();
        assert_eq!(line["reward"], serde_json::Value::Null);
        assert_eq!(line["outcome"], "error");
    }

    #[test]
    fn a_panicking_step_gives_the_error_outcome_of_that_rollout_only() {
        let (a, _) = step("a", Verdict::pass(1.0, json!({})), 1.0, false);
        let panics = Step {
            name: "boom".into(),
            verifier: Box::new(Panics),
            weight: 1.0,
            gate: false,
            min_score: 1.0,
        };
        let s = run(&Chain::new(vec![a, panics]));
        assert_eq!(s.outcome, Outcome::Error);
        assert_eq!(s.reward, None);
        assert_eq!(s.id, "r");
        let error = s.error.unwrap();
        assert!(error.contains("a bug in a verifier"), "{error}");
    }

    #[test]
    fn chain_without_weights_is_all_or_nothing() {
        let (a, _) = step("a", Verdict::pass(1.0, json!({})), 0.0, true);
        assert_eq!(run(&Chain::new(vec![a])).reward, Some(1.0));
        let (b, _) = step(
            "b",
            Verdict::fail(Outcome::Failed, 0.0, json!({})),
            0.0,
            false,
        );
        assert_eq!(run(&Chain::new(vec![b])).reward, Some(0.0));
    }
}
