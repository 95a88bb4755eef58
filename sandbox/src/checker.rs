//! Checkers: a stdio test's special judge (Codeforces style). The checker is trusted Python
//! that defines `check(input, output, expected)`; it runs in a **judge** instance (where no
//! candidate code ever ran) with the three texts as plain `str` literals, under its own fuel
//! and wall-clock budget (`[sandbox.judge] checker_fuel`, `checker_time_ms`).
//!
//! `check` returns `True`/`False`, or a score in [0, 1] (1 passes; less fails, and the score is
//! the test's partial credit: `TestResult::score`, counted by the pass fraction). An
//! `AssertionError` it raises is its "wrong answer".
//!
//! **What the program caused is the program's.** The program chooses its output, so it can
//! choose one that makes a checker raise (plain text for a checker that parses numbers, a huge
//! number, an empty output). So a checker is first run on the expected output, where there is
//! one: a checker that does not pass it is broken (a dataset bug) and the test is `error`.
//! A checker that passed the expected output and then raises, exits, runs out of fuel (budget:
//! [`budget_after_validation`]) or memory, or returns something other than a bool or a score
//! in [0, 1] on the program's output, has found the output wrong: the test fails, and its
//! message starts with `checker_raised`. A checker with no expected output to be validated on
//! that breaks on the program's output fails it the same way (a checker broken for every output
//! then fails a whole GRPO group alike: no signal, not a wrong one). A wall-clock overrun
//! depends on host load and stays `error`.
//!
//! A checker that is not valid Python or defines no `check` is found before anything runs by
//! verdict's `tests` verifier (tree-sitter, on the host): the rollout is `invalid_input`, naming
//! `tests[i].checker`. Run here directly, such a checker is `error`, as any checker that breaks.

use crate::engine::{first_line, Ended, Phase, Status};
use crate::judging::{Blame, Judged};
use verdict_contract::score::Outcome;

/// The exception the driver raises to report a partial score (its message is the score).
const SCORE_KIND: &str = "VerdictCheckerScore";

/// A Python string literal of `s` (any text: quotes, backslashes, control characters).
fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            // Line and paragraph separators end a line in some readers; keep them escaped.
            '\u{2028}' | '\u{2029}' | '\u{85}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The code the judge runs: the checker, then one call of its `check` on the test's data.
pub(crate) fn driver(checker: &str, input: &str, output: &str, expected: &str) -> String {
    format!(
        "{checker}\n\n\
         __verdict_result = check({input}, {output}, {expected})\n\
         if type(__verdict_result) is bool:\n\
         \x20   if not __verdict_result:\n\
         \x20       raise AssertionError('the checker rejected the output')\n\
         elif type(__verdict_result) in (int, float) and 0 <= __verdict_result <= 1:\n\
         \x20   if __verdict_result < 1:\n\
         \x20       class {SCORE_KIND}(Exception):\n\
         \x20           pass\n\
         \x20       raise {SCORE_KIND}(repr(float(__verdict_result)))\n\
         else:\n\
         \x20   raise TypeError('check() must return a bool or a score in [0, 1], not '\n\
         \x20                   + type(__verdict_result).__name__)\n",
        input = py_str(input),
        output = py_str(output),
        expected = py_str(expected),
    )
}

/// Fuel a validated checker may burn on the program's output: ten times what it burnt on the
/// expected output plus [`CHECKER_FUEL_SLACK`], within `[sandbox.judge] checker_fuel`.
pub(crate) fn budget_after_validation(used_on_expected: u64, cap: u64) -> u64 {
    used_on_expected
        .saturating_mul(10)
        .saturating_add(CHECKER_FUEL_SLACK)
        .min(cap)
}

/// Fuel every validated checker gets beyond ten times its cost on the expected output (a few
/// tens of milliseconds of Python).
pub(crate) const CHECKER_FUEL_SLACK: u64 = 200_000_000;

/// How one run of a checker ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CheckerRun {
    /// `check` accepted the output.
    Passed,
    /// A score in [0, 1).
    Score(f64),
    /// `check` rejected the output (returned `False`, or raised `AssertionError`).
    Rejected(String),
    /// It raised, exited, ran out of fuel or memory, hit the output cap, or returned something
    /// that is neither a bool nor a score in [0, 1].
    Broke(String),
    /// It ran past its wall-clock budget (host load decides this, not the output).
    Overran(String),
}

impl CheckerRun {
    /// How a run ended, from the judge's status and whether it hit the memory or output cap.
    pub(crate) fn of(
        status: &Result<Status, Ended>,
        capped: bool,
        fuel: u64,
        time_ms: u64,
    ) -> CheckerRun {
        if capped {
            return CheckerRun::Broke("it hit the memory or output cap".into());
        }
        let status = match status {
            Ok(s) => s,
            Err(Ended::OutOfFuel) => {
                return CheckerRun::Broke(format!("it used up its fuel budget of {fuel}"))
            }
            Err(Ended::Deadline) => {
                return CheckerRun::Overran(format!("it ran past its {time_ms} ms budget"))
            }
            Err(other) => return CheckerRun::Broke(other.describe()),
        };
        match status {
            Status::Ok => CheckerRun::Passed,
            Status::Exit(code) => CheckerRun::Broke(format!("SystemExit({code})")),
            Status::Raised(f) if f.phase == Phase::Test && f.kind == "AssertionError" => {
                CheckerRun::Rejected(if f.message.is_empty() {
                    "wrong output: the checker rejected it".into()
                } else {
                    format!("wrong output: the checker says {}", first_line(&f.message))
                })
            }
            Status::Raised(f) if f.kind == SCORE_KIND => match f.message.parse::<f64>() {
                Ok(score) if (0.0..1.0).contains(&score) => CheckerRun::Score(score),
                _ => CheckerRun::Broke(format!("unreadable score {:?}", first_line(&f.message))),
            },
            Status::Raised(f) => {
                CheckerRun::Broke(format!("{}: {}", f.kind, first_line(&f.message)))
            }
        }
    }
}

fn error(message: String) -> Judged {
    Judged {
        outcome: Outcome::Error,
        message: Some(format!("the checker failed: {message}")),
        blame: None,
    }
}

fn failed(message: String) -> Judged {
    Judged {
        outcome: Outcome::Failed,
        message: Some(message),
        blame: Some(Blame::Test),
    }
}

/// The verdict of the run on the expected output: `None` when the checker judged it normally
/// (a pass or a score: a checker that only ever gives partial credit is the dataset's choice),
/// else the `error` of a broken checker.
pub(crate) fn broken_on_expected(run: CheckerRun) -> Option<Judged> {
    let why = match run {
        CheckerRun::Passed | CheckerRun::Score(_) => return None,
        CheckerRun::Rejected(m) => format!("it rejects the expected output ({m})"),
        CheckerRun::Broke(m) => format!("on the expected output: {m}"),
        CheckerRun::Overran(m) => m,
    };
    Some(error(why))
}

/// The verdict on the program's output and the partial score it gave (a score below 1).
/// `validated`: the checker judged the expected output normally first. Either way a checker
/// that breaks on this output has found it wrong (`checker_raised`); only a wall-clock overrun
/// is `error`.
pub(crate) fn judged(run: CheckerRun, validated: bool) -> (Judged, Option<f64>) {
    match run {
        CheckerRun::Passed => (Judged::passed(), None),
        CheckerRun::Score(score) => (
            failed(format!("wrong output: the checker scored it {score}")),
            Some(score),
        ),
        CheckerRun::Rejected(m) => (failed(m), None),
        CheckerRun::Broke(m) if validated => (
            failed(format!(
                "checker_raised: wrong output: the checker, which accepts the expected output, failed on it: {m}"
            )),
            None,
        ),
        // Nothing to validate it on: the output the program chose is still what broke it. A
        // checker broken for every output fails every rollout of a group alike, which gives a
        // GRPO group no signal rather than a wrong one.
        CheckerRun::Broke(m) => (
            failed(format!(
                "checker_raised: wrong output: the checker failed on it (the test has no expected output to validate the checker on): {m}"
            )),
            None,
        ),
        CheckerRun::Overran(m) => (error(m), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_becomes_literals_that_python_reads_back_unchanged() {
        let nasty = "a'b\\c\n\r\t\u{0}\u{2028}\u{85}\"\"\" ') ; import os #\\";
        let lit = py_str(nasty);
        // The host's python3 (the oracle of the property tests) reads the literal back.
        let out = std::process::Command::new("python3")
            .args(["-c", &format!("print({lit}.encode('utf-8').hex())")])
            .output()
            .expect("python3 runs");
        let back = String::from_utf8_lossy(&out.stdout);
        assert_eq!(back.trim(), hex::encode(nasty), "{lit}");
    }
}
