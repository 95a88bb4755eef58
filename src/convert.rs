//! Conversions between the wire messages in [`crate::pb`] and the library types
//! ([`Rollout`], [`Score`], …).
//!
//! The messages mirror the JSONL format field for field. Free-form JSON (call-test `args` and
//! `expected`, verifier `details`, a rollout's unknown fields in `extra`) travels as JSON text,
//! which round-trips exactly: a rollout scored by file or by RPC gets the same reward, and a
//! score read back from the wire serializes to the same JSONL line.

use crate::field_error::FieldError;
use crate::json::Json;
use crate::pb;
use crate::rollout::{Compare, Limits, Rollout, SuiteStyle, TestCase};
use crate::score::{Cost, Outcome, Score, TestReport, TestResult, VerifierScore};

/// The fields a JSONL rollout line defines; `extra` must not repeat them.
const ROLLOUT_FIELDS: &[&str] = &[
    "id",
    "problem_id",
    "prompt",
    "completion",
    "tests",
    "setup",
    "judge_setup",
    "entry_point",
    "reference",
    "limits",
    "compare",
    "answer",
];

fn json_value(text: &str, field: impl Into<String>) -> Result<serde_json::Value, FieldError> {
    serde_json::from_str(text).map_err(|e| FieldError::new(field, format!("not JSON text: {e}")))
}

fn json_text(value: &serde_json::Value) -> String {
    serde_json::to_string(value).expect("JSON values serialize")
}

/// JSON text read exactly (integers of any size): a call test's `args` and `expected`.
fn exact_json(text: &str, field: impl Into<String>) -> Result<Json, FieldError> {
    Json::from_text(text)
        .map_err(|e| FieldError::new(field, e.replacen("not JSON", "not JSON text", 1)))
}

/// Whether JSON text stands for no value: empty, or `null` (absent, as in JSONL).
fn absent(text: &str) -> bool {
    matches!(text.trim(), "" | "null")
}

/// A comparison rule from its JSON text (empty or `null`: none).
fn compare_from(text: &str, field: impl Into<String>) -> Result<Option<Compare>, FieldError> {
    let field = field.into();
    if absent(text) {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| FieldError::new(field, format!("not a comparison rule: {e}")))
}

fn compare_text(c: &Option<Compare>) -> String {
    c.map(|c| serde_json::to_string(&c).expect("rules serialize"))
        .unwrap_or_default()
}

impl From<Outcome> for pb::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Passed => pb::Outcome::Passed,
            Outcome::Failed => pb::Outcome::Failed,
            Outcome::NotCode => pb::Outcome::NotCode,
            Outcome::NotPython => pb::Outcome::NotPython,
            Outcome::SyntaxError => pb::Outcome::SyntaxError,
            Outcome::Timeout => pb::Outcome::Timeout,
            Outcome::MemoryLimit => pb::Outcome::MemoryLimit,
            Outcome::OutputLimit => pb::Outcome::OutputLimit,
            Outcome::RuntimeError => pb::Outcome::RuntimeError,
            Outcome::InvalidInput => pb::Outcome::InvalidInput,
            Outcome::Error => pb::Outcome::Error,
            Outcome::TestsUnavailable => pb::Outcome::TestsUnavailable,
        }
    }
}

/// The library outcome for a wire enum value (`None` for `OUTCOME_UNSPECIFIED` and unknown values).
pub fn outcome_from_pb(value: i32) -> Option<Outcome> {
    Some(match pb::Outcome::try_from(value).ok()? {
        pb::Outcome::Unspecified => return None,
        pb::Outcome::Passed => Outcome::Passed,
        pb::Outcome::Failed => Outcome::Failed,
        pb::Outcome::NotCode => Outcome::NotCode,
        pb::Outcome::NotPython => Outcome::NotPython,
        pb::Outcome::SyntaxError => Outcome::SyntaxError,
        pb::Outcome::Timeout => Outcome::Timeout,
        pb::Outcome::MemoryLimit => Outcome::MemoryLimit,
        pb::Outcome::OutputLimit => Outcome::OutputLimit,
        pb::Outcome::RuntimeError => Outcome::RuntimeError,
        pb::Outcome::InvalidInput => Outcome::InvalidInput,
        pb::Outcome::Error => Outcome::Error,
        pb::Outcome::TestsUnavailable => Outcome::TestsUnavailable,
    })
}

impl TryFrom<pb::Rollout> for Rollout {
    type Error = FieldError;

    /// Checks what the JSONL parser checks: a non-empty `id`, a kind on every test, JSON text
    /// where JSON is expected, and an `extra` object that does not repeat a defined field.
    fn try_from(r: pb::Rollout) -> Result<Self, FieldError> {
        if r.id.is_empty() {
            return Err(FieldError::new("id", "is empty"));
        }
        let tests = r
            .tests
            .into_iter()
            .enumerate()
            .map(|(i, t)| test_from_pb(t, i))
            .collect::<Result<Vec<_>, _>>()?;
        let extra = extra_from(&r.extra)?;
        let limits = r.limits.map(limits_from).transpose()?;
        Ok(Rollout {
            id: r.id,
            problem_id: r.problem_id,
            prompt: r.prompt,
            completion: r.completion,
            tests,
            setup: r.setup,
            judge_setup: r.judge_setup,
            entry_point: r.entry_point,
            reference: r.reference,
            limits,
            compare: compare_from(&r.compare, "compare")?,
            answer: r.answer,
            extra,
        })
    }
}

/// `extra` from its JSON text: an object (empty or `null`: none) that does not repeat a field of
/// the rollout, except with `null`, which means absent there as anywhere.
fn extra_from(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, FieldError> {
    if absent(text) {
        return Ok(serde_json::Map::new());
    }
    let serde_json::Value::Object(mut extra) = json_value(text, "extra")? else {
        return Err(FieldError::new("extra", "must be a JSON object"));
    };
    extra.retain(|k, v| !(v.is_null() && ROLLOUT_FIELDS.contains(&k.as_str())));
    if let Some(key) = extra.keys().find(|k| ROLLOUT_FIELDS.contains(&k.as_str())) {
        return Err(FieldError::new(
            "extra",
            format!("key `{key}` is a field of Rollout; set the field instead"),
        ));
    }
    Ok(extra)
}

/// A rollout's limits, each at least 1 as in JSON (`docs/openapi.yaml`).
fn limits_from(l: pb::Limits) -> Result<Limits, FieldError> {
    for (name, value) in [
        ("time_ms", l.time_ms),
        ("memory_mb", l.memory_mb),
        ("output_kb", l.output_kb),
    ] {
        if value == Some(0) {
            return Err(FieldError::new(
                format!("limits.{name}"),
                "must be a whole number of at least 1, got 0",
            ));
        }
    }
    Ok(Limits {
        time_ms: l.time_ms,
        memory_mb: l.memory_mb,
        output_kb: l.output_kb,
    })
}

fn test_from_pb(t: pb::TestCase, i: usize) -> Result<TestCase, FieldError> {
    use pb::test_case::Kind;
    Ok(match t.kind {
        None => {
            return Err(FieldError::new(
                format!("tests[{i}].kind"),
                "not set (one of assert, stdio, call, pytest, unittest)",
            ))
        }
        Some(Kind::Assert(a)) => TestCase::Assert {
            code: a.code,
            timing: a.timing,
        },
        Some(Kind::Pytest(m)) => suite_from_pb(SuiteStyle::Pytest, m, i, "pytest")?,
        Some(Kind::Unittest(m)) => suite_from_pb(SuiteStyle::Unittest, m, i, "unittest")?,
        Some(Kind::Stdio(s)) => TestCase::Stdio {
            stdin: s.stdin,
            stdout: s.stdout,
            timing: s.timing,
            compare: compare_from(&s.compare, format!("tests[{i}].stdio.compare"))?,
            checker: s.checker,
        },
        Some(Kind::Call(c)) => {
            let args = c
                .args
                .iter()
                .enumerate()
                .map(|(j, a)| exact_json(a, format!("tests[{i}].call.args[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            if c.expected.trim().is_empty() {
                return Err(FieldError::new(
                    format!("tests[{i}].call.expected"),
                    "is empty (JSON text of the expected value)",
                ));
            }
            TestCase::Call {
                function: c.r#fn,
                args,
                expected: exact_json(&c.expected, format!("tests[{i}].call.expected"))?,
                timing: c.timing,
                compare: compare_from(&c.compare, format!("tests[{i}].call.compare"))?,
            }
        }
    })
}

/// A test module from the proto: an empty `module` is `solution`; any other must be a dotted
/// module name (as in JSON, checked by the contract's own decoder).
fn suite_from_pb(
    style: SuiteStyle,
    m: pb::SuiteTest,
    i: usize,
    kind: &str,
) -> Result<TestCase, FieldError> {
    let module = (!m.module.is_empty()).then_some(m.module);
    let text = serde_json::json!({"kind": kind, "code": m.code, "module": module}).to_string();
    let test: TestCase = serde_json::from_str(&text)
        .map_err(|e| FieldError::new(format!("tests[{i}].{kind}"), e.to_string()))?;
    debug_assert!(matches!(&test, TestCase::Suite { style: s, .. } if *s == style));
    Ok(test)
}

impl From<&Rollout> for pb::Rollout {
    fn from(r: &Rollout) -> Self {
        use pb::test_case::Kind;
        pb::Rollout {
            id: r.id.clone(),
            problem_id: r.problem_id.clone(),
            prompt: r.prompt.clone(),
            completion: r.completion.clone(),
            tests: r
                .tests
                .iter()
                .map(|t| pb::TestCase {
                    kind: Some(match t {
                        TestCase::Assert { code, timing } => Kind::Assert(pb::AssertTest {
                            code: code.clone(),
                            timing: *timing,
                        }),
                        TestCase::Suite {
                            style,
                            code,
                            module,
                        } => {
                            let m = pb::SuiteTest {
                                code: code.clone(),
                                module: module.clone().unwrap_or_default(),
                            };
                            match style {
                                SuiteStyle::Pytest => Kind::Pytest(m),
                                SuiteStyle::Unittest => Kind::Unittest(m),
                            }
                        }
                        TestCase::Stdio {
                            stdin,
                            stdout,
                            timing,
                            compare,
                            checker,
                        } => Kind::Stdio(pb::StdioTest {
                            stdin: stdin.clone(),
                            stdout: stdout.clone(),
                            timing: *timing,
                            compare: compare_text(compare),
                            checker: checker.clone(),
                        }),
                        TestCase::Call {
                            function,
                            args,
                            expected,
                            timing,
                            compare,
                        } => Kind::Call(pb::CallTest {
                            r#fn: function.clone(),
                            args: args.iter().map(|a| a.text().to_string()).collect(),
                            expected: expected.text().to_string(),
                            timing: *timing,
                            compare: compare_text(compare),
                        }),
                    }),
                })
                .collect(),
            setup: r.setup.clone(),
            judge_setup: r.judge_setup.clone(),
            entry_point: r.entry_point.clone(),
            reference: r.reference.clone(),
            limits: r.limits.map(|l| pb::Limits {
                time_ms: l.time_ms,
                memory_mb: l.memory_mb,
                output_kb: l.output_kb,
            }),
            extra: if r.extra.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&r.extra).expect("JSON maps serialize")
            },
            compare: compare_text(&r.compare),
            answer: r.answer.clone(),
        }
    }
}

/// A kind's [`Origin`](crate::registry::Origin) on the wire (`ListVerifiers`).
pub fn kind_origin(origin: &crate::registry::Origin) -> pb::KindOrigin {
    use crate::registry::Origin;
    match origin {
        Origin::BuiltIn => pb::KindOrigin::BuiltIn,
        Origin::Rust => pb::KindOrigin::Rust,
        Origin::PythonFile(_) | Origin::PythonModule(_) => pb::KindOrigin::Python,
        Origin::WasmFile(_) => pb::KindOrigin::Wasm,
    }
}

impl From<&Score> for pb::Score {
    fn from(s: &Score) -> Self {
        pb::Score {
            id: s.id.clone(),
            reward: s.reward,
            outcome: pb::Outcome::from(s.outcome) as i32,
            verifiers: s
                .verifiers
                .iter()
                .map(|v| pb::VerifierScore {
                    name: v.name.clone(),
                    score: v.score,
                    weight: v.weight,
                    gate: v.gate,
                    skipped: v.skipped,
                    details: json_text(&v.details),
                })
                .collect(),
            tests: s.tests.as_ref().map(|t| pb::TestReport {
                passed: t.passed as u64,
                total: t.total as u64,
                results: t
                    .results
                    .iter()
                    .map(|r| pb::TestResult {
                        index: r.index as u64,
                        kind: r.kind.clone(),
                        passed: r.passed,
                        outcome: pb::Outcome::from(r.outcome) as i32,
                        message: r.message.clone(),
                        fuel: r.fuel,
                        wall_ms: r.wall_ms,
                        score: r.score,
                        item: r.item.clone(),
                    })
                    .collect(),
            }),
            cost: Some(pb::Cost {
                fuel: s.cost.fuel,
                wall_ms: s.cost.wall_ms,
            }),
            error: s.error.clone(),
            semantics: s.semantics,
        }
    }
}

impl TryFrom<pb::Score> for Score {
    type Error = FieldError;

    fn try_from(s: pb::Score) -> Result<Self, FieldError> {
        let outcome = |v: i32, field: String| {
            outcome_from_pb(v).ok_or_else(|| FieldError::new(field, format!("unknown outcome {v}")))
        };
        Ok(Score {
            outcome: outcome(s.outcome, "outcome".into())?,
            verifiers: s
                .verifiers
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    Ok(VerifierScore {
                        details: if v.details.is_empty() {
                            serde_json::Value::Null
                        } else {
                            json_value(&v.details, format!("verifiers[{i}].details"))?
                        },
                        name: v.name,
                        score: v.score,
                        weight: v.weight,
                        gate: v.gate,
                        skipped: v.skipped,
                    })
                })
                .collect::<Result<_, FieldError>>()?,
            tests: s
                .tests
                .map(|t| {
                    Ok::<_, FieldError>(TestReport {
                        passed: t.passed as usize,
                        total: t.total as usize,
                        results: t
                            .results
                            .into_iter()
                            .enumerate()
                            .map(|(i, r)| {
                                Ok(TestResult {
                                    outcome: outcome(
                                        r.outcome,
                                        format!("tests.results[{i}].outcome"),
                                    )?,
                                    index: r.index as usize,
                                    kind: r.kind,
                                    passed: r.passed,
                                    message: r.message,
                                    fuel: r.fuel,
                                    wall_ms: r.wall_ms,
                                    score: r.score,
                                    item: r.item,
                                })
                            })
                            .collect::<Result<_, FieldError>>()?,
                    })
                })
                .transpose()?,
            cost: s
                .cost
                .map(|c| Cost {
                    fuel: c.fuel,
                    wall_ms: c.wall_ms,
                })
                .unwrap_or_default(),
            id: s.id,
            reward: s.reward,
            error: s.error,
            // 0 is a server from before versioning, whose scores were version 1.
            semantics: match s.semantics {
                0 => crate::score::UNVERSIONED_SEMANTICS,
                v => v,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample_rollout() -> Rollout {
        serde_json::from_str(
            r#"{"id": "r-17", "problem_id": "two-sum", "prompt": "p", "completion": "c",
            "tests": [{"kind": "assert", "code": "assert add(1, 2) == 3"},
                      {"kind": "stdio", "stdin": "1 2\n", "stdout": "3\n", "timing": true},
                      {"kind": "call", "fn": "add", "args": [1, 2.0, [3], {"a": null}], "expected": 3}],
            "setup": "import math", "entry_point": "add", "reference": "def add(a,b): return a+b",
            "limits": {"time_ms": 10000, "memory_mb": 256}, "test": "def check(c): pass"}"#,
        )
        .unwrap()
    }

    #[test]
    fn rollouts_round_trip_exactly() {
        let r = sample_rollout();
        let wire = pb::Rollout::from(&r);
        assert_eq!(wire.tests[2].kind.as_ref().map(|_| ()), Some(()));
        let back = Rollout::try_from(wire).unwrap();
        assert_eq!(back, r);
        // Integers stay integers and floats stay floats.
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&r).unwrap()
        );
    }

    #[test]
    fn scores_round_trip_to_the_same_jsonl_line() {
        let s = Score {
            id: "a".into(),
            reward: Some(0.8),
            outcome: Outcome::Failed,
            semantics: crate::score::REWARD_SEMANTICS,
            verifiers: vec![VerifierScore {
                name: "format".into(),
                score: 1.0,
                weight: 0.2,
                gate: false,
                skipped: false,
                details: json!({"think": true, "line": 3, "ratio": 0.5}),
            }],
            tests: Some(TestReport {
                passed: 1,
                total: 2,
                results: vec![TestResult {
                    index: 1,
                    kind: "call".into(),
                    passed: false,
                    outcome: Outcome::RuntimeError,
                    message: Some("ZeroDivisionError".into()),
                    fuel: 12,
                    wall_ms: 0.5,
                    score: Some(0.25),
                    item: Some("test_add[1-2]".into()),
                }],
            }),
            cost: Cost {
                fuel: 99,
                wall_ms: 1.25,
            },
            error: None,
        };
        let wire = pb::Score::from(&s);
        assert_eq!(wire.semantics, crate::score::REWARD_SEMANTICS);
        let back = Score::try_from(wire.clone()).unwrap();
        assert_eq!(back, s);
        // A server from before versioning sends no version: its scores are version 1.
        let old = Score::try_from(pb::Score {
            semantics: 0,
            ..wire
        })
        .unwrap();
        assert_eq!(old.semantics, crate::score::UNVERSIONED_SEMANTICS);
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&s).unwrap()
        );
    }

    #[test]
    fn outcome_names_match_the_json_names() {
        for o in Outcome::ALL {
            let wire = pb::Outcome::from(o);
            assert_eq!(wire.as_str_name().to_lowercase(), o.as_str());
            assert_eq!(outcome_from_pb(wire as i32), Some(o));
        }
        assert_eq!(outcome_from_pb(0), None);
        assert_eq!(outcome_from_pb(99), None);
    }

    #[test]
    fn null_json_text_is_absent_but_stays_a_call_tests_value() {
        let mut wire = pb::Rollout::from(&sample_rollout());
        wire.compare = "null".into();
        wire.extra =
            r#"{"prompt": null, "tests": null, "test": "def check(c): pass", "n": null}"#.into();
        let mut expected_null = None;
        for t in &mut wire.tests {
            match &mut t.kind {
                Some(pb::test_case::Kind::Stdio(s)) => s.compare = " null ".into(),
                Some(pb::test_case::Kind::Call(c)) => {
                    c.compare = "null".into();
                    c.expected = "null".into();
                    expected_null = Some(());
                }
                _ => {}
            }
        }
        assert!(expected_null.is_some());
        let r = Rollout::try_from(wire).unwrap();
        assert_eq!(r.compare, None);
        assert_eq!(
            r.prompt, "p",
            "a null in `extra` does not override the field"
        );
        assert!(!r.extra.contains_key("prompt") && !r.extra.contains_key("tests"));
        // Dataset fields keep what they hold, `null` included, as in JSONL.
        assert_eq!(r.extra.get("n"), Some(&serde_json::Value::Null));
        assert!(matches!(&r.tests[1], TestCase::Stdio { compare: None, .. }));
        assert!(
            matches!(&r.tests[2], TestCase::Call { expected, compare: None, .. } if expected.is_null())
        );
        let mut wire = pb::Rollout::from(&sample_rollout());
        wire.extra = "null".into();
        assert!(Rollout::try_from(wire).unwrap().extra.is_empty());
    }

    #[test]
    fn invalid_rollouts_name_the_field() {
        let mut wire = pb::Rollout::from(&sample_rollout());
        wire.id.clear();
        assert_eq!(Rollout::try_from(wire).unwrap_err().field, "id");

        let mut wire = pb::Rollout::from(&sample_rollout());
        if let Some(pb::test_case::Kind::Call(c)) = &mut wire.tests[2].kind {
            c.args[1] = "{oops".into();
        }
        let err = Rollout::try_from(wire).unwrap_err();
        assert_eq!(err.field, "tests[2].call.args[1]");
        assert!(err.reason.starts_with("not JSON text"), "{err}");

        let mut wire = pb::Rollout::from(&sample_rollout());
        wire.tests[0].kind = None;
        assert_eq!(
            Rollout::try_from(wire)
                .unwrap_err()
                .within("rollout")
                .to_string(),
            "rollout.tests[0].kind: not set (one of assert, stdio, call, pytest, unittest)"
        );

        let mut wire = pb::Rollout::from(&sample_rollout());
        wire.extra = r#"{"id": "other"}"#.into();
        assert_eq!(Rollout::try_from(wire).unwrap_err().field, "extra");

        let mut wire = pb::Rollout::from(&sample_rollout());
        wire.limits = Some(pb::Limits {
            memory_mb: Some(0),
            ..Default::default()
        });
        let err = Rollout::try_from(wire).unwrap_err();
        assert_eq!(err.field, "limits.memory_mb");

        let mut wire = pb::Rollout::from(&sample_rollout());
        wire.extra = "[1]".into();
        assert_eq!(
            Rollout::try_from(wire).unwrap_err().reason,
            "must be a JSON object"
        );
    }
}
