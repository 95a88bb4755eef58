//! Checkers: a stdio test's special judge (Codeforces style). The checker is trusted Python
//! that defines `check(input, output, expected)`; it runs in a **judge** instance (where no
//! candidate code ever ran) with the three texts as plain `str` literals, under its own fuel
//! and wall-clock budget (`[sandbox.judge] checker_fuel`, `checker_time_ms`).
//!
//! `check` returns `True`/`False`, or a score in [0, 1] (1 passes; less fails, and the score is
//! the test's partial credit: `TestResult::score`, counted by the pass fraction). An `AssertionError` it raises is its "wrong answer". Anything else, raising,
//! exiting, running out of fuel or time, or a return value of another kind, is the checker's
//! failure, not the candidate's: the test's outcome is `error` (reward masked).

use super::engine::{first_line, Ended, Phase, Status};
use super::judging::{Blame, Judged};
use crate::score::Outcome;

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

fn error(message: String) -> Judged {
    Judged {
        outcome: Outcome::Error,
        message: Some(format!("the checker failed: {message}")),
        blame: None,
    }
}

/// The verdict of a checker run, from the judge's status, with the partial score it gave (a
/// score below 1; a pass is 1, a plain fail 0).
pub(crate) fn judged(
    status: &Result<Status, Ended>,
    fuel: u64,
    time_ms: u64,
) -> (Judged, Option<f64>) {
    if let Ok(Status::Raised(f)) = status {
        if f.kind == SCORE_KIND {
            if let Ok(score) = f.message.parse::<f64>() {
                if (0.0..1.0).contains(&score) {
                    let judged = Judged {
                        outcome: Outcome::Failed,
                        message: Some(format!("wrong output: the checker scored it {score}")),
                        blame: Some(Blame::Test),
                    };
                    return (judged, Some(score));
                }
            }
        }
    }
    (verdict(status, fuel, time_ms), None)
}

fn verdict(status: &Result<Status, Ended>, fuel: u64, time_ms: u64) -> Judged {
    let status = match status {
        Ok(s) => s,
        Err(Ended::OutOfFuel) => return error(format!("it used up its fuel budget of {fuel}")),
        Err(Ended::Deadline) => return error(format!("it ran past its {time_ms} ms budget")),
        Err(other) => return error(other.describe()),
    };
    match status {
        Status::Ok => Judged::passed(),
        Status::Exit(code) => error(format!("SystemExit({code})")),
        Status::Raised(f) if f.phase == Phase::Test && f.kind == "AssertionError" => Judged {
            outcome: Outcome::Failed,
            message: Some(if f.message.is_empty() {
                "wrong output: the checker rejected it".into()
            } else {
                format!("wrong output: the checker says {}", first_line(&f.message))
            }),
            blame: Some(Blame::Test),
        },
        Status::Raised(f) if f.kind == SCORE_KIND => {
            error(format!("unreadable score {:?}", first_line(&f.message)))
        }
        Status::Raised(f) => error(format!("{}: {}", f.kind, first_line(&f.message))),
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
