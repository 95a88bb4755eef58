//! One rollout in an in-process sandbox: its candidate and judge instances, each test in turn,
//! and the candidate's fuel.
//!
//! - **stdio** tests: the candidate instance runs the program as `__main__` on the test's stdin;
//!   the host compares what reached the WASI stdout.
//! - **call** tests: the candidate loads the program (and setup) and serves one call; the host
//!   compares the answer with the expected value.
//! - **assert** tests: the candidate loads the program and the setup; a judge instance, which never runs
//!   candidate code, runs the setup and the test with proxies for the program's names; each use
//!   of a proxy is forwarded through the host to the candidate.
//!
//! - **stdio** tests with a checker: after the candidate ran, a judge instance runs the checker
//!   on the input, the program's output and the expected output, under the checker's own
//!   budget (`checker.rs`).
//!
//! Tests marked `timing` run in a candidate instance of their own when the rollout also has
//! other tests, so no work done in an uncounted test can make a counted one cheaper.

use std::time::{Duration, Instant};

use tokio::sync::SemaphorePermit;

use crate::calibrate::TestKind;
use crate::checker;
use crate::compare::Rule;
use crate::config::EffectiveLimits;
use crate::engine::{self, Ended, InstanceLimits, Live, Loaded, Status, MAX_ARGUMENT_BYTES};
use crate::error::SandboxError;
use crate::exchange::Peer;
use crate::job::{seed_for, RunJob, RunReport};
use crate::judging::{self, Blame, Context, Judged};
use crate::local::Local;
use crate::names;
use crate::request;
use verdict_contract::rollout::{SuiteStyle, TestCase};
use verdict_contract::score::{Outcome, TestReport, TestResult};

/// One test's result with what the run needs besides it.
struct Tested {
    judged: Judged,
    /// A test module's items, each judged (empty for other tests, and for a module that
    /// failed before its items ran: `judged` says how).
    items: Vec<(String, Judged)>,
    /// The candidate's own fuel (baselines subtracted).
    fuel: u64,
    /// Fuel of everything else: instantiation, baselines, the judge.
    overhead: u64,
    /// A stdio test with a checker whose program ran to the end: its output, for the checker.
    to_check: Option<Vec<u8>>,
    /// A checker's partial credit for a test that did not pass.
    score: Option<f64>,
}

/// The state of one rollout's run.
pub(crate) struct Rollout<'a> {
    local: &'a Local,
    job: &'a RunJob<'a>,
    limits: EffectiveLimits,
    deadline: Instant,
    seed: u64,
    judge: Option<Live>,
    _permit: SemaphorePermit<'a>,
}

impl<'a> Rollout<'a> {
    /// Takes the interpreter slots the rollout may need at once.
    pub(crate) async fn start(
        local: &'a Local,
        job: &'a RunJob<'a>,
        start: Instant,
    ) -> Rollout<'a> {
        let config = &local.config;
        let limits = config.effective(job.limits);
        let tests = &job.tests[..job.tests.len().min(config.limits.max_tests)];
        let has_assert = tests.iter().any(|t| {
            matches!(
                t,
                TestCase::Assert { .. }
                    | TestCase::Suite { .. }
                    | TestCase::Stdio {
                        checker: Some(_),
                        ..
                    }
            )
        });
        // One candidate at a time (a fresh one per test), and the judge.
        let needed = 1 + u32::from(has_assert);
        let permit = local.pool.slots(needed).await;
        Rollout {
            local,
            job,
            limits,
            deadline: start + Duration::from_millis(limits.time_ms),
            seed: config.limits.seed.unwrap_or_else(|| seed_for(job.id)),
            judge: None,
            _permit: permit,
        }
    }

    fn cx(&self) -> Context {
        Context {
            limits: self.limits,
        }
    }

    /// A test's comparison rule: its own `compare` (the rollout's already folded in by the
    /// tests verifier), over the configured defaults.
    fn rule(&self, test: &TestCase) -> Rule {
        let own = match test {
            TestCase::Stdio { compare, .. } | TestCase::Call { compare, .. } => *compare,
            TestCase::Assert { .. } | TestCase::Suite { .. } => None,
        };
        Rule::from_compare(
            own.unwrap_or_default()
                .or(self.local.config.judge.compare()),
        )
    }

    fn instance_limits(&self) -> InstanceLimits {
        InstanceLimits {
            memory_bytes: self.limits.memory_bytes,
            output_bytes: self.limits.output_bytes,
            deadline: self.deadline,
        }
    }

    /// Most bytes of one value crossing between the instances (the output cap).
    fn value_limit(&self) -> usize {
        self.limits.output_bytes
    }

    /// A fresh instance with the rollout's limits. (A free function of what it needs: the
    /// rollout holds instances, which are not `Sync`, so `&self` cannot live across an await.)
    async fn fresh(local: &Local, limits: InstanceLimits) -> Result<Live, SandboxError> {
        let mut live = local.pool.fresh().await?;
        live.configure(limits);
        Ok(live)
    }

    /// Runs every test (see the module docs) and sums up.
    pub(crate) async fn run(mut self, start: Instant) -> Result<RunReport, SandboxError> {
        let job = self.job;
        let n = job.tests.len().min(self.local.config.limits.max_tests);
        let mut results: Vec<TestResult> = Vec::with_capacity(n);
        let (mut fuel, mut overhead) = (0u64, 0u64);
        // A failure of the program while it was loaded is the same for every assert and call
        // test (not for stdio tests: there it can depend on the input): judged once.
        let mut program_failure: Option<Judged> = None;
        let mut stopped = false;
        for (index, test) in job.tests[..n].iter().enumerate() {
            let reusable = !matches!(test, TestCase::Stdio { .. });
            let result = |judged: Judged, fuel: u64, wall_ms: f64| TestResult {
                index,
                kind: test.kind().to_string(),
                passed: judged.outcome == Outcome::Passed,
                outcome: judged.outcome,
                message: judged.message,
                fuel,
                wall_ms,
                score: None,
                item: None,
            };
            if stopped {
                let j = Judged {
                    outcome: Outcome::Failed,
                    message: Some("not run: an earlier test did not pass".into()),
                    blame: None,
                };
                results.push(result(j, 0, 0.0));
                continue;
            }
            if let (true, Some(prev)) = (reusable, &program_failure) {
                results.push(result(prev.clone(), 0, 0.0));
                continue;
            }
            if Instant::now() >= self.deadline {
                let j = Judged {
                    outcome: Outcome::Timeout,
                    message: Some(format!(
                        "not run: the {} ms budget was spent",
                        self.limits.time_ms
                    )),
                    blame: None,
                };
                results.push(result(j, 0, 0.0));
                continue;
            }
            let test_start = Instant::now();
            let tested = self.test(test).await?;
            fuel += tested.fuel;
            overhead += tested.overhead;
            if !tested.items.is_empty() {
                // One result per item of a module, all with the module's index; the module's
                // fuel is reported on its first item.
                let wall_ms = test_start.elapsed().as_secs_f64() * 1e3;
                for (i, (name, judged)) in tested.items.iter().enumerate() {
                    results.push(TestResult {
                        item: Some(name.clone()),
                        ..result(
                            judged.clone(),
                            if i == 0 { tested.fuel } else { 0 },
                            wall_ms,
                        )
                    });
                }
                if job.stop_on_failure && tested.judged.outcome != Outcome::Passed {
                    stopped = true;
                }
                continue;
            }
            if reusable && tested.judged.blame == Some(Blame::Program) {
                program_failure = Some(tested.judged.clone());
            }
            if job.stop_on_failure && tested.judged.outcome != Outcome::Passed {
                stopped = true;
            }
            let wall_ms = test_start.elapsed().as_secs_f64() * 1e3;
            results.push(TestResult {
                score: tested.score,
                ..result(tested.judged, tested.fuel, wall_ms)
            });
        }
        let passed = results.iter().filter(|r| r.passed).count();
        let first_bad = results.iter().find(|r| !r.passed);
        let outcome = first_bad.map_or(
            if n == 0 {
                Outcome::Failed
            } else {
                Outcome::Passed
            },
            |r| r.outcome,
        );
        let message =
            first_bad.and_then(|r| r.message.clone().map(|m| format!("test {}: {m}", r.index)));
        tracing::debug!(id = job.id, %outcome, passed, total = n, fuel, "Sandbox run finished.");
        Ok(RunReport {
            outcome,
            tests: TestReport {
                passed,
                // One per test, or per item of a test module.
                total: results.len(),
                results,
            },
            fuel,
            overhead_fuel: overhead,
            wall_ms: start.elapsed().as_secs_f64() * 1e3,
            tests_dropped: job.tests.len() - n,
            message,
        })
    }

    /// One test, bounded by the rollout's deadline. Sleeping guests are parked in the async
    /// WASI poll, where epochs cannot reach them; the timeout drops the future, which stops
    /// the instances, and both are discarded.
    async fn test(&mut self, test: &TestCase) -> Result<Tested, SandboxError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining + engine::EPOCH_TICK, self.test_inner(test)).await {
            Ok(Ok(mut tested)) => {
                if let (
                    Some(output),
                    TestCase::Stdio {
                        stdin,
                        stdout,
                        checker: Some(checker),
                        ..
                    },
                ) = (tested.to_check.take(), test)
                {
                    let (judged, score, overhead) =
                        self.check(checker, stdin, &output, stdout).await?;
                    tested.judged = judged;
                    tested.score = score;
                    tested.overhead += overhead;
                }
                Ok(tested)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                self.judge = None;
                Ok(Tested {
                    items: Vec::new(),
                    judged: Judged {
                        outcome: Outcome::Timeout,
                        message: Some(format!(
                            "wall-clock budget of {} ms exceeded",
                            self.limits.time_ms
                        )),
                        blame: Some(Blame::Test),
                    },
                    fuel: 0,
                    overhead: 0,
                    to_check: None,
                    score: None,
                })
            }
        }
    }

    /// Judges a stdio test's output with its checker (see `checker.rs` for the rule): first on
    /// the expected output, where there is one and it differs from the program's, then on the
    /// program's. Its verdict, its partial score, and the judge's fuel (overhead).
    async fn check(
        &mut self,
        checker: &str,
        input: &str,
        output: &[u8],
        expected: &str,
    ) -> Result<(Judged, Option<f64>, u64), SandboxError> {
        let cap = self.local.config.judge.checker_fuel;
        let output = String::from_utf8_lossy(output);
        if !expected.is_empty() && output == expected {
            // One run is both the validation and the verdict.
            let (run, _, overhead) = self
                .run_checker(checker, input, expected, expected, cap)
                .await?;
            let (judged, score) = match checker::broken_on_expected(run.clone()) {
                Some(broken) => (broken, None),
                None => checker::judged(run, true),
            };
            return Ok((judged, score, overhead));
        }
        let mut overhead = 0;
        let mut fuel = cap;
        let validated = !expected.is_empty();
        if validated {
            let (run, used, spent) = self
                .run_checker(checker, input, expected, expected, cap)
                .await?;
            overhead += spent;
            if let Some(broken) = checker::broken_on_expected(run) {
                return Ok((broken, None, overhead));
            }
            fuel = checker::budget_after_validation(used, cap);
        }
        let (run, _, spent) = self
            .run_checker(checker, input, &output, expected, fuel)
            .await?;
        overhead += spent;
        let (judged, score) = checker::judged(run, validated);
        Ok((judged, score, overhead))
    }

    /// One run of a checker in a judge instance, under `fuel` and the checker's wall-clock
    /// budget: how it ended, the fuel it burnt, and the judge's fuel in all (overhead).
    async fn run_checker(
        &mut self,
        checker: &str,
        input: &str,
        output: &str,
        expected: &str,
        fuel: u64,
    ) -> Result<(checker::CheckerRun, u64, u64), SandboxError> {
        let judge_config = self.local.config.judge;
        let budget = Duration::from_millis(judge_config.checker_time_ms);
        let limits = InstanceLimits {
            deadline: Instant::now() + budget,
            ..self.instance_limits()
        };
        let mut judge = match self.judge.take() {
            Some(j) => j,
            None => Self::fresh(self.local, limits).await?,
        };
        judge.configure(limits);
        let mut overhead = judge.take_overhead();
        judge.begin("", fuel, self.seed)?;
        let code = checker::driver(checker, input, output, expected);
        let run = judge.judge("", &code, "{}", self.seed, self.value_limit());
        let status = match tokio::time::timeout(budget + engine::EPOCH_TICK, run).await {
            Ok(status) => status,
            Err(_) => Err(Ended::Deadline),
        };
        let used = judge.fuel_used();
        overhead += used;
        let obs = judge.observe(status.as_ref().err());
        let capped = obs.memory_hit || obs.output_overflow;
        if status.is_ok() && !capped {
            judge.configure(self.instance_limits());
            self.judge = Some(judge);
        }
        let run = checker::CheckerRun::of(&status, capped, fuel, judge_config.checker_time_ms);
        Ok((run, used, overhead))
    }

    async fn test_inner(&mut self, test: &TestCase) -> Result<Tested, SandboxError> {
        // The setup is vocabulary both sides need (imports, shared classes): it runs after the
        // program in the candidate for every kind, and in the judge before an assert test.
        let setup = self.job.setup.unwrap_or("");
        let (stdin, main) = match test {
            TestCase::Stdio { stdin, .. } => (stdin.as_str(), true),
            TestCase::Call { .. } | TestCase::Assert { .. } | TestCase::Suite { .. } => ("", false),
        };
        let fuel_limit = self.limits.fuel;
        let mut overhead = 0;
        // A fresh interpreter per test: nothing an earlier test left behind reaches this one.
        let mut cand = Self::fresh(self.local, self.instance_limits()).await?;
        overhead += cand.take_overhead();
        cand.begin(stdin, fuel_limit, self.seed)?;
        let loaded = cand.load(self.job.program, setup, main, self.seed).await;
        let cx = self.cx();
        let load_obs = cand.observe(loaded.as_ref().err());
        let stdio = main;
        let load_failure = match &loaded {
            Err(ended) => judging::limits(Some(ended), &load_obs, cx, Blame::Program, stdio),
            Ok(l) => judging::loaded(l, &load_obs, cx, stdio),
        };
        let kind = TestKind::of(test);
        if let Some(judged) = load_failure {
            return Ok(self.finish(cand, judged, overhead, kind, 0));
        }
        match test {
            TestCase::Stdio {
                stdout, checker, ..
            } => {
                // Ran to the end (or exited with status 0): judge what it printed, or leave it
                // to the checker.
                let (judged, to_check) = match checker {
                    Some(_) => (Judged::passed(), Some(load_obs.stdout.clone())),
                    None => (judging::stdout(stdout, &load_obs, &self.rule(test)), None),
                };
                let mut tested = self.finish(cand, judged, overhead, kind, 0);
                tested.to_check = to_check;
                Ok(tested)
            }
            TestCase::Call {
                function,
                args,
                expected,
                ..
            } => {
                let request = match request::call(function, args) {
                    Ok(r) => r,
                    Err(m) => {
                        let judged = Judged {
                            outcome: Outcome::Error,
                            message: Some(format!("the arguments cannot be read: {m}")),
                            blame: None,
                        };
                        return Ok(self.finish(cand, judged, overhead, kind, 0));
                    }
                };
                let reply = cand.serve(&request, self.value_limit()).await;
                let obs = cand.observe(reply.as_ref().err());
                let judged = match &reply {
                    Err(ended) => judging::limits(Some(ended), &obs, cx, Blame::Test, false)
                        .unwrap_or_else(|| judged_ended(ended)),
                    // Output past the cap fails the test; a refused memory growth the program
                    // recovered from does not (its answer is judged like any other).
                    Ok(_) if obs.output_overflow => {
                        judging::limits(None, &obs, cx, Blame::Test, false)
                            .unwrap_or_else(|| judged_ended(&Ended::Trapped("output cap".into())))
                    }
                    Ok(r) if r.len() > self.value_limit() => Judged {
                        outcome: Outcome::OutputLimit,
                        message: Some(format!(
                            "the returned value is larger than {} KiB",
                            self.value_limit() >> 10
                        )),
                        blame: Some(Blame::Test),
                    },
                    Ok(r) => judging::answer(r, expected, &self.rule(test)),
                };
                Ok(self.finish(cand, judged, overhead, kind, 1))
            }
            TestCase::Assert { code, .. } => {
                let names = match &loaded {
                    Ok(Loaded { names, .. }) => {
                        names::for_judge(names, self.job.program, self.job.judge_setup)
                    }
                    Err(_) => String::new(),
                };
                self.assertion(cand, code, &names, overhead).await
            }
            TestCase::Suite {
                style,
                code,
                module,
            } => {
                let names = match &loaded {
                    Ok(Loaded { names, .. }) => {
                        names::for_judge(names, self.job.program, self.job.judge_setup)
                    }
                    Err(_) => String::new(),
                };
                let style = match style {
                    SuiteStyle::Pytest => engine::SuiteStyle::Pytest,
                    SuiteStyle::Unittest => engine::SuiteStyle::Unittest,
                };
                let module = module.as_deref().unwrap_or("solution");
                self.suite(cand, code, &names, style, module, overhead)
                    .await
            }
        }
    }

    /// An assert test: the judge runs it against the loaded candidate.
    async fn assertion(
        &mut self,
        cand: Live,
        code: &str,
        names: &str,
        mut overhead: u64,
    ) -> Result<Tested, SandboxError> {
        let mut judge = match self.judge.take() {
            Some(j) => j,
            None => Self::fresh(self.local, self.instance_limits()).await?,
        };
        overhead += judge.take_overhead();
        judge.begin("", self.limits.fuel, self.seed)?;
        judge.attach(Peer::new(cand, self.value_limit()));
        let status = judge
            .judge(
                self.job.setup.unwrap_or(""),
                code,
                names,
                self.seed,
                MAX_ARGUMENT_BYTES,
            )
            .await;
        let peer = judge
            .detach()
            .ok_or_else(|| SandboxError::Config("the judge lost its candidate".into()))?;
        overhead += judge.fuel_used();
        let judge_obs = judge.observe(status.as_ref().err());
        let spent = peer.finish();
        // A judge whose test's objects the program used (callbacks) ran the test's code on the
        // program's arguments: it is not kept for the next test, whatever that code changed.
        if status.is_ok()
            && !judge_obs.output_overflow
            && !judge_obs.memory_hit
            && spent.callbacks == 0
        {
            self.judge = Some(judge);
        }
        let cx = self.cx();
        let cand_obs = &spent.observed;
        let judged = judging::limits(spent.ended.as_ref(), cand_obs, cx, Blame::Test, false)
            .or_else(|| {
                (cand_obs.memory_hit && !matches!(status, Ok(Status::Ok))).then(|| Judged {
                    outcome: Outcome::MemoryLimit,
                    message: Some(format!(
                        "memory cap of {} MiB reached",
                        self.limits.memory_bytes >> 20
                    )),
                    blame: Some(Blame::Test),
                })
            })
            .or_else(|| spent.broken.as_deref().map(broke))
            .unwrap_or_else(|| judging::assertion(&status, spent.refused.as_deref(), cx));
        Ok(self.charge(
            spent.fuel_used,
            judged,
            overhead,
            TestKind::Assert,
            spent.calls,
        ))
    }

    /// A test module: the judge runs it against the loaded candidate, item by item; each item
    /// is judged as an assert test, the candidate's own limits first.
    async fn suite(
        &mut self,
        cand: Live,
        code: &str,
        names: &str,
        style: engine::SuiteStyle,
        module: &str,
        mut overhead: u64,
    ) -> Result<Tested, SandboxError> {
        let mut judge = Self::fresh(self.local, self.instance_limits()).await?;
        overhead += judge.take_overhead();
        judge.begin("", self.limits.fuel, self.seed)?;
        judge.attach(Peer::new(cand, self.value_limit()));
        let run = judge
            .judge_suite(
                self.job.setup.unwrap_or(""),
                code,
                names,
                self.seed,
                MAX_ARGUMENT_BYTES,
                style,
                module,
            )
            .await;
        let peer = judge
            .detach()
            .ok_or_else(|| SandboxError::Config("the judge lost its candidate".into()))?;
        overhead += judge.fuel_used();
        // A module's judge ran the module's own code beside the program's answers: never kept.
        drop(judge);
        let cx = self.cx();
        let spent = peer.finish();
        let cand_limit = judging::limits(
            spent.ended.as_ref(),
            &spent.observed,
            cx,
            Blame::Test,
            false,
        );
        let judge_one = |status: Result<Status, Ended>| -> Judged {
            if let Some(why) = &spent.broken {
                return broke(why);
            }
            let judged = judging::assertion(&status, spent.refused.as_deref(), cx);
            match (&cand_limit, judged.outcome) {
                // The candidate ended or hit a cap during this item: its own outcome.
                (Some(limit), o) if o != Outcome::Passed => limit.clone(),
                _ => judged,
            }
        };
        let items: Vec<(String, Judged)> = match run {
            Ok(items) => items
                .into_iter()
                .map(|item| (item.name, judge_one(Ok(item.status))))
                .collect(),
            Err(ended) => vec![("<module>".to_string(), judge_one(Err(ended)))],
        };
        let judged = items
            .iter()
            .find(|(_, j)| j.outcome != Outcome::Passed)
            .map(|(name, j)| Judged {
                message: j.message.as_ref().map(|m| format!("{name}: {m}")),
                ..j.clone()
            })
            .unwrap_or_else(|| {
                if items.is_empty() {
                    Judged {
                        outcome: Outcome::Error,
                        message: Some("the test module has no test items".into()),
                        blame: None,
                    }
                } else {
                    Judged::passed()
                }
            });
        let mut tested = self.charge(
            spent.fuel_used,
            judged,
            overhead,
            TestKind::Assert,
            spent.calls,
        );
        tested.items = items;
        Ok(tested)
    }

    /// Charges the candidate's fuel and builds the test's result. The candidate's instance is
    /// dropped: every test gets a fresh interpreter, so no state the program left behind (in
    /// `sys`, a module, a cache) can reach the next test — a reset inside one interpreter cannot
    /// be complete. The judge's instance is kept: no candidate code runs in it, and its
    /// interpreter-wide settings are reset per test (`_reset_interpreter` in `harness.py`).
    fn finish(
        &self,
        cand: Live,
        judged: Judged,
        overhead: u64,
        kind: TestKind,
        calls: u64,
    ) -> Tested {
        self.charge(cand.fuel_used(), judged, overhead, kind, calls)
    }

    /// [`Rollout::finish`] for a candidate that burnt `used` fuel.
    fn charge(
        &self,
        used: u64,
        judged: Judged,
        overhead: u64,
        kind: TestKind,
        calls: u64,
    ) -> Tested {
        let baseline = self.local.baselines.of(kind, calls);
        let fuel = used.saturating_sub(baseline);
        Tested {
            judged,
            items: Vec::new(),
            fuel,
            overhead: overhead + used.min(baseline),
            to_check: None,
            score: None,
        }
    }
}

/// A test whose candidate broke the exchange's protocol: failed.
fn broke(why: &str) -> Judged {
    Judged {
        outcome: Outcome::Failed,
        message: Some(format!("test: {why}")),
        blame: Some(Blame::Test),
    }
}

fn judged_ended(ended: &Ended) -> Judged {
    Judged {
        outcome: Outcome::RuntimeError,
        message: Some(ended.describe()),
        blame: Some(Blame::Test),
    }
}
