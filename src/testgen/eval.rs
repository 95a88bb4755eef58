//! How good are generated tests? `verdict tests eval ROLLOUTS.jsonl` answers on problems that
//! ship real tests, by generating tests anyway and comparing verdicts program by program.
//!
//! ## Definitions
//! Each rollout is a candidate program. The **real suite** (the rollout's tests or its dataset
//! fields) calls it *correct* when it passes every real test, else *wrong*. The **generated
//! suite** is what validation kept for the problem (reference when the rollout has one, else
//! dual agreement over the problem's rollouts in the file); it *accepts* a program that passes
//! every kept test. Over the programs of problems that have a generated suite:
//!
//! - `recall_of_wrong` = wrong programs the generated suite rejects / wrong programs;
//! - `pass_rate_of_correct` (the "precision") = correct programs it accepts / correct
//!   programs;
//! - `precision_of_accept` = correct programs among those it accepts / programs it accepts
//!   (the classic precision: how far an accept can be trusted);
//! - `agreement` = programs on which both suites agree / programs.
//!
//! A suite that accepts exactly what the real suite accepts scores 1 on all four.
//! `unavailable` = problems left with too few valid tests / problems; their programs are in
//! none of the ratios. A ratio with an empty denominator is reported as `null`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::generator::{Problem, Testgen};
use super::validate;
use super::{agreement, DropReason};
use crate::adapters::resolve_tests;
use crate::extract::extract;
use crate::rollout::{ProblemKey, Rollout, TestCase};
use crate::sandbox::{RunJob, Sandbox, SandboxError};
use crate::score::Outcome;
use crate::verifiers::parse::parses_as_python;

/// The thresholds validation uses (those of the `generated` step).
#[derive(Debug, Clone, Copy)]
pub struct EvalOptions {
    /// Fewest valid tests a problem needs.
    pub min_tests: usize,
    /// Without a reference: fewest rollouts in the agreeing cluster.
    pub min_agreeing: usize,
}

/// One problem's result.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemEval {
    /// The problem's `problem_id` (or the first rollout's id).
    pub problem: String,
    /// `reference` or `agreement`.
    pub validation: &'static str,
    /// Candidates generated.
    pub generated: usize,
    /// Tests kept; 0 when unavailable.
    pub kept: usize,
    /// Dropped candidates by reason.
    pub dropped: BTreeMap<String, usize>,
    /// Whether too few valid tests were left.
    pub unavailable: bool,
    /// Programs judged correct by the real suite.
    pub correct: usize,
    /// … and accepted by the generated suite.
    pub correct_accepted: usize,
    /// Programs judged wrong by the real suite.
    pub wrong: usize,
    /// … and rejected by the generated suite.
    pub wrong_rejected: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Problems with real tests.
    pub problems: usize,
    /// Of which left with too few valid generated tests.
    pub problems_unavailable: usize,
    /// Rollouts without real tests (not evaluated).
    pub rollouts_without_tests: usize,
    /// Programs in the ratios.
    pub programs: usize,
    /// See the module docs.
    pub recall_of_wrong: Option<f64>,
    /// See the module docs.
    pub pass_rate_of_correct: Option<f64>,
    /// See the module docs.
    pub precision_of_accept: Option<f64>,
    /// See the module docs.
    pub agreement: Option<f64>,
    /// Share of problems unavailable.
    pub unavailable: Option<f64>,
    /// Generations sent to the endpoint (0 when everything came from the cache).
    pub generations: u64,
    /// Per problem, in order of first appearance.
    pub per_problem: Vec<ProblemEval>,
}

/// Why an evaluation could not finish: verdict's own failure.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Generation failed.
    #[error("problem {problem}: {source}")]
    Generate {
        /// The problem.
        problem: String,
        /// Why.
        source: super::TestgenError,
    },
    /// The sandbox failed.
    #[error("problem {problem}: sandbox failure: {source}")]
    Sandbox {
        /// The problem.
        problem: String,
        /// Why.
        source: SandboxError,
    },
}

/// One rollout of a problem with its real tests and their setup.
struct Member<'a> {
    rollout: &'a Rollout,
    tests: Vec<TestCase>,
    setup: Option<String>,
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Evaluate generated tests on `rollouts`, grouped into problems by `problem_id` (else prompt).
pub async fn evaluate(
    sandbox: &Sandbox,
    testgen: &Testgen,
    rollouts: &[Rollout],
    options: EvalOptions,
) -> Result<EvalReport, EvalError> {
    let mut order: Vec<Option<ProblemKey>> = Vec::new();
    let mut groups: HashMap<Option<ProblemKey>, Vec<Member<'_>>> = HashMap::new();
    let mut without = 0;
    for r in rollouts {
        let real = match resolve_tests(r, true) {
            Ok(a) if !a.tests.is_empty() => a,
            _ => {
                without += 1;
                continue;
            }
        };
        let key = r.problem_key();
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(Member {
            rollout: r,
            tests: real.tests,
            setup: real.setup,
        });
    }
    let before = testgen.stats().generations;
    let evals = futures::future::join_all(order.iter().map(|key| {
        let members = &groups[key];
        evaluate_problem(sandbox, testgen, members, options)
    }))
    .await;
    let per_problem = evals.into_iter().collect::<Result<Vec<_>, _>>()?;
    let judged: Vec<&ProblemEval> = per_problem.iter().filter(|p| !p.unavailable).collect();
    let sum = |f: fn(&ProblemEval) -> usize| judged.iter().map(|p| f(p)).sum::<usize>();
    let (correct, correct_acc, wrong, wrong_rej) = (
        sum(|p| p.correct),
        sum(|p| p.correct_accepted),
        sum(|p| p.wrong),
        sum(|p| p.wrong_rejected),
    );
    let accepted = correct_acc + (wrong - wrong_rej);
    let unavailable = per_problem.iter().filter(|p| p.unavailable).count();
    Ok(EvalReport {
        problems: per_problem.len(),
        problems_unavailable: unavailable,
        rollouts_without_tests: without,
        programs: correct + wrong,
        recall_of_wrong: ratio(wrong_rej, wrong),
        pass_rate_of_correct: ratio(correct_acc, correct),
        precision_of_accept: ratio(correct_acc, accepted),
        agreement: ratio(correct_acc + wrong_rej, correct + wrong),
        unavailable: ratio(unavailable, per_problem.len()),
        generations: testgen.stats().generations - before,
        per_problem,
    })
}

async fn evaluate_problem(
    sandbox: &Sandbox,
    testgen: &Testgen,
    members: &[Member<'_>],
    options: EvalOptions,
) -> Result<ProblemEval, EvalError> {
    let first = members[0].rollout;
    let name = first.problem_name().to_string();
    let sandbox_err = |source| EvalError::Sandbox {
        problem: name.clone(),
        source,
    };
    let problem = Problem::of(first, testgen.shape_choice());
    let generated = testgen
        .generate(&problem)
        .await
        .map_err(|source| EvalError::Generate {
            problem: name.clone(),
            source,
        })?;
    let candidates = &generated.extraction.tests;
    let mut dropped: BTreeMap<String, usize> = generated
        .extraction
        .dropped
        .iter()
        .map(|(r, n)| (r.as_str().to_string(), *n))
        .collect();
    let mut drop = |r: DropReason, n: usize| {
        if n > 0 {
            *dropped.entry(r.as_str().to_string()).or_default() += n;
        }
    };
    // Each program's verdict under the real suite.
    let mut real_ok = Vec::new();
    let mut codes = Vec::new();
    for Member {
        rollout: r,
        tests,
        setup,
    } in members
    {
        let code = extract(&r.completion, parses_as_python)
            .code
            .unwrap_or_default();
        let report = sandbox
            .run(&RunJob {
                id: &r.id,
                program: &code,
                setup: setup.as_deref(),
                judge_setup: None,
                tests,
                limits: r.limits.as_ref(),
                stop_on_failure: true,
            })
            .await
            .map_err(sandbox_err)?;
        real_ok.push(report.outcome == Outcome::Passed);
        codes.push(code);
    }
    // The generated suite's verdict on each, after validation.
    let setup = members[0].setup.as_deref();
    let (validation, kept, accepted): (&'static str, usize, Option<Vec<bool>>) =
        match &first.reference {
            Some(reference) => {
                let v = validate::with_reference(
                    sandbox,
                    reference,
                    setup,
                    candidates,
                    first.limits.as_ref(),
                )
                .await
                .map_err(sandbox_err)?;
                for (_, reason) in &v.dropped {
                    drop(*reason, 1);
                }
                if v.kept.len() < options.min_tests {
                    ("reference", 0, None)
                } else {
                    let mut acc = Vec::new();
                    for (i, r) in members.iter().map(|m| m.rollout).enumerate() {
                        let report = sandbox
                            .run(&RunJob {
                                id: &r.id,
                                program: &codes[i],
                                setup,
                                judge_setup: None,
                                tests: &v.kept,
                                limits: r.limits.as_ref(),
                                stop_on_failure: true,
                            })
                            .await
                            .map_err(sandbox_err)?;
                        acc.push(report.outcome == Outcome::Passed);
                    }
                    ("reference", v.kept.len(), Some(acc))
                }
            }
            None => {
                let mut rows = Vec::new();
                let mut usable = vec![true; candidates.len()];
                if candidates.len() >= options.min_tests {
                    for (i, r) in members.iter().map(|m| m.rollout).enumerate() {
                        let runs = validate::twice(
                            sandbox,
                            &r.id,
                            &codes[i],
                            setup,
                            candidates,
                            r.limits.as_ref(),
                        )
                        .await
                        .map_err(sandbox_err)?;
                        for (u, s) in usable.iter_mut().zip(&runs.stable) {
                            *u &= *s;
                        }
                        rows.push(runs.passed);
                    }
                }
                let unstable = usable.iter().filter(|u| !**u).count();
                drop(DropReason::Nondeterministic, unstable);
                match agreement::select(&rows, &usable, options.min_agreeing, options.min_tests) {
                    None => ("agreement", 0, None),
                    Some(a) => {
                        drop(
                            DropReason::Disagreement,
                            candidates.len() - unstable - a.tests.len(),
                        );
                        let acc = rows
                            .iter()
                            .map(|row| a.tests.iter().all(|&t| row[t]))
                            .collect();
                        ("agreement", a.tests.len(), Some(acc))
                    }
                }
            }
        };
    let mut out = ProblemEval {
        problem: name.clone(),
        validation,
        generated: candidates.len(),
        kept,
        dropped,
        unavailable: accepted.is_none(),
        correct: 0,
        correct_accepted: 0,
        wrong: 0,
        wrong_rejected: 0,
    };
    if let Some(acc) = accepted {
        for (ok, a) in real_ok.iter().zip(acc) {
            if *ok {
                out.correct += 1;
                out.correct_accepted += usize::from(a);
            } else {
                out.wrong += 1;
                out.wrong_rejected += usize::from(!a);
            }
        }
    }
    Ok(out)
}
