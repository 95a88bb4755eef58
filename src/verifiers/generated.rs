//! The `generated` verifier: for a rollout with no tests (neither its own nor from dataset
//! fields), run the code against tests an LLM wrote for the problem, once they are validated.
//!
//! ## What it checks
//! The tests come from [`crate::testgen::Testgen`] (one generation per problem, cached in SQLite,
//! shared by concurrent rollouts). Before a test counts it is validated in the sandbox:
//! - with the rollout's `reference`: the reference must pass it under two seeds
//!   ([`crate::testgen::validate::with_reference`]); the rollout then runs the kept tests;
//! - without one: every rollout of the problem (same `problem_id`, else same prompt, in one batch or
//!   `--group-window`) runs every candidate twice, and dual agreement
//!   ([`crate::testgen::agreement`]) picks the tests after the whole group is scored. Until
//!   then, and for a rollout scored alone, the problem counts as having too few tests.
//!
//! ## Reward
//! The fraction of kept tests passed (1 or 0 with `all_or_nothing`). Skipped when the rollout
//! has tests of its own (the `tests` step scores those).
//!
//! ## Failure modes
//! - Fewer than `min_tests` valid tests (or, without a reference, fewer than `min_agreeing`
//!   rollouts agreeing): the outcome `tests_unavailable`. With `unavailable = "skip"` (default)
//!   the step counts for nothing in the reward; with `"zero"` it scores 0. Never a silent 1:
//!   the outcome says so either way.
//! - The endpoint is down, slow past `testgen.timeout_secs`, or the circuit is open; the
//!   sandbox fails: [`Verdict::error`], reward masked.
//! - Otherwise the outcome of the first kept test that failed (`failed`, `runtime_error`, …).
//!
//! ## Example
//! ```toml
//! [testgen]
//! base_url = "http://localhost:8000/v1"
//! model = "Qwen/Qwen2.5-Coder-7B-Instruct"
//!
//! [[verifier]]
//! kind = "generated"
//! min_tests = 3
//! unavailable = "zero"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::kind::{settings_of, BuildContext, BuildError, Kind};
use super::tests::{verdict_of_run, ResolvedTests};
use super::{Context, GroupInput, GroupMember, Verdict, Verifier};
use crate::adapters::resolve_tests;
use crate::rollout::Rollout;
use crate::sandbox::Sandbox;
use crate::score::{Outcome, TestReport};
use crate::testgen::validate::{self, Validated};
use crate::testgen::{agreement, DropReason, Generated, Method, Problem, Testgen, Validation};

/// What a problem with too few valid tests scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// The step counts for nothing in the reward (the outcome is still `tests_unavailable`).
    #[default]
    Skip,
    /// The step scores 0.
    Zero,
}

/// Settings of the `generated` verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratedConfig {
    /// Fewest valid tests a problem needs. Default 3.
    pub min_tests: usize,
    /// Without a reference: fewest rollouts in the agreeing cluster. Default 3.
    pub min_agreeing: usize,
    /// What too few valid tests score: `skip` (default) or `zero`.
    pub unavailable: Unavailable,
    /// Reward 1 only when every kept test passes, else 0. Default `false` (pass fraction).
    pub all_or_nothing: bool,
    /// Do not read dataset fields when deciding whether the rollout has tests. Default `false`.
    pub no_adapters: bool,
}

impl Default for GeneratedConfig {
    fn default() -> Self {
        GeneratedConfig {
            min_tests: 3,
            min_agreeing: 3,
            unavailable: Unavailable::Skip,
            all_or_nothing: false,
            no_adapters: false,
        }
    }
}

/// The `generated` kind.
pub fn kind() -> Kind {
    Kind::new(
        "generated",
        "no tests? runs validated LLM-generated tests ([testgen]); pass fraction",
        |settings, cx| {
            Ok(Box::new(
                settings_of::<GeneratedConfig>(settings)?.build(cx)?,
            ))
        },
    )
    .with_sandbox()
}

impl GeneratedConfig {
    /// Check the settings and build the verifier around the shared sandbox and generator.
    pub fn build(&self, cx: &BuildContext<'_>) -> Result<GeneratedVerifier, BuildError> {
        if self.min_tests == 0 {
            return Err(BuildError("min_tests must be positive".into()));
        }
        Ok(GeneratedVerifier {
            sandbox: cx.sandbox("generated")?.clone(),
            testgen: cx.testgen("generated")?.clone(),
            config: self.clone(),
            validations: Mutex::default(),
        })
    }
}

/// Runs code against validated, generated tests.
pub struct GeneratedVerifier {
    sandbox: Sandbox,
    testgen: Testgen,
    config: GeneratedConfig,
    validations: Mutex<HashMap<String, Arc<OnceCell<Arc<Validated>>>>>,
}

/// What a rollout without a reference keeps for the group pass.
#[derive(Debug)]
struct Runs {
    /// The problem's cache key digest: only rollouts of the same generation are compared.
    key: String,
    /// The problem's name, for the recorded decision.
    problem: String,
    passed: Vec<bool>,
    stable: Vec<bool>,
    report: TestReport,
    generated: usize,
    dropped: BTreeMap<DropReason, usize>,
}

impl GeneratedVerifier {
    fn unavailable(&self, details: Value) -> Verdict {
        let mut v = Verdict::fail(Outcome::TestsUnavailable, 0.0, details);
        v.skipped = self.config.unavailable == Unavailable::Skip;
        v
    }

    /// The reference's verdict on the candidates, once per (generation, reference, setup).
    async fn validated(
        &self,
        generated: &Generated,
        reference: &str,
        setup: Option<&str>,
        rollout: &Rollout,
    ) -> Result<Arc<Validated>, String> {
        let basis = validate::reference_basis(reference, setup);
        let mut h = Sha256::new();
        h.update(generated.key.digest());
        h.update([0]);
        h.update(&basis);
        let key = hex::encode(h.finalize());
        let cell = {
            let mut map = self.validations.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(key).or_default())
        };
        cell.get_or_try_init(|| async {
            let v = validate::with_reference(
                &self.sandbox,
                reference,
                setup,
                &generated.extraction.tests,
                rollout.limits.as_ref(),
            )
            .await
            .map_err(|e| format!("sandbox failure validating generated tests: {e}"))?;
            crate::metrics::record_testgen_tests("kept", v.kept.len());
            for (_, reason) in &v.dropped {
                crate::metrics::record_testgen_tests(reason.as_str(), 1);
            }
            self.testgen.record(v.record(
                generated.key.digest(),
                Problem::of(rollout, self.testgen.shape_choice()).name,
                basis.clone(),
                generated.extraction.tests.len(),
            ));
            Ok::<_, String>(Arc::new(v))
        })
        .await
        .cloned()
    }
}

/// The decision of the group pass on one generation, for the cache (`verdict tests show`).
fn agreement_record(
    runs: &Runs,
    usable: &[bool],
    chosen: Option<&agreement::Agreement>,
    group_size: usize,
    config: &GeneratedConfig,
) -> Validation {
    let mut dropped = Vec::new();
    for (t, &ok) in usable.iter().enumerate() {
        if !ok {
            dropped.push((t, DropReason::Nondeterministic));
        } else if chosen.is_some_and(|a| !a.tests.contains(&t)) {
            dropped.push((t, DropReason::Disagreement));
        }
    }
    let note = match chosen {
        Some(a) => format!(
            "{} of {group_size} rollouts agree on {} tests",
            a.rollouts.len(),
            a.tests.len()
        ),
        None => format!(
            "no tests kept: fewer than {} of {group_size} rollouts agree on {} or more tests",
            config.min_agreeing, config.min_tests
        ),
    };
    Validation {
        key: runs.key.clone(),
        problem: runs.problem.clone(),
        method: Method::Agreement,
        basis: runs.problem.clone(),
        kept: chosen.map(|a| a.tests.clone()).unwrap_or_default(),
        dropped,
        note: Some(note),
        at: 0,
    }
}

fn counts(dropped: &BTreeMap<DropReason, usize>) -> Value {
    Value::Object(
        dropped
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), json!(n)))
            .collect(),
    )
}

#[async_trait]
impl Verifier for GeneratedVerifier {
    fn kind(&self) -> &'static str {
        "generated"
    }

    #[tracing::instrument(skip_all, fields(id = %rollout.id))]
    async fn verify(&self, rollout: &Rollout, ctx: &mut Context) -> Verdict {
        let adapted = match resolve_tests(rollout, !self.config.no_adapters) {
            Ok(a) if a.tests.is_empty() => a,
            Ok(_) => return Verdict::skip(json!({"reason": "the rollout has tests"})),
            Err(e) => {
                return Verdict::skip(json!({"reason": format!("dataset tests unreadable: {e}")}))
            }
        };
        let setup = adapted.setup;
        let problem = Problem::of(rollout, self.testgen.shape_choice());
        let generated = match self.testgen.generate(&problem).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "Test generation failed.");
                return Verdict::error(format!("test generation failed: {e}"));
            }
        };
        let candidates = &generated.extraction.tests;
        let mut dropped = generated.extraction.dropped.clone();
        let code = ctx.answer.code.as_deref().unwrap_or("");
        let base = json!({
            "source": "generated",
            "shape": problem.shape.as_str(),
            "generated": candidates.len(),
            "min_tests": self.config.min_tests,
            "cache_key": generated.key.digest(),
        });
        let with = |extra: Value| {
            let mut d = base.clone();
            if let (Some(d), Value::Object(extra)) = (d.as_object_mut(), extra) {
                d.extend(extra);
            }
            d
        };
        let Some(reference) = rollout.reference.as_deref() else {
            if candidates.len() < self.config.min_tests {
                return self.unavailable(with(json!({
                    "reason": "too few generated tests",
                    "validation": "agreement",
                    "dropped": counts(&dropped),
                })));
            }
            let runs = match validate::twice(
                &self.sandbox,
                &rollout.id,
                code,
                setup.as_deref(),
                candidates,
                rollout.limits.as_ref(),
            )
            .await
            {
                Ok(r) => r,
                Err(e) => return Verdict::error(format!("sandbox failure: {e}")),
            };
            ctx.cost.fuel += runs.first.fuel;
            let input = Runs {
                key: generated.key.digest(),
                problem: problem.name.clone(),
                passed: runs.passed,
                stable: runs.stable,
                report: runs.first.tests,
                generated: candidates.len(),
                dropped,
            };
            return self
                .unavailable(with(json!({
                    "reason": "no reference: tests are chosen by agreement among the group's rollouts",
                    "validation": "agreement",
                    "agreement": "pending",
                })))
                .with_group_input(GroupInput::new(input));
        };
        let validated = match self
            .validated(&generated, reference, setup.as_deref(), rollout)
            .await
        {
            Ok(v) => v,
            Err(e) => return Verdict::error(e),
        };
        for (_, reason) in &validated.dropped {
            *dropped.entry(*reason).or_default() += 1;
        }
        let kept = &validated.kept;
        if kept.len() < self.config.min_tests {
            return self.unavailable(with(json!({
                "reason": "too few generated tests pass the reference",
                "validation": "reference",
                "kept": kept.len(),
                "dropped": counts(&dropped),
            })));
        }
        let job = crate::sandbox::RunJob {
            id: &rollout.id,
            program: code,
            setup: setup.as_deref(),
            judge_setup: None,
            tests: kept,
            limits: rollout.limits.as_ref(),
            stop_on_failure: self.config.all_or_nothing,
        };
        let report = match self.sandbox.run(&job).await {
            Ok(r) => r,
            Err(e) => return Verdict::error(format!("sandbox failure: {e}")),
        };
        let resolved = ResolvedTests {
            tests: kept.clone(),
            setup,
            source: "generated",
            limits: rollout.limits,
        };
        let details = with(json!({
            "validation": "reference",
            "kept": kept.len(),
            "dropped": counts(&dropped),
        }));
        verdict_of_run(ctx, &report, resolved, self.config.all_or_nothing, details)
    }

    fn describe(&self) -> String {
        format!(
            "{}; at least {} valid tests ({} agreeing rollouts without a reference), too few: {}",
            self.testgen.describe(),
            self.config.min_tests,
            self.config.min_agreeing,
            match self.config.unavailable {
                Unavailable::Skip => "skip",
                Unavailable::Zero => "score 0",
            }
        )
    }

    fn is_groupwise(&self) -> bool {
        true
    }

    fn rescore_group(&self, step: &str, group: &mut [GroupMember<'_>]) {
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, m) in group.iter().enumerate() {
            if let Some(runs) = m.input.and_then(|g| g.get::<Runs>()) {
                by_key.entry(runs.key.as_str()).or_default().push(i);
            }
        }
        let decisions: Vec<(Vec<usize>, usize, Option<agreement::Agreement>)> = by_key
            .into_values()
            .map(|members| {
                let runs: Vec<&Runs> = members
                    .iter()
                    .filter_map(|&i| group[i].input.and_then(|g| g.get::<Runs>()))
                    .collect();
                let width = runs[0].passed.len();
                let usable: Vec<bool> = (0..width)
                    .map(|t| {
                        runs.iter()
                            .all(|r| r.stable.get(t).copied().unwrap_or(false))
                    })
                    .collect();
                let rows: Vec<Vec<bool>> = runs.iter().map(|r| r.passed.clone()).collect();
                let chosen = agreement::select(
                    &rows,
                    &usable,
                    self.config.min_agreeing,
                    self.config.min_tests,
                );
                let unstable = usable.iter().filter(|u| !**u).count();
                if let Some(a) = &chosen {
                    crate::metrics::record_testgen_tests("kept", a.tests.len());
                    crate::metrics::record_testgen_tests("nondeterministic", unstable);
                }
                self.testgen.record(agreement_record(
                    runs[0],
                    &usable,
                    chosen.as_ref(),
                    runs.len(),
                    &self.config,
                ));
                (members, unstable, chosen)
            })
            .collect();
        for (members, nondeterministic, chosen) in decisions {
            let group_size = members.len();
            for (pos, i) in members.into_iter().enumerate() {
                let member = &mut group[i];
                let Some(runs) = member.input.and_then(|g| g.get::<Runs>()) else {
                    continue;
                };
                // Unstable on any rollout of the group: dropped for all of them.
                let mut dropped = runs.dropped.clone();
                if nondeterministic > 0 {
                    *dropped.entry(DropReason::Nondeterministic).or_default() += nondeterministic;
                }
                let Some(entry) = member.score.verifiers.iter_mut().find(|v| v.name == step) else {
                    continue;
                };
                let Some(a) = &chosen else {
                    if let Some(d) = entry.details.as_object_mut() {
                        d.insert(
                            "agreement".into(),
                            json!(format!(
                                "none: fewer than {} of {group_size} rollouts agree on {} or more tests",
                                self.config.min_agreeing, self.config.min_tests
                            )),
                        );
                        d.insert("dropped".into(), counts(&dropped));
                    }
                    continue;
                };
                let disagreeing = runs.generated - nondeterministic - a.tests.len();
                if disagreeing > 0 {
                    *dropped.entry(DropReason::Disagreement).or_default() += disagreeing;
                }
                let results: Vec<_> = a
                    .tests
                    .iter()
                    .filter_map(|&t| runs.report.results.iter().find(|r| r.index == t))
                    .cloned()
                    .collect();
                let passed = a.tests.iter().filter(|&&t| runs.passed[t]).count();
                let total = a.tests.len();
                let all = passed == total;
                let score = match (self.config.all_or_nothing, all) {
                    (true, true) => 1.0,
                    (true, false) => 0.0,
                    (false, _) => passed as f64 / total as f64,
                };
                let outcome = if all {
                    Outcome::Passed
                } else {
                    a.tests
                        .iter()
                        .find(|&&t| !runs.passed[t])
                        .and_then(|&t| results.iter().find(|r| r.index == t))
                        .map(|r| match r.outcome {
                            Outcome::Passed => Outcome::Failed,
                            o => o,
                        })
                        .unwrap_or(Outcome::Failed)
                };
                entry.score = score;
                entry.skipped = false;
                if let Some(d) = entry.details.as_object_mut() {
                    d.remove("reason");
                    d.insert(
                        "agreement".into(),
                        json!({"rollouts": a.rollouts.len(), "of": group_size, "in_cluster": a.rollouts.contains(&pos)}),
                    );
                    d.insert("kept".into(), json!(total));
                    d.insert("passed".into(), json!(passed));
                    d.insert("total".into(), json!(total));
                    d.insert("dropped".into(), counts(&dropped));
                }
                if member.score.outcome == Outcome::TestsUnavailable {
                    member.score.outcome = outcome;
                }
                if member.score.tests.is_none() {
                    member.score.tests = Some(TestReport {
                        passed,
                        total,
                        results,
                    });
                }
            }
        }
    }
}
