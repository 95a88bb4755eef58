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
//! `passed` ("every check that ran passed": with no tests that means format and parse only).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tracing::debug;

use crate::extract::extract;
use crate::rollout::Rollout;
use crate::score::{Outcome, Score, VerifierScore};
use crate::verifiers::parse::parses_as_python;
use crate::verifiers::{Context, Verifier};

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

/// An ordered list of verifiers that turns a [`Rollout`] into a [`Score`].
#[derive(Debug, Default)]
pub struct Chain {
    steps: Vec<Step>,
}

impl Chain {
    /// A chain of the given steps, run in order.
    pub fn new(steps: Vec<Step>) -> Self {
        Chain { steps }
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
    /// compare the passing rollouts of each `problem_id` ([`Chain::rescore_groups`]). Scores are
    /// in input order.
    pub async fn score_batch(self: &Arc<Self>, rollouts: Vec<Rollout>) -> Vec<Score> {
        let groups: Vec<Option<String>> = rollouts.iter().map(|r| r.problem_id.clone()).collect();
        let tasks: Vec<_> = rollouts
            .into_iter()
            .map(|r| {
                let chain = Arc::clone(self);
                tokio::spawn(async move { chain.score(&r).await })
            })
            .collect();
        let mut scores = Vec::with_capacity(tasks.len());
        for task in tasks {
            scores.push(match task.await {
                Ok(s) => s,
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            });
        }
        self.rescore_groups(&mut scores, &groups);
        scores
    }

    /// Apply the groupwise steps to already-scored rollouts: `groups[i]` is the `problem_id` of
    /// `scores[i]`. Only passing rollouts with a `problem_id` take part; their rewards are
    /// recomputed afterwards.
    pub fn rescore_groups(&self, scores: &mut [Score], groups: &[Option<String>]) {
        if !self.has_groupwise_steps() {
            return;
        }
        let mut by_group: HashMap<&str, Vec<&mut Score>> = HashMap::new();
        for (score, group) in scores.iter_mut().zip(groups) {
            if let (Some(g), Outcome::Passed) = (group.as_deref(), score.outcome) {
                by_group.entry(g).or_default().push(score);
            }
        }
        for members in by_group.values_mut() {
            for step in self.steps.iter().filter(|s| s.verifier.is_groupwise()) {
                step.verifier.rescore_group(&step.name, members);
            }
            for score in members.iter_mut() {
                score.reward = weighted_mean(&score.verifiers).unwrap_or(1.0);
            }
        }
    }

    /// Score one rollout. Never fails: a bad candidate is a verdict, not an error.
    pub async fn score(&self, rollout: &Rollout) -> Score {
        let started = Instant::now();
        let mut ctx = Context {
            answer: extract(&rollout.completion, parses_as_python),
            ..Context::default()
        };
        let mut verifiers = Vec::with_capacity(self.steps.len());
        let mut outcome = Outcome::Passed;
        let mut gate_failed = false;
        for step in &self.steps {
            let verdict = step.verifier.verify(rollout, &mut ctx).await;
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
        let reward = if gate_failed {
            0.0
        } else {
            weighted_mean(&verifiers).unwrap_or(if outcome == Outcome::Passed { 1.0 } else { 0.0 })
        };
        let mut cost = ctx.cost;
        cost.wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        Score {
            id: rollout.id.clone(),
            reward,
            outcome,
            verifiers,
            tests: ctx.tests,
            cost,
            error: None,
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
        assert_eq!(s.reward, 0.75);
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
        assert_eq!(s.reward, 0.0);
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
        assert_eq!(s.reward, 0.0);
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
        assert_eq!(s.reward, 0.25);
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
            Verdict::pass(1.0, json!({"cost": r.completion.len()}))
        }
        fn is_groupwise(&self) -> bool {
            true
        }
        fn rescore_group(&self, step: &str, group: &mut [&mut Score]) {
            let cost = |s: &Score| {
                let v = s.verifiers.iter().find(|v| v.name == step).unwrap();
                v.details["cost"].as_f64().unwrap()
            };
            let min = group.iter().map(|s| cost(s)).fold(f64::INFINITY, f64::min);
            for s in group.iter_mut() {
                let c = cost(s);
                let v = s.verifiers.iter_mut().find(|v| v.name == step).unwrap();
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
        let mk = |id: &str, group: Option<&str>, completion: &str| Rollout {
            id: id.into(),
            problem_id: group.map(str::to_string),
            completion: completion.into(),
            ..Rollout::default()
        };
        let rollouts = vec![
            mk("a", Some("p"), "xx"),
            mk("b", Some("p"), "xxxx"),
            mk("c", Some("q"), "xxxxxxxx"),
            mk("d", None, "xxxxxxxxxxxxxxxx"),
        ];
        let rt = tokio::runtime::Runtime::new().unwrap();
        let scores = rt.block_on(chain.score_batch(rollouts));
        let ids: Vec<_> = scores.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"], "input order");
        assert_eq!(scores[0].reward, 1.0, "cheapest of group p");
        assert_eq!(scores[1].reward, 0.75, "(1 + 2/4) / 2");
        assert_eq!(scores[2].reward, 1.0, "alone in group q");
        assert_eq!(scores[3].reward, 1.0, "no group: provisional score kept");
    }

    #[test]
    fn chain_without_weights_is_all_or_nothing() {
        let (a, _) = step("a", Verdict::pass(1.0, json!({})), 0.0, true);
        assert_eq!(run(&Chain::new(vec![a])).reward, 1.0);
        let (b, _) = step(
            "b",
            Verdict::fail(Outcome::Failed, 0.0, json!({})),
            0.0,
            false,
        );
        assert_eq!(run(&Chain::new(vec![b])).reward, 0.0);
    }
}
