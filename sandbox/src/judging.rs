//! Judging: what the host observed of a test (how each call ended, the candidate's output, its
//! answer) turned into an outcome, a message and who is to blame. Nothing here trusts what the
//! candidate instance says about itself; the judge instance's findings are trusted because no
//! candidate code ever ran in it.

use serde_json::Value;

use crate::compare::{self, Rule};
use crate::config::EffectiveLimits;
use crate::engine::{first_line, phase_name, Ended, Failure, Loaded, Observed, Phase, Status};
use verdict_contract::json::Json;
use verdict_contract::score::Outcome;

/// Whose code a failure comes from. A failure of the program itself (while it was loaded,
/// before any test code ran) is the same for every assert and call test of the rollout, so it
/// is judged once; anything else is judged per test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blame {
    /// The candidate's program, while it was loaded.
    Program,
    /// The rollout's setup code.
    Setup,
    /// The test, or the candidate's code called by it.
    Test,
}

/// An outcome with its message and blame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judged {
    pub(crate) outcome: Outcome,
    pub(crate) message: Option<String>,
    pub(crate) blame: Option<Blame>,
}

impl Judged {
    pub(crate) fn passed() -> Judged {
        Judged {
            outcome: Outcome::Passed,
            message: None,
            blame: None,
        }
    }

    fn fail(outcome: Outcome, message: String, blame: Blame) -> Judged {
        Judged {
            outcome,
            message: Some(message),
            blame: Some(blame),
        }
    }
}

/// The limits a verdict message names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub(crate) limits: EffectiveLimits,
}

/// An instance that ended abnormally (trap, exit, fuel, deadline), or hit its memory or output
/// cap: the candidate's failure, whatever else happened.
pub(crate) fn limits(
    ended: Option<&Ended>,
    obs: &Observed,
    cx: Context,
    blame: Blame,
    stdio: bool,
) -> Option<Judged> {
    let fail = |o, m| Some(Judged::fail(o, m, blame));
    if obs.output_overflow {
        return fail(
            Outcome::OutputLimit,
            format!("output exceeded {} KiB", cx.limits.output_bytes >> 10),
        );
    }
    let ended = ended?;
    match ended {
        Ended::OutOfFuel => fail(
            Outcome::Timeout,
            format!("fuel budget of {} exhausted", cx.limits.fuel),
        ),
        Ended::Deadline => fail(
            Outcome::Timeout,
            format!("wall-clock budget of {} ms exceeded", cx.limits.time_ms),
        ),
        _ if obs.memory_hit => fail(
            Outcome::MemoryLimit,
            format!("memory cap of {} MiB reached", cx.limits.memory_bytes >> 20),
        ),
        Ended::Trapped(m) => fail(
            Outcome::RuntimeError,
            format!("the interpreter trapped: {}", first_line(m)),
        ),
        // A stdio program may end itself with status 0: its output is then judged.
        Ended::Exited(0) if stdio => None,
        Ended::Exited(code) => fail(
            Outcome::RuntimeError,
            format!("the process exited with code {code} before the tests finished"),
        ),
    }
}

fn raised(f: &Failure, blame: Blame) -> Judged {
    let outcome = if f.phase == Phase::Program && f.kind == "SyntaxError" {
        Outcome::SyntaxError
    } else {
        Outcome::RuntimeError
    };
    let message = if f.message.is_empty() {
        f.kind.clone()
    } else {
        format!("{}: {}", f.kind, f.message)
    };
    Judged::fail(
        outcome,
        format!("{}: {message}", phase_name(f.phase)),
        blame,
    )
}

/// How loading the program (and setup) went: `None` when it ran to the end (for stdio tests,
/// also when it exited with status 0: its output is judged).
pub(crate) fn loaded(loaded: &Loaded, obs: &Observed, cx: Context, stdio: bool) -> Option<Judged> {
    let blame_of = |phase| match phase {
        Phase::Setup => Blame::Setup,
        _ => Blame::Program,
    };
    if let Some(j) = limits(None, obs, cx, Blame::Program, stdio) {
        return Some(j);
    }
    match &loaded.status {
        Status::Ok => None,
        Status::Exit(0) if stdio => None,
        Status::Exit(code) => Some(Judged::fail(
            Outcome::RuntimeError,
            format!("program: SystemExit({code}) before the tests finished"),
            Blame::Program,
        )),
        Status::Raised(f) if obs.memory_hit && f.kind == "MemoryError" => Some(Judged::fail(
            Outcome::MemoryLimit,
            format!("memory cap of {} MiB reached", cx.limits.memory_bytes >> 20),
            blame_of(f.phase),
        )),
        Status::Raised(f) => Some(raised(f, blame_of(f.phase))),
    }
}

/// A stdio test's output against the expected output.
pub(crate) fn stdout(expected: &str, obs: &Observed, rule: &Rule) -> Judged {
    let actual = String::from_utf8_lossy(&obs.stdout);
    match compare::stdout_matches(&actual, expected, rule) {
        Ok(()) => Judged::passed(),
        Err(m) => Judged::fail(Outcome::Failed, format!("wrong output: {m}"), Blame::Test),
    }
}

/// A call test's answer (the candidate's `serve` reply) against the expected value.
pub(crate) fn answer(reply: &str, expected: &Json, rule: &Rule) -> Judged {
    let fail = |o, m: String| Judged::fail(o, m, Blame::Test);
    let expected = match expected.exact() {
        Ok(e) => e,
        Err(m) => {
            return Judged {
                outcome: Outcome::Error,
                message: Some(format!("the expected value cannot be read: {m}")),
                blame: None,
            }
        }
    };
    let value = match compare::parse_answer(reply) {
        Ok(v) => v,
        Err(m) => return fail(Outcome::Failed, format!("wrong value: {m}")),
    };
    let Value::Object(obj) = &value else {
        return fail(Outcome::Failed, "wrong value: malformed answer".into());
    };
    if let Some(v) = obj.get("ok") {
        return match compare::value_matches(v, &expected, rule) {
            Ok(()) => Judged::passed(),
            Err(m) => fail(Outcome::Failed, format!("wrong value: {m}")),
        };
    }
    if let Some(Value::Array(parts)) = obj.get("raised") {
        let text = |i: usize| parts.get(i).and_then(Value::as_str).unwrap_or("");
        let (kind, message) = (text(0), text(1));
        let message = if message.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}: {message}")
        };
        let outcome = if kind == "AssertionError" || kind.starts_with("Verdict") {
            Outcome::Failed
        } else {
            Outcome::RuntimeError
        };
        return fail(outcome, format!("test: {message}"));
    }
    if let Some(code) = obj.get("exit") {
        return fail(
            Outcome::RuntimeError,
            format!("test: SystemExit({code}) inside the call"),
        );
    }
    fail(Outcome::Failed, "wrong value: malformed answer".into())
}

/// An assert test, from the judge's status and what the host saw of both instances.
pub(crate) fn assertion(
    judge: &Result<Status, Ended>,
    refused: Option<&str>,
    cx: Context,
) -> Judged {
    let fail = |o, m: String| Judged::fail(o, m, Blame::Test);
    if let Some(why) = refused {
        return fail(Outcome::OutputLimit, why.to_string());
    }
    let status = match judge {
        Ok(status) => status,
        Err(Ended::OutOfFuel) => {
            return fail(
                Outcome::Timeout,
                format!(
                    "the test's own code used up the fuel budget of {}",
                    cx.limits.fuel
                ),
            )
        }
        Err(Ended::Deadline) => {
            return fail(
                Outcome::Timeout,
                format!("wall-clock budget of {} ms exceeded", cx.limits.time_ms),
            )
        }
        Err(other) => {
            return fail(
                Outcome::RuntimeError,
                format!("the test could not run: {}", other.describe()),
            )
        }
    };
    match status {
        Status::Ok => Judged::passed(),
        Status::Exit(code) => fail(
            Outcome::RuntimeError,
            format!("test: SystemExit({code}) in the test code"),
        ),
        Status::Raised(f) => match f.kind.as_str() {
            "VerdictOpaque" | "VerdictBadAnswer" | "VerdictAssertion" | "VerdictSkipped" => {
                fail(Outcome::Failed, format!("test: {}", f.message))
            }
            "VerdictCandidateExit" | "VerdictCandidateGone" => {
                fail(Outcome::RuntimeError, format!("test: {}", f.message))
            }
            // Not the program's fault, nor a wrong answer: verdict cannot judge this test.
            "VerdictUnjudgeable" => fail(
                Outcome::Error,
                format!(
                    "the test cannot be judged across the sandbox boundary: {}",
                    f.message
                ),
            ),
            _ if f.phase == Phase::Setup => raised(f, Blame::Setup),
            "AssertionError" if f.phase == Phase::Test => {
                let message = if f.message.is_empty() {
                    "AssertionError".to_string()
                } else {
                    format!("AssertionError: {}", f.message)
                };
                fail(Outcome::Failed, format!("test: {message}"))
            }
            _ => raised(f, Blame::Test),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use verdict_contract::rollout::Compare;

    /// Pieces a hostile candidate assembles its answers from: tags out of place, extreme
    /// exponents and integers, deep and wide nesting, repeated keys.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(r#"{"ok":"#.to_string()),
            Just(r#"{"stop":true}"#.to_string()),
            Just(r#"{"raised":["ValueError","x",["Exception"],[1]]}"#.to_string()),
            Just(r#"{"exit":3}"#.to_string()),
            Just(r#"{"decimal":"9E+9223372036854775807"}"#.to_string()),
            Just(r#"{"decimal":"-1.5E-9223372036854775808"}"#.to_string()),
            Just(r#"{"int":"99999999999999999999999999999999"}"#.to_string()),
            Just(r#"{"float":"nan"}"#.to_string()),
            Just(r#"{"fraction":[{"int":"4"},{"int":"0"}]}"#.to_string()),
            Just(r#"{"dict":[["a",1],["a",2],[1,3]]}"#.to_string()),
            Just(r#"{"set":["#.to_string()),
            Just(r#"{"graph":[["ListNode",[["val",1],["next",{"ref":0}]]]]}"#.to_string()),
            Just("[".repeat(700)),
            Just("]".repeat(700)),
            Just(",".to_string()),
            Just("1e999".to_string()),
            "[-+0-9eE.]{1,30}",
            "\\PC{0,8}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Whatever bytes the candidate answers a call test with, judging them never panics,
        /// never passes a wrong answer off as `error`, and stays within the answer's size.
        #[test]
        fn any_candidate_answer_is_judged_without_panicking(
            pieces in proptest::collection::vec(piece(), 0..12),
            unordered in any::<bool>(),
        ) {
            let reply = pieces.concat();
            let rule = Rule::from_compare(Compare {
                unordered: Some(unordered),
                ..Compare::default()
            });
            for expected in ["[1, 2, 3]", "{\"a\": 1}", "123456789012345678901234567890", "1.5"] {
                let expected = Json::from_text(expected).unwrap();
                let judged = answer(&reply, &expected, &rule);
                prop_assert_ne!(judged.outcome, Outcome::Error);
                if let Some(m) = &judged.message {
                    prop_assert!(m.len() <= 4 * reply.len() + 2_000, "{}", m.len());
                }
            }
        }
    }
}
