//! The `tests` verifier: run the answer's code against the rollout's tests in the sandbox.
//!
//! ## What it checks
//! The extracted code against each test (`assert`, `stdio`, `call`) in the sandbox: a fresh
//! candidate interpreter per rollout runs the code (and the rollout's `setup` for stdio and
//! call tests), and a judge interpreter that never runs it runs the setup and the assert tests
//! (see [`crate::sandbox`]). Tests come from the
//! rollout's `tests`, or, when that is empty, from dataset fields through
//! [`crate::adapters`] (HumanEval, MBPP, verl/PRIME, open-r1, LiveCodeBench).
//!
//! ## Reward
//! The fraction of tests passed; with `all_or_nothing = true`, 1 only when all pass. Sets the
//! context's test report and adds the candidate's fuel to its cost.
//!
//! A rollout with no tests (none of its own, none from dataset fields) is not judged: its
//! outcome is `tests_unavailable`, never `passed`, and the step counts for nothing in the
//! reward (`unavailable = "skip"`, the default) or scores 0 (`unavailable = "zero"`). A later
//! step that runs tests for it (`generated`) decides its outcome instead.
//!
//! ## Failure modes
//! The outcome is that of the first test that did not pass: `failed` (wrong answer or failed
//! assertion, with the test and the difference), `runtime_error` (exception type and message, or
//! a trap), `syntax_error`, `timeout` (fuel or wall clock), `memory_limit`, `output_limit`;
//! `invalid_input` when dataset fields are malformed or a stdio test's checker is not valid
//! Python or defines no `check` (decided on the host, before the sandbox runs). When the
//! sandbox itself fails (a dead worker, a runtime that failed its self-test), the verdict is
//! [`Verdict::error`]: verdict could not judge, and the rollout's reward is masked rather
//! than 0.
//!
//! ## Example
//! ```toml
//! [[verifier]]
//! kind = "tests"
//! all_or_nothing = false
//! unavailable = "skip"   # no tests: the outcome is tests_unavailable; "zero": the step scores 0
//! ```

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::generated::Unavailable;
use super::kind::{settings_of, BuildContext, BuildError, Kind};
use super::{Context, Verdict, Verifier};
use crate::adapters::resolve_tests;
use crate::rollout::{Limits, Rollout};
use crate::sandbox::{RunJob, Sandbox};
use crate::score::Outcome;

/// Settings of the `tests` verifier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestsConfig {
    /// Reward 1 only when every test passes, else 0. By default `false`: the reward is the
    /// fraction of tests passed.
    pub all_or_nothing: bool,
    /// Most tests run per rollout (the rest are ignored). By default unset: the sandbox's
    /// `max_tests` (100). Larger values are capped by it.
    pub max_tests: Option<usize>,
    /// Stop at the first test that does not pass. By default unset: on when `all_or_nothing`
    /// is (the reward is 0 anyway), off otherwise.
    pub stop_on_failure: Option<bool>,
    /// Do not read tests from dataset fields when the rollout's `tests` is empty. By default
    /// `false` (adapters on).
    pub no_adapters: bool,
    /// What a rollout with no tests scores: `skip` (default: the step counts for nothing) or
    /// `zero`. Its outcome is `tests_unavailable` either way.
    pub unavailable: Unavailable,
}

/// The `tests` kind.
pub fn kind() -> Kind {
    Kind::new(
        "tests",
        "runs the code against the rollout's tests in the wasm sandbox; pass fraction",
        |settings, cx| Ok(Box::new(settings_of::<TestsConfig>(settings)?.build(cx)?)),
    )
    .with_sandbox()
}

impl TestsConfig {
    /// Builds the verifier around the shared sandbox.
    pub fn build(&self, cx: &BuildContext<'_>) -> Result<TestsVerifier, BuildError> {
        let sandbox = cx.sandbox("tests")?;
        if self.max_tests == Some(0) {
            return Err(BuildError("tests.max_tests must be positive".into()));
        }
        let cap = sandbox.config().limits.max_tests;
        Ok(TestsVerifier {
            sandbox: sandbox.clone(),
            all_or_nothing: self.all_or_nothing,
            max_tests: self.max_tests.unwrap_or(cap).min(cap),
            stop_on_failure: self.stop_on_failure.unwrap_or(self.all_or_nothing),
            adapters: !self.no_adapters,
            unavailable: self.unavailable,
        })
    }
}

/// The tests the `tests` verifier ran, as it left them in [`Context::resolved`]: after dataset
/// adapters and the `max_tests` cut, in the order of the report's results.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTests {
    /// The tests run, in order.
    pub tests: Vec<crate::rollout::TestCase>,
    /// The setup run before them.
    pub setup: Option<String>,
    /// Where they came from (`tests`, or the adapter's name).
    pub source: &'static str,
    /// The limits they ran under (the rollout's, with the data's time limit).
    pub limits: Option<Limits>,
}

/// The verdict on a sandbox run of `resolved`, for the verifiers that run tests: records the run
/// in `ctx` (fuel, per-test results, the tests run) and scores it, 1 or 0 when
/// `all_or_nothing`, else the pass fraction. `details` (an object) gains the run's figures.
pub(crate) fn verdict_of_run(
    ctx: &mut Context,
    report: &crate::sandbox::RunReport,
    resolved: ResolvedTests,
    all_or_nothing: bool,
    mut details: serde_json::Value,
) -> Verdict {
    ctx.cost.fuel += report.fuel;
    ctx.tests = Some(report.tests.clone());
    ctx.resolved = Some(resolved);
    let passed = report.outcome == Outcome::Passed;
    let score = match (all_or_nothing, passed) {
        (true, true) => 1.0,
        (true, false) => 0.0,
        (false, _) => report.pass_fraction(),
    };
    if let Some(d) = details.as_object_mut() {
        d.insert("passed".into(), json!(report.tests.passed));
        d.insert("total".into(), json!(report.tests.total));
        d.insert("fuel".into(), json!(report.fuel));
        d.insert("message".into(), json!(report.message));
    }
    if passed {
        Verdict::pass(score, details)
    } else {
        Verdict::fail(report.outcome, score, details)
    }
}

/// The `invalid_input` verdict on the first stdio test whose checker cannot be run: it is not
/// valid Python, or it defines no top-level `check` ([`crate::pysource::definition_problem`],
/// decided on the host before anything runs). A dataset bug, named by its field; never the
/// program's failure nor verdict's `error`.
fn invalid_checker(tests: &[crate::rollout::TestCase]) -> Option<Verdict> {
    let mut sound = std::collections::HashSet::new();
    tests.iter().enumerate().find_map(|(i, test)| {
        let crate::rollout::TestCase::Stdio {
            checker: Some(checker),
            ..
        } = test
        else {
            return None;
        };
        if sound.contains(checker.as_str()) {
            return None;
        }
        let budget = crate::pysource::Budget::default();
        match crate::pysource::definition_problem(checker, "check", &budget) {
            None => {
                sound.insert(checker.as_str());
                None
            }
            Some(problem) => Some(Verdict::fail(
                Outcome::InvalidInput,
                0.0,
                json!({
                    "error": format!("`tests[{i}].checker`: {problem}"),
                    "field": format!("tests[{i}].checker"),
                }),
            )),
        }
    })
}

/// Runs code against tests in the sandbox.
#[derive(Debug, Clone)]
pub struct TestsVerifier {
    sandbox: Sandbox,
    all_or_nothing: bool,
    max_tests: usize,
    stop_on_failure: bool,
    adapters: bool,
    unavailable: Unavailable,
}

impl TestsVerifier {
    /// The verdict on a rollout with no tests: `tests_unavailable`, the step skipped or 0.
    fn no_tests(&self) -> Verdict {
        let mut v = Verdict::fail(
            Outcome::TestsUnavailable,
            0.0,
            json!({"reason": "the rollout has no tests"}),
        );
        v.skipped = self.unavailable == Unavailable::Skip;
        v
    }
}

#[async_trait]
impl Verifier for TestsVerifier {
    fn kind(&self) -> &'static str {
        "tests"
    }

    #[tracing::instrument(skip_all, fields(id = %rollout.id))]
    async fn verify(&self, rollout: &Rollout, ctx: &mut Context) -> Verdict {
        let adapted = match resolve_tests(rollout, self.adapters) {
            Ok(a) => a,
            Err(e) => {
                let error = format!("dataset field `{}`: {}", e.field, e.reason);
                return Verdict::fail(Outcome::InvalidInput, 0.0, json!({"error": error}));
            }
        };
        if adapted.tests.is_empty() {
            return self.no_tests();
        }
        let setup = adapted.setup.clone();
        let n = adapted.tests.len().min(self.max_tests);
        if let Some(invalid) = invalid_checker(&adapted.tests[..n]) {
            return invalid;
        }
        let code = ctx.answer.code.as_deref().unwrap_or("");
        let limits = adapted.limits_for(rollout.limits.as_ref(), n);
        let job = RunJob {
            id: &rollout.id,
            program: code,
            setup: setup.as_deref(),
            judge_setup: rollout.judge_setup.as_deref(),
            tests: &adapted.tests[..n],
            limits: limits.as_ref(),
            stop_on_failure: self.stop_on_failure,
        };
        let report = match self.sandbox.run(&job).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "Sandbox failed.");
                return Verdict::error(format!("sandbox failure: {e}"));
            }
        };
        let resolved = ResolvedTests {
            tests: adapted.tests[..n].to_vec(),
            setup,
            source: adapted.source,
            limits,
        };
        let mut details = json!({
            "source": adapted.source,
            "ignored": adapted.tests.len() - n,
        });
        // What the problem's data or text set, said where it did.
        if let Some(per_test) = adapted
            .time_limit_ms
            .filter(|_| rollout.limits.is_none_or(|l| l.time_ms.is_none()))
        {
            details["time_limit_ms"] = json!(per_test);
        }
        if let Some(t) = &adapted.tolerance {
            details["tolerance"] = json!(t);
        }
        verdict_of_run(ctx, &report, resolved, self.all_or_nothing, details)
    }

    fn describe(&self) -> String {
        format!(
            "reward = {}, at most {} tests, stop on failure: {}, dataset adapters: {}, no tests: {}",
            if self.all_or_nothing {
                "all-or-nothing"
            } else {
                "pass fraction"
            },
            self.max_tests,
            self.stop_on_failure,
            if self.adapters { "on" } else { "off" },
            match self.unavailable {
                Unavailable::Skip => "skip",
                Unavailable::Zero => "score 0",
            }
        )
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn config_rejects_unknown_fields_and_zero_tests() {
        assert!(toml::from_str::<TestsConfig>("all_or_nothin = true").is_err());
        let c: TestsConfig = toml::from_str("all_or_nothing = true").unwrap();
        assert!(c.all_or_nothing);
        assert_eq!(c.stop_on_failure, None);
        assert_eq!(c.unavailable, Unavailable::Skip);
        let c: TestsConfig = toml::from_str("unavailable = \"zero\"").unwrap();
        assert_eq!(c.unavailable, Unavailable::Zero);
    }
}
