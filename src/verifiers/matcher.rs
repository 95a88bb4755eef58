//! `match`: rule-based rewards for answers that are not code (R1's math reward). Extracts the
//! final answer of the completion and compares it with the rollout's reference answer.
//!
//! ## Which answer
//! In the answer part (outside `<think>…</think>`), the first of:
//! 1. the last `\boxed{…}` (or `\fbox{…}`); braces nest (`\boxed{\frac{1}{2}}`);
//! 2. the rest of the last line that says `Answer:` / `answer is` (any case, markdown bold
//!    stripped);
//! 3. the last number.
//!
//! ## Equal how
//! Both sides are normalised (`$`, `\(`…`\)`, `\text{…}`, `\left`/`\right`, thin spaces,
//! a leading `x =`, a trailing full stop). Where both then read as numbers they are compared
//! as numbers: integers, decimals, scientific notation, `a/b`, `\frac{a}{b}` / `\dfrac` /
//! `\tfrac`, percentages (`25%` equals `25` and `0.25` unless `strict_percent`) and thousands
//! separators (`1,234,567`, `1\,234`), within `abs_tolerance` or `rel_tolerance`. Otherwise
//! the normalised texts must be equal (ignoring spaces, and case unless `case_sensitive`).
//!
//! ## Bounded
//! Only the last `max_chars` characters of the answer are read (the final answer is at the
//! end); an extracted answer longer than [`MAX_ANSWER_CHARS`] is cut. The brace matcher is a
//! loop with a depth counter, never recursion, and `\frac` takes plain numbers only, so no
//! input makes the work more than linear in the text read.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `field` | `"answer"` | the reference: the rollout's `answer`, or another top-level field (`solution`, `ground_truth`) |
//! | `abs_tolerance` | `1e-9` | numbers this close are equal |
//! | `rel_tolerance` | `1e-6` | … or this close relative to the larger magnitude |
//! | `strict_percent` | `false` | `25%` equals only `0.25`, not `25` |
//! | `case_sensitive` | `false` | for answers compared as text |
//! | `max_chars` | `100000` | how much of the answer's end is read |
//!
//! A rollout without the reference field is skipped (the step counts for nothing); one
//! whose completion has no answer scores 0 with the `failed` outcome.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::kind::{settings_of, BuildContext, BuildError, Kind};
use crate::rollout::Rollout;
use crate::score::Outcome;
use crate::verifiers::{Context, Verdict, Verifier};

/// The longest extracted answer kept, in characters.
pub const MAX_ANSWER_CHARS: usize = 1000;

/// `[[verifier]] kind = "match"` settings (see the module docs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    /// Where the reference answer is: `answer` (the rollout field) or another top-level field.
    pub field: String,
    /// Absolute tolerance for numbers.
    pub abs_tolerance: f64,
    /// Relative tolerance for numbers.
    pub rel_tolerance: f64,
    /// A percentage equals only its fraction (`25%` = `0.25`), not the bare number.
    pub strict_percent: bool,
    /// Compare textual answers with case.
    pub case_sensitive: bool,
    /// How many characters of the answer's end are read.
    pub max_chars: usize,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            field: "answer".into(),
            abs_tolerance: 1e-9,
            rel_tolerance: 1e-6,
            strict_percent: false,
            case_sensitive: false,
            max_chars: 100_000,
        }
    }
}

/// The `match` kind.
pub fn kind() -> Kind {
    Kind::new(
        "match",
        "the final answer (\\boxed{…}, \"Answer:\", last number) equals the rollout's `answer`",
        |settings, cx| Ok(Box::new(settings_of::<MatchConfig>(settings)?.build(cx)?)),
    )
}

impl MatchConfig {
    /// Check the settings and build the verifier.
    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<MatchVerifier, BuildError> {
        for (key, v) in [
            ("abs_tolerance", self.abs_tolerance),
            ("rel_tolerance", self.rel_tolerance),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(BuildError(format!(
                    "{key} must be a finite number ≥ 0, got {v}"
                )));
            }
        }
        if self.max_chars == 0 {
            return Err(BuildError("max_chars must be at least 1".into()));
        }
        if self.field.is_empty() {
            return Err(BuildError("field must name a rollout field".into()));
        }
        Ok(MatchVerifier {
            config: self.clone(),
        })
    }
}

/// The `match` verifier.
#[derive(Debug, Clone)]
pub struct MatchVerifier {
    config: MatchConfig,
}

/// Where the extracted answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The last `\boxed{…}`.
    Boxed,
    /// The last `Answer:` line.
    AnswerLine,
    /// The last number.
    LastNumber,
}

impl Found {
    fn name(self) -> &'static str {
        match self {
            Found::Boxed => "boxed",
            Found::AnswerLine => "answer_line",
            Found::LastNumber => "last_number",
        }
    }
}

#[async_trait]
impl Verifier for MatchVerifier {
    fn kind(&self) -> &'static str {
        "match"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "field={} abs_tolerance={} rel_tolerance={} strict_percent={}",
            c.field, c.abs_tolerance, c.rel_tolerance, c.strict_percent
        )
    }

    async fn verify(&self, rollout: &Rollout, ctx: &mut Context) -> Verdict {
        let Some(expected) = self.reference(rollout) else {
            return Verdict::skip(json!({
                "reason": format!("the rollout has no `{}` to compare with", self.config.field)
            }));
        };
        let text = if ctx.answer.text.trim().is_empty() {
            rollout.completion.as_str()
        } else {
            ctx.answer.text.as_str()
        };
        let text = tail(text, self.config.max_chars);
        let Some((found, extracted)) = extract_final_answer(text) else {
            return Verdict::fail(
                Outcome::Failed,
                0.0,
                json!({"reason": "no final answer found", "expected": expected}),
            );
        };
        let (equal, compared) = self.equal(&extracted, &expected);
        let details = json!({
            "extracted": extracted,
            "from": found.name(),
            "expected": expected,
            "compared": compared,
            "equal": equal,
        });
        if equal {
            Verdict::pass(1.0, details)
        } else {
            Verdict::fail(Outcome::Failed, 0.0, details)
        }
    }
}

impl MatchVerifier {
    fn reference(&self, rollout: &Rollout) -> Option<String> {
        let value = if self.config.field == "answer" {
            return rollout.answer.clone();
        } else {
            rollout.extra.get(&self.config.field)?
        };
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// Whether `got` equals `want`, and how they were compared (`number` or `text`).
    pub fn equal(&self, got: &str, want: &str) -> (bool, &'static str) {
        let (g, w) = (normalize(got), normalize(want));
        if let (Some(a), Some(b)) = (parse_number(&g), parse_number(&w)) {
            let close = |x: f64, y: f64| {
                let diff = (x - y).abs();
                diff <= self.config.abs_tolerance
                    || diff <= self.config.rel_tolerance * x.abs().max(y.abs())
            };
            let readings = |n: Number| -> Vec<f64> {
                if n.percent {
                    if self.config.strict_percent {
                        vec![n.value / 100.0]
                    } else {
                        vec![n.value / 100.0, n.value]
                    }
                } else {
                    vec![n.value]
                }
            };
            let equal = readings(a)
                .into_iter()
                .any(|x| readings(b).into_iter().any(|y| close(x, y)));
            return (equal, "number");
        }
        let squash = |s: &str| -> String {
            let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            if self.config.case_sensitive {
                s
            } else {
                s.to_lowercase()
            }
        };
        (squash(&g) == squash(&w), "text")
    }
}

/// The last `max` characters of `s` (on a character boundary).
fn tail(s: &str, max: usize) -> &str {
    match s.char_indices().rev().nth(max.saturating_sub(1)) {
        Some((i, _)) if s.len() > max => &s[i..],
        _ => s,
    }
}

/// Cut `s` to [`MAX_ANSWER_CHARS`] characters.
fn capped(s: &str) -> String {
    s.chars().take(MAX_ANSWER_CHARS).collect()
}

/// The final answer of `text` and where it came from (see the module docs), or `None`.
pub fn extract_final_answer(text: &str) -> Option<(Found, String)> {
    if let Some(boxed) = last_boxed(text) {
        return Some((Found::Boxed, capped(boxed.trim())));
    }
    if let Some(line) = last_answer_line(text) {
        return Some((Found::AnswerLine, capped(line)));
    }
    last_number(text).map(|n| (Found::LastNumber, capped(n)))
}

/// The contents of the last `\boxed{…}` / `\fbox{…}` whose braces close.
fn last_boxed(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut search_end = text.len();
    // From the last opening back, the first that closes wins; each try scans forward once,
    // and a try that does not close ends at the text's end, so give up after a few.
    for _ in 0..8 {
        let head = &text[..search_end];
        let at = ["\\boxed", "\\fbox"]
            .iter()
            .filter_map(|m| head.rfind(m).map(|i| (i, m.len())))
            .max_by_key(|(i, _)| *i)?;
        let mut i = at.0 + at.1;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            let start = i + 1;
            let mut depth = 1usize;
            let mut j = start;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(&text[start..j]);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        } else if i > at.0 + at.1 {
            // `\boxed 42`: the token after the space.
            let rest = &text[i..];
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '$')
                .unwrap_or(rest.len());
            if end > 0 {
                return Some(&rest[..end]);
            }
        }
        search_end = at.0;
    }
    None
}

/// The rest of the last line holding `answer:` or `answer is` (any case).
fn last_answer_line(text: &str) -> Option<&str> {
    for line in text.lines().rev() {
        let lower = line.to_ascii_lowercase();
        for marker in ["answer:", "answer is"] {
            if let Some(i) = lower.rfind(marker) {
                let rest = line[i + marker.len()..]
                    .trim()
                    .trim_start_matches(['*', ':'])
                    .trim()
                    .trim_end_matches(['*'])
                    .trim_end_matches('.')
                    .trim();
                if !rest.is_empty() {
                    return Some(rest);
                }
            }
        }
    }
    None
}

/// The last number of `text`: digits with optional sign, thousands commas, decimal point,
/// and a `/denominator` or `%` right after.
fn last_number(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let end = bytes.iter().rposition(|b| b.is_ascii_digit())? + 1;
    let mut start = end;
    while start > 0 {
        let b = bytes[start - 1];
        let inner = start > 1 && bytes[start - 2].is_ascii_digit();
        if b.is_ascii_digit() || ((b == b'.' || b == b',' || b == b'/') && inner) {
            start -= 1;
        } else {
            break;
        }
    }
    if start > 0 && bytes[start - 1] == b'-' {
        start -= 1;
    }
    let end = if bytes.get(end) == Some(&b'%') {
        end + 1
    } else {
        end
    };
    Some(&text[start..end])
}

/// Strip the LaTeX and prose wrapping of an answer.
pub fn normalize(s: &str) -> String {
    let mut t = s.trim().to_string();
    for (from, to) in [
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\ ", ""),
        ("\\%", "%"),
        ("\\$", ""),
        ("\\(", ""),
        ("\\)", ""),
        ("\\[", ""),
        ("\\]", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^\\circ", ""),
        ("^{\\circ}", ""),
        ("\\displaystyle", ""),
    ] {
        t = t.replace(from, to);
    }
    t = unwrap_text(&t);
    t = t.replace('$', "");
    let mut t = t.trim().trim_end_matches('.').trim().to_string();
    // `x = 5` → `5` (one `=`, a short left side).
    if let Some((lhs, rhs)) = t.split_once('=') {
        if !rhs.contains('=') && lhs.trim().chars().count() <= 3 && !rhs.trim().is_empty() {
            t = rhs.trim().to_string();
        }
    }
    t
}

/// `\text{…}`, `\textbf{…}`, `\mathrm{…}`, `\mbox{…}` → their contents (one level, left to
/// right, in one pass).
fn unwrap_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = ["\\text{", "\\textbf{", "\\mathrm{", "\\mbox{"]
        .iter()
        .filter_map(|m| rest.find(m).map(|i| (i, m.len())))
        .min_by_key(|(i, _)| *i)
    {
        out.push_str(&rest[..i.0]);
        rest = &rest[i.0 + i.1..];
        match rest.find('}') {
            Some(close) => {
                out.push_str(&rest[..close]);
                rest = &rest[close + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// A number read from an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number {
    /// Its value (for a percentage, the number before `%`).
    pub value: f64,
    /// Whether it was written as a percentage.
    pub percent: bool,
}

/// Read a normalised answer as a number (see the module docs), or `None`.
pub fn parse_number(s: &str) -> Option<Number> {
    let s = s.trim();
    let (s, percent) = match s.strip_suffix('%') {
        Some(rest) => (rest.trim(), true),
        None => (s, false),
    };
    let (negative, body) = match s.strip_prefix('-') {
        Some(r) if r.trim_start().starts_with("\\frac") => (true, r.trim_start()),
        _ => (false, s),
    };
    let value = if let Some(frac) = body.strip_prefix("\\frac") {
        let v = latex_fraction(frac)?;
        if negative {
            -v
        } else {
            v
        }
    } else if let Some((num, den)) = s.split_once('/') {
        let (num, den) = (plain(num.trim())?, plain(den.trim())?);
        if den == 0.0 {
            return None;
        }
        num / den
    } else {
        plain(s)?
    };
    value.is_finite().then_some(Number { value, percent })
}

/// `{a}{b}` (or `ab` for single digits, `\frac12`) after `\frac`.
fn latex_fraction(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, rest) = if let Some(r) = s.strip_prefix('{') {
        let close = r.find('}')?;
        (&r[..close], r[close + 1..].trim())
    } else {
        let c = s.chars().next()?;
        (&s[..c.len_utf8()], &s[c.len_utf8()..])
    };
    let den = if let Some(r) = rest.strip_prefix('{') {
        let close = r.find('}')?;
        if !r[close + 1..].trim().is_empty() {
            return None;
        }
        &r[..close]
    } else if rest.chars().count() == 1 {
        rest
    } else {
        return None;
    };
    let (num, den) = (plain(num.trim())?, plain(den.trim())?);
    (den != 0.0).then(|| num / den)
}

/// A plain number: sign, digits with optional thousands separators (groups of three after a
/// comma), decimals, exponent.
fn plain(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let cleaned: String = if s.contains(',') {
        let int_part = body.split(['.', 'e', 'E']).next().unwrap_or("");
        let groups: Vec<&str> = int_part.split(',').collect();
        let well_grouped = groups.len() > 1
            && (1..=3).contains(&groups[0].len())
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
        if !well_grouped {
            return None;
        }
        s.replace(',', "")
    } else {
        s.to_string()
    };
    if cleaned
        .bytes()
        .any(|b| !(b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')))
    {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> MatchVerifier {
        MatchConfig::default()
            .build(&BuildContext::default())
            .unwrap()
    }

    fn eq(got: &str, want: &str) -> bool {
        matcher().equal(got, want).0
    }

    #[test]
    fn extracts_the_last_boxed_with_nested_braces() {
        let t = "first \\boxed{1} then \\boxed{\\frac{1}{2}} done";
        assert_eq!(
            extract_final_answer(t),
            Some((Found::Boxed, "\\frac{1}{2}".into()))
        );
        assert_eq!(
            extract_final_answer("so $\\boxed 42$"),
            Some((Found::Boxed, "42".into()))
        );
    }

    #[test]
    fn an_unclosed_box_falls_back_to_an_earlier_one_or_the_answer_line() {
        let t = "\\boxed{7} and later \\boxed{8";
        assert_eq!(extract_final_answer(t), Some((Found::Boxed, "7".into())));
        let t = "Answer: 12\n\\boxed{oops";
        assert_eq!(
            extract_final_answer(t),
            Some((Found::AnswerLine, "12".into()))
        );
    }

    #[test]
    fn answer_lines_and_last_numbers() {
        assert_eq!(
            extract_final_answer("work...\n**Answer:** 3/4.\n"),
            Some((Found::AnswerLine, "3/4".into()))
        );
        assert_eq!(
            extract_final_answer("so the answer is 1,234"),
            Some((Found::AnswerLine, "1,234".into()))
        );
        assert_eq!(
            extract_final_answer("we get 3 apples, then 1,250.5 more."),
            Some((Found::LastNumber, "1,250.5".into()))
        );
        assert_eq!(
            extract_final_answer("it rose -12% overall"),
            Some((Found::LastNumber, "-12%".into()))
        );
        assert_eq!(extract_final_answer("no numbers here"), None);
    }

    #[test]
    fn numbers_in_every_spelling_compare_as_numbers() {
        assert!(eq("1,234,567", "1234567"));
        assert!(eq("1\\,234", "1234"));
        assert!(eq("0.5", "1/2"));
        assert!(eq("\\frac{1}{2}", "0.5"));
        assert!(eq("\\dfrac{3}{4}", "3/4"));
        assert!(eq("\\frac34", "0.75"));
        assert!(eq("-\\frac{1}{4}", "-0.25"));
        assert!(eq("50%", "0.5"));
        assert!(eq("50\\%", "50"));
        assert!(eq("$x = 5$", "5"));
        assert!(eq("\\text{12}", "12.0"));
        assert!(eq("1e3", "1000"));
        assert!(!eq("1,23", "123"), "not a thousands separator");
        assert!(!eq("0.5", "0.6"));
        assert!(!eq("1/0", "0"));
    }

    #[test]
    fn tolerance_and_strict_percent_are_settings() {
        let loose = MatchConfig {
            abs_tolerance: 0.01,
            rel_tolerance: 0.0,
            ..MatchConfig::default()
        }
        .build(&BuildContext::default())
        .unwrap();
        assert!(loose.equal("3.14", "3.14159").0);
        assert!(!matcher().equal("3.14", "3.14159").0);
        let strict = MatchConfig {
            strict_percent: true,
            ..MatchConfig::default()
        }
        .build(&BuildContext::default())
        .unwrap();
        assert!(!strict.equal("50%", "50").0);
        assert!(strict.equal("50%", "0.5").0);
        assert!(MatchConfig {
            rel_tolerance: f64::NAN,
            ..MatchConfig::default()
        }
        .build(&BuildContext::default())
        .is_err());
    }

    #[test]
    fn text_answers_compare_without_spaces_and_case() {
        assert_eq!(matcher().equal("\\text{Yes}", "yes"), (true, "text"));
        assert_eq!(matcher().equal("(1, 2)", "(1,2)"), (true, "text"));
        assert!(!eq("(1, 2)", "(2,1)"));
    }

    #[test]
    fn hostile_input_is_linear_and_bounded() {
        // Deep braces that never close, many unclosed boxes, a huge answer line.
        let deep = format!("\\boxed{{{}", "{".repeat(1_000_000));
        let started = std::time::Instant::now();
        assert_eq!(extract_final_answer(&deep), None);
        let many = "\\boxed{".repeat(200_000);
        assert!(extract_final_answer(&many).is_none());
        let long = format!("Answer: {}", "9".repeat(1_000_000));
        let (_, got) = extract_final_answer(&long).unwrap();
        assert_eq!(got.chars().count(), MAX_ANSWER_CHARS);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let deep_frac = format!("{}1{}", "\\frac{".repeat(10_000), "}".repeat(10_000));
        assert!(parse_number(&normalize(&deep_frac)).is_none());
    }

    #[test]
    fn reads_only_the_tail() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("ééé", 2), "éé");
    }
}
