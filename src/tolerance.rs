//! A float tolerance stated in a problem's text.
//!
//! Competitive-programming statements say how close a real-valued answer must be in prose:
//! "Your answer is considered correct if its absolute or relative error does not exceed
//! 10^{-6}". When neither a test nor its rollout sets a tolerance (`compare.rel_tol` or
//! `compare.abs_tol`), the tolerance the prompt states is the tolerance of its stdio and call
//! tests — the expected values that come from data. Assert tests compare with their own code
//! and are never touched; nor is a stdio test with a checker (the checker decides), nor a test
//! whose rule is `mode = "exact"`.
//!
//! What is read ([`stated_tolerance`]): a sentence with `error`, `tolerance` or `differ`, then,
//! within 200 bytes, a bound — `at most`, `not exceed`, `doesn't exceed`, `no more than`,
//! `not more than`, `not greater than`, `less than or equal to`, `less than`, `smaller than`,
//! `below`, `within`, `up to`, `of`, `≤`, `\le`, `\leq`, `<=`, `<` — directly followed by a
//! number below 1:
//!
//! - a power of ten: `10^{-6}`, `10^-6`, `10^(-6)`, `10^{ - 6}`, `10<sup>-6</sup>`, and the
//!   `10 - 6` / `10-6` a scrape leaves of a lost superscript; with a factor: `2 \cdot 10^{-5}`,
//!   `2·10^-5`, `2 × 10^{-5}`, `2*10^-5`; the minus may be `-`, `−` or `–`; TeX `$…$` and `\(`
//!   around it are fine;
//! - e-notation: `1e-9`, `1E-6`, `2.5e-4`;
//! - a decimal: `0.000001`, `.001`.
//!
//! "absolute" alone (before the bound, in the same sentence) sets `abs_tol` only (`rel_tol`
//! 0), "relative" alone `rel_tol` only, both or neither set both. The first of the first 256
//! mentions of the keywords that reads as a tolerance is the one. The text read is the rollout's
//! `prompt`, else a dataset's statement field (`question`, `description`, `problem`,
//! `question_content`).

use serde::Serialize;
use serde_json::Value;

use crate::rollout::{Compare, CompareMode, Rollout, TestCase};

/// A tolerance read from a problem statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatedTolerance {
    /// The relative tolerance it states (0 when it states only an absolute one).
    pub rel_tol: f64,
    /// The absolute tolerance it states (0 when it states only a relative one).
    pub abs_tol: f64,
    /// The words it was read from, as written.
    pub stated: String,
}

/// A stated tolerance as a rollout used it: reported in the `tests` step's details.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedTolerance {
    /// The tolerance.
    #[serde(flatten)]
    pub tolerance: StatedTolerance,
    /// Where it was read: `prompt`, or the dataset field.
    pub from: &'static str,
    /// How many tests it was applied to.
    pub tests: usize,
}

/// Dataset fields that hold a problem's statement, read when the prompt states no tolerance.
const STATEMENT_FIELDS: [&str; 4] = ["question", "description", "problem", "question_content"];

/// Words that introduce a tolerance.
const KEYWORDS: [&str; 3] = ["error", "tolerance", "differ"];

/// Bounds between the keyword and the number; the number must follow the bound directly.
const BOUNDS: [&str; 18] = [
    "at most",
    "not exceed",
    "n't exceed",
    "no more than",
    "not more than",
    "not greater than",
    "less than or equal to",
    "less than",
    "smaller than",
    "below",
    "within",
    "up to",
    " of ",
    "≤",
    "\\leq",
    "\\le",
    "<=",
    "<",
];

/// How far after the keyword the bound and number may be, in bytes.
const WINDOW: usize = 200;

/// How many mentions of the keywords are looked at, at most: a text that says "error" a
/// million times costs a linear scan, not a million windows.
const MAX_MENTIONS: usize = 256;

/// How far before the keyword "absolute" or "relative" is looked for, in bytes.
const LOOKBEHIND: usize = 80;

/// The tolerance stated in the rollout's prompt or, failing that, in a dataset statement field,
/// with where it was read; `None` when the rollout (or a test of it) sets one of its own, see
/// [`applies`].
pub fn stated_for(rollout: &Rollout) -> Option<(StatedTolerance, &'static str)> {
    if rollout
        .compare
        .is_some_and(|c| c.rel_tol.is_some() || c.abs_tol.is_some())
    {
        return None;
    }
    if let Some(t) = stated_tolerance(&rollout.prompt) {
        return Some((t, "prompt"));
    }
    STATEMENT_FIELDS
        .iter()
        .find_map(|&field| match rollout.extra.get(field) {
            Some(Value::String(text)) => stated_tolerance(text).map(|t| (t, field)),
            _ => None,
        })
}

/// Gives `test` the stated tolerance when its rule (its own over the rollout's) sets none;
/// returns whether it did. Assert tests, stdio tests with a checker and `exact` tests keep
/// what they have.
pub fn applies(tolerance: &StatedTolerance, test: &mut TestCase) -> bool {
    let compare = match test {
        TestCase::Stdio {
            compare,
            checker: None,
            ..
        }
        | TestCase::Call { compare, .. } => compare,
        _ => return false,
    };
    let rule = compare.unwrap_or_default();
    if rule.rel_tol.is_some() || rule.abs_tol.is_some() || rule.mode == Some(CompareMode::Exact) {
        return false;
    }
    *compare = Some(Compare {
        rel_tol: Some(tolerance.rel_tol),
        abs_tol: Some(tolerance.abs_tol),
        ..rule
    });
    true
}

/// The first tolerance `text` states (see the module docs), or `None`.
pub fn stated_tolerance(text: &str) -> Option<StatedTolerance> {
    // ASCII lowercasing keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let mut keywords: Vec<(usize, usize)> = KEYWORDS
        .iter()
        .flat_map(|k| lower.match_indices(k).map(|(i, m)| (i, i + m.len())))
        .collect();
    keywords.sort_unstable();
    for (start, end) in keywords.into_iter().take(MAX_MENTIONS) {
        let window = &lower[end..floor_boundary(&lower, end + WINDOW)];
        // The bound and number belong to the keyword's sentence.
        let window = [". ", ".\n", "\n\n"]
            .iter()
            .filter_map(|sep| window.find(sep))
            .min()
            .map_or(window, |cut| &window[..cut]);
        let Some((at, value, len)) = bound_and_number(window) else {
            continue;
        };
        if !(value > 0.0 && value < 1.0) {
            continue;
        }
        // The sentence before the number: "absolute" / "relative" name the kind.
        let from = sentence_start(
            &lower,
            floor_boundary(&lower, start.saturating_sub(LOOKBEHIND)),
            start,
        );
        let sentence = &lower[from..end + at];
        let (absolute, relative) = (sentence.contains("absolute"), sentence.contains("relative"));
        let (rel_tol, abs_tol) = match (absolute, relative) {
            (true, false) => (0.0, value),
            (false, true) => (value, 0.0),
            _ => (value, value),
        };
        let first = ["absolute", "relative"]
            .iter()
            .filter_map(|w| sentence.find(w))
            .min()
            .map_or(start, |i| from + i);
        return Some(StatedTolerance {
            rel_tol,
            abs_tol,
            stated: text[first..end + at + len].trim().to_string(),
        });
    }
    None
}

/// Where the sentence holding byte `at` starts, looking back no further than `floor`: after
/// the last `". "`, `".\n"` or blank line before `at`.
fn sentence_start(text: &str, floor: usize, at: usize) -> usize {
    let before = &text[floor..at];
    [". ", ".\n", "\n\n"]
        .iter()
        .filter_map(|sep| before.rfind(sep).map(|i| floor + i + sep.len()))
        .max()
        .unwrap_or(floor)
}

/// The largest char boundary of `text` at or below `i`.
fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The first bound in `window` directly followed by a number: `(at, value, len)`, where
/// `window[at..at + len]` is the number as written.
fn bound_and_number(window: &str) -> Option<(usize, f64, usize)> {
    let mut found: Option<(usize, f64, usize)> = None;
    for bound in BOUNDS {
        for (i, m) in window.match_indices(bound) {
            let after = i + m.len();
            if let Some((skip, value, len)) = number_at(&window[after..]) {
                let at = after + skip;
                if found.is_none_or(|(best, _, _)| at < best) {
                    found = Some((at, value, len));
                }
                break;
            }
        }
    }
    found
}

/// A number at the start of `s` (after blanks and TeX openers): the bytes skipped before it,
/// its value and its length.
fn number_at(s: &str) -> Option<(usize, f64, usize)> {
    let body = s.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '$' | '{' | '~'));
    let body = body.strip_prefix("\\(").unwrap_or(body);
    let body = body.trim_start();
    let skip = s.len() - body.len();
    let mut p = Parser { s: body, at: 0 };
    let mantissa_text = p.take_while(|c| c.is_ascii_digit() || c == '.');
    if !mantissa_text.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let mantissa: f64 = mantissa_text.parse().ok()?;
    let after_mantissa = p.at;
    // 2 \cdot 10^{-5}, 2·10^-5, 2 × 10^{-5}, 2*10^-5
    p.blanks();
    if p.eat_any(&["\\cdot", "\\times", "·", "×", "*"]) {
        p.blanks();
        if p.eat("10") {
            if let Some(e) = p.power() {
                return Some((skip, scientific(mantissa_text, e)?, p.at));
            }
        }
        return None;
    }
    p.at = after_mantissa;
    if mantissa_text == "10" {
        if let Some(e) = p.power() {
            return Some((skip, scientific("1", e)?, p.at));
        }
        p.at = after_mantissa;
    }
    // 1e-9
    if p.eat("e") {
        let negative = p.minus();
        let digits = p.take_while(|c| c.is_ascii_digit());
        if (1..=3).contains(&digits.len()) {
            let e: i32 = digits.parse().ok()?;
            let e = if negative { -e } else { e };
            return Some((skip, scientific(mantissa_text, e)?, p.at));
        }
        return None;
    }
    Some((skip, mantissa, after_mantissa))
}

/// `mantissa × 10^e`, rounded once (as the literal `{mantissa}e{e}` reads).
fn scientific(mantissa: &str, e: i32) -> Option<f64> {
    format!("{mantissa}e{e}").parse().ok()
}

/// A cursor over the text of a number.
struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.at += n;
        &rest[..n]
    }

    fn blanks(&mut self) {
        self.take_while(|c| c == ' ' || c == '\t');
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn eat_any(&mut self, tokens: &[&str]) -> bool {
        tokens.iter().any(|t| self.eat(t))
    }

    fn minus(&mut self) -> bool {
        self.eat_any(&["-", "−", "–", "‑"])
    }

    /// The exponent after a `10`: `^{-6}`, `^-6`, `^(-6)`, `^{ - 6}`, `<sup>-6</sup>`, or a
    /// lost superscript `10 - 6` / `10-6` (negative only). Leaves the cursor after it.
    fn power(&mut self) -> Option<i32> {
        let start = self.at;
        self.blanks();
        let (marked, close) = if self.eat("^") {
            self.blanks();
            match () {
                _ if self.eat("{") => (true, Some("}")),
                _ if self.eat("(") => (true, Some(")")),
                _ => (true, None),
            }
        } else if self.eat("<sup>") {
            (true, Some("</sup>"))
        } else {
            (false, None)
        };
        self.blanks();
        let negative = self.minus();
        self.blanks();
        let digits = self.take_while(|c| c.is_ascii_digit());
        if !(1..=3).contains(&digits.len()) || (!marked && !negative) {
            self.at = start;
            return None;
        }
        if let Some(close) = close {
            self.blanks();
            if !self.eat(close) {
                self.at = start;
                return None;
            }
        }
        let e: i32 = digits.parse().ok()?;
        Some(if negative { -e } else { e })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<(f64, f64)> {
        stated_tolerance(text).map(|t| (t.rel_tol, t.abs_tol))
    }

    #[test]
    fn statements_as_contest_sites_and_scrapes_write_them() {
        let both = |e: f64| Some((e, e));
        // Codeforces (TeX), TACO/APPS scrapes, AtCoder, plain e-notation, decimals.
        assert_eq!(
            read("Your answer is considered correct if its absolute or relative error does not exceed $$$10^{-6}$$$."),
            both(1e-6)
        );
        assert_eq!(
            read("Your answer will be considered correct if its absolute or relative error does not exceed 10^{ - 6}."),
            both(1e-6)
        );
        assert_eq!(
            read("The answer is accepted if the absolute or relative error is at most \\(10^{-9}\\)."),
            both(1e-9)
        );
        assert_eq!(
            read("Print the area. Absolute or relative error up to 1e-9 is allowed."),
            both(1e-9)
        );
        assert_eq!(read("…with an error of at most 1E-4."), both(1e-4));
        assert_eq!(read("relative error ≤ 10^-5"), Some((1e-5, 0.0)));
        assert_eq!(
            read("an absolute error not greater than 0.001 is allowed"),
            Some((0.0, 0.001))
        );
        assert_eq!(
            read("absolute error less than 2 \\cdot 10^{-5}"),
            Some((0.0, 2e-5))
        );
        assert_eq!(
            read("if it differs from the correct value by at most 10<sup>-6</sup>"),
            both(1e-6)
        );
        assert_eq!(
            read("whose relative error does not exceed 10 - 6."),
            Some((1e-6, 0.0))
        );
        assert_eq!(read("output with tolerance of 10−6"), both(1e-6));
        assert_eq!(read("an error within 1.5e-3"), both(1.5e-3));
        // The words it came from, as written.
        let t = stated_tolerance("Print x.\nYour answer is correct if the Absolute or Relative error doesn't exceed 10^{-6}. Bye")
            .unwrap();
        assert_eq!(
            t.stated,
            "Absolute or Relative error doesn't exceed 10^{-6}"
        );
    }

    #[test]
    fn other_numbers_near_the_words_are_not_tolerances() {
        assert_eq!(
            read("Print -1 if there is an error. n is at most 10^5."),
            None
        );
        assert_eq!(read("The error count is at most 3."), None);
        assert_eq!(read("If no error occurs, print 0.5 of the answer"), None); // "of the"
        assert_eq!(read("n ≤ 10^{9}, error-free input"), None);
        assert_eq!(
            read("Print the answer with exactly 6 digits after the decimal point."),
            None
        );
        assert_eq!(read("Numbers are at most 10^{-6} apart"), None); // no keyword
        assert_eq!(read(""), None);
        // Many mentions cost a bounded number of looks.
        let noisy = "error? ".repeat(200_000) + "absolute error at most 1e-6";
        let started = std::time::Instant::now();
        assert_eq!(read(&noisy), None);
        assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
        // A sentence before the keyword's does not name its kind.
        assert_eq!(
            read("Relative positions are given.\n\nPrint it with an error of at most 1e-6."),
            Some((1e-6, 1e-6))
        );
    }

    #[test]
    fn a_stated_tolerance_fills_only_rules_without_one() {
        let t = stated_tolerance("absolute or relative error at most 1e-4").unwrap();
        let stdio = |compare: Option<Compare>, checker: Option<&str>| TestCase::Stdio {
            stdin: String::new(),
            stdout: "1.0".into(),
            timing: false,
            compare,
            checker: checker.map(str::to_string),
        };
        let mut test = stdio(None, None);
        assert!(applies(&t, &mut test));
        let TestCase::Stdio { compare, .. } = &test else {
            unreachable!()
        };
        assert_eq!(compare.unwrap().rel_tol, Some(1e-4));
        assert_eq!(compare.unwrap().abs_tol, Some(1e-4));
        // A rule's other fields are kept.
        let tokens = Compare {
            mode: Some(CompareMode::Tokens),
            ..Compare::default()
        };
        let mut test = stdio(Some(tokens), None);
        assert!(applies(&t, &mut test));
        let TestCase::Stdio { compare, .. } = &test else {
            unreachable!()
        };
        assert_eq!(compare.unwrap().mode, Some(CompareMode::Tokens));
        // Its own tolerance, exact mode, a checker, an assert test: untouched.
        let own = Compare {
            abs_tol: Some(0.5),
            ..Compare::default()
        };
        let exact = Compare {
            mode: Some(CompareMode::Exact),
            ..Compare::default()
        };
        for mut test in [
            stdio(Some(own), None),
            stdio(Some(exact), None),
            stdio(None, Some("def check(i, o, e): return True")),
            TestCase::Assert {
                code: "assert abs(f() - 0.1) < 1e-12".into(),
                timing: false,
            },
        ] {
            let before = test.clone();
            assert!(!applies(&t, &mut test));
            assert_eq!(test, before);
        }
    }
}
