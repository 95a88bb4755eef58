//! Host-side comparisons: a stdio test's output against the expected output, a call test's
//! canonical value against the expected value. The expected side never enters the sandbox.
//!
//! Every rule here is a [`Rule`]: the test's `compare`, over the rollout's, over the
//! configured defaults (`[sandbox.judge]`). README, "Comparison rules", tables them.
//!
//! # stdio
//! Line endings (`\r\n`, `\r`) become `\n`. Then, by [`CompareMode`]:
//! - `lines` (default): trailing whitespace of every line and trailing empty lines are dropped;
//!   both sides must have **the same number of lines** (a program printing a prefix of the
//!   answer fails) and each line must match, token by token (split on whitespace).
//! - `tokens`: all whitespace-separated tokens of the output, in order, line breaks included.
//! - `exact`: the same text, trailing newlines aside; no tolerance.
//!
//! A token matches when it is the same text; else, with `case_insensitive`, the same text up to
//! case; else when the expected token is an **integer**, only the same integer (`007` is `7`;
//! `7.0`, `7e0` are not); else when both parse as floats, within the tolerance. With
//! `unordered`, the lines (`lines`, `exact`) or tokens (`tokens`) are compared as multisets,
//! each exactly (case aside when `case_insensitive`), in O(n log n).
//!
//! # call
//! The candidate answers with tagged JSON (`sandbox/PROTOCOL.md`, "What crosses"); the expected
//! value is exact JSON ([`Exact`]: integers are their digits, of any size). They match as
//! Python's `==` would, with these documented exceptions:
//! - floats within the tolerance when the **expected** value is a float; an expected integer
//!   is matched only by that integer exactly (or a float, `Fraction` or `Decimal` exactly equal
//!   to it): integers are exact, always;
//! - a tuple (and a deque, a namedtuple) matches an array (JSON has no tuples);
//! - `bool` only matches `true`/`false`, never `1`/`0` (a count of `True` must fail);
//! - dict-likes (`dict`, `Counter`, `OrderedDict`, `defaultdict`, a dataclass's fields) match
//!   an object with exactly the same keys. JSON spells every key as a string, so a returned key
//!   that is an `int` matches its canonical decimal spelling (Python's `str(k)`: `{1: "a"}`
//!   matches `{"1": "a"}`, never `{"01": "a"}` or `{"+1": "a"}`), as the JSON round trip of
//!   LiveCodeBench's and PRIME's harnesses has it; any other key (`bool`, `float`, a tuple)
//!   matches nothing. Two returned keys with one spelling (`{1: "a", "1": "a"}`) never match:
//!   one key is never counted twice. With `strict_keys`, only string keys match (`Keys`);
//! - a `set` or `frozenset` never matches an array (as in Python: `{1, 2} != [1, 2]`), unless
//!   `unordered` is set: then a returned list, tuple or set matches the expected array as a
//!   multiset, elements compared exactly.
//!
//! With `unwrap_single` (APPS, TACO), an expected one-element array also matches its element.
//! `Fraction` and `Decimal` compare by value, a handle matches nothing. Parsing checks the
//! depth first ([`MAX_ANSWER_DEPTH`]), and every walk is bounded by it; no step does big-integer
//! arithmetic (digits are compared as text), so every comparison is linear in the values' size
//! (O(n log n) for `unordered`).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use verdict_contract::json::{normalize_int, Exact};
use verdict_contract::rollout::{Compare, CompareMode};

/// Float tolerance: two floats match when `|a - b| <= max(rel * max(|a|, |b|), abs)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rel: f64,
    /// Absolute tolerance.
    pub abs: f64,
}

impl Tolerance {
    /// Exact comparison.
    pub const EXACT: Tolerance = Tolerance { rel: 0.0, abs: 0.0 };

    /// Whether two floats match.
    pub fn close(self, a: f64, b: f64) -> bool {
        if a == b || (a.is_nan() && b.is_nan()) {
            return true;
        }
        if !a.is_finite() || !b.is_finite() {
            return false;
        }
        (a - b).abs() <= (self.rel * a.abs().max(b.abs())).max(self.abs)
    }

    fn is_exact(self) -> bool {
        self.rel == 0.0 && self.abs == 0.0
    }
}

/// A comparison rule with every choice made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Float tolerance (exact in `exact` mode).
    pub tol: Tolerance,
    /// How stdout is cut into what is compared.
    pub mode: CompareMode,
    /// Tokens and lines compare up to case (stdio).
    pub case_insensitive: bool,
    /// Lines or tokens (stdio), a returned sequence (call) in any order.
    pub unordered: bool,
    /// call: an expected one-element array also matches its element.
    pub unwrap_single: bool,
    /// call: a returned dict's keys match the expected object's only when they are strings
    /// (an `int` key never matches its decimal spelling).
    pub strict_keys: bool,
}

impl Rule {
    /// The rule of `compare` (already layered over its fallbacks), with today's defaults for
    /// what it still leaves open: tolerance 1e-6 relative and absolute, `lines`, case and order
    /// significant.
    pub fn from_compare(c: Compare) -> Rule {
        let mode = c.mode.unwrap_or(CompareMode::Lines);
        let tol = if mode == CompareMode::Exact {
            Tolerance::EXACT
        } else {
            Tolerance {
                rel: c.rel_tol.unwrap_or(1e-6),
                abs: c.abs_tol.unwrap_or(1e-6),
            }
        };
        Rule {
            tol,
            mode,
            case_insensitive: c.case_insensitive.unwrap_or(false),
            unordered: c.unordered.unwrap_or(false),
            unwrap_single: c.unwrap_single.unwrap_or(false),
            strict_keys: c.strict_keys.unwrap_or(false),
        }
    }

    /// A rule that only sets the tolerance (lines, case and order significant).
    pub fn with_tolerance(tol: Tolerance) -> Rule {
        Rule {
            tol,
            mode: CompareMode::Lines,
            case_insensitive: false,
            unordered: false,
            unwrap_single: false,
            strict_keys: false,
        }
    }

    /// How a returned dict's keys meet the expected object's.
    fn keys(&self) -> Keys {
        if self.strict_keys {
            Keys::Strict
        } else {
            Keys::IntsAsDecimal
        }
    }
}

/// How a returned dict's keys meet the expected object's, whose keys JSON spells as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// Only string keys match (`strict_keys`): `{1: "a"}` does not match `{"1": "a"}`.
    Strict,
    /// An `int` key also matches its canonical decimal spelling (`str(k)` in Python): `{1: "a"}`
    /// matches `{"1": "a"}`, never `{"01": "a"}`. The default.
    IntsAsDecimal,
}

/// A returned dict's key as the expected object would spell it: a string as itself; under
/// [`Keys::IntsAsDecimal`], an `int` (a JSON integer or `{"int": digits}`) as its canonical
/// decimal digits. `None` for a key no expected key can match.
fn answer_key(k: &Value, keys: Keys) -> Option<Cow<'_, str>> {
    match (k, keys) {
        (Value::String(s), _) => Some(Cow::Borrowed(s.as_str())),
        (_, Keys::Strict) => None,
        (_, Keys::IntsAsDecimal) => match actual_num(k) {
            Some(Num::Int(digits)) => Some(Cow::Owned(digits)),
            _ => None,
        },
    }
}

const SHOWN: usize = 200;

/// A line of output for a message: quoted, cut after a few hundred characters.
fn clip(s: &str) -> String {
    if s.chars().count() <= SHOWN {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(SHOWN).collect();
        format!("{head:?}…")
    }
}

/// A rendered value for a message: as is, cut after a few hundred characters.
fn clip_value(s: &str) -> String {
    if s.chars().count() <= SHOWN {
        s.to_string()
    } else {
        let head: String = s.chars().take(SHOWN).collect();
        format!("{head}…")
    }
}

fn lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.split('\n').map(|l| l.trim_end()).collect();
    while v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

fn is_integer(tok: &str) -> bool {
    let t = tok.strip_prefix(['-', '+']).unwrap_or(tok);
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

fn same_text(a: &str, e: &str, case_insensitive: bool) -> bool {
    a == e || (case_insensitive && a.to_lowercase() == e.to_lowercase())
}

/// Whether the program's token `a` matches the expected token `e` (see the module docs).
fn token_matches(a: &str, e: &str, rule: &Rule) -> bool {
    if same_text(a, e, rule.case_insensitive) {
        return true;
    }
    if is_integer(e) {
        return is_integer(a) && normalize_int(a) == normalize_int(e);
    }
    if rule.tol.is_exact() {
        return false;
    }
    let has_digit = |s: &str| s.bytes().any(|c| c.is_ascii_digit());
    match (a.parse::<f64>(), e.parse::<f64>()) {
        (Ok(x), Ok(y)) if has_digit(a) && has_digit(e) => rule.tol.close(x, y),
        _ => false,
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The items of both sides as multisets, each exactly (case aside): `Err` names one that
/// differs.
fn same_multiset(
    actual: &[&str],
    expected: &[&str],
    rule: &Rule,
    what: &str,
) -> Result<(), String> {
    if actual.len() != expected.len() {
        return Err(format!(
            "expected {}, got {}",
            plural(expected.len(), what),
            actual.len()
        ));
    }
    let key = |s: &&str| {
        if rule.case_insensitive {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let mut a: Vec<String> = actual.iter().map(key).collect();
    let mut e: Vec<String> = expected.iter().map(key).collect();
    a.sort_unstable();
    e.sort_unstable();
    match a.iter().zip(&e).find(|(x, y)| x != y) {
        None => Ok(()),
        Some((x, y)) => Err(format!(
            "in any order: expected a {what} {}, got {} instead",
            clip(y),
            clip(x)
        )),
    }
}

/// Compares a program's stdout with the expected output under `rule`. `Err` says where they
/// differ.
pub fn stdout_matches(actual: &str, expected: &str, rule: &Rule) -> Result<(), String> {
    let norm = |s: &str| s.replace("\r\n", "\n").replace('\r', "\n");
    let (actual, expected) = (norm(actual), norm(expected));
    match rule.mode {
        CompareMode::Tokens => {
            let a: Vec<&str> = actual.split_whitespace().collect();
            let e: Vec<&str> = expected.split_whitespace().collect();
            if rule.unordered {
                return same_multiset(&a, &e, rule, "token");
            }
            for (i, (ta, te)) in a.iter().zip(&e).enumerate() {
                if !token_matches(ta, te, rule) {
                    return Err(format!(
                        "token {}: expected {}, got {}",
                        i + 1,
                        clip(te),
                        clip(ta)
                    ));
                }
            }
            if a.len() != e.len() {
                return Err(format!(
                    "expected {}, got {}",
                    plural(e.len(), "token"),
                    a.len()
                ));
            }
            Ok(())
        }
        CompareMode::Exact | CompareMode::Lines => {
            let exact = rule.mode == CompareMode::Exact;
            let cut = |s: &'_ str| -> Vec<String> {
                if exact {
                    let body = s.trim_end_matches('\n');
                    if body.is_empty() {
                        Vec::new()
                    } else {
                        body.split('\n').map(str::to_string).collect()
                    }
                } else {
                    lines(s).into_iter().map(str::to_string).collect()
                }
            };
            let (a, e) = (cut(&actual), cut(&expected));
            let (a, e): (Vec<&str>, Vec<&str>) = (
                a.iter().map(String::as_str).collect(),
                e.iter().map(String::as_str).collect(),
            );
            if rule.unordered {
                return same_multiset(&a, &e, rule, "line");
            }
            for (i, (la, le)) in a.iter().zip(e.iter()).enumerate() {
                if same_text(la, le, rule.case_insensitive) {
                    continue;
                }
                let tokens_ok = !exact && {
                    let (ta, te): (Vec<_>, Vec<_>) = (
                        la.split_whitespace().collect(),
                        le.split_whitespace().collect(),
                    );
                    ta.len() == te.len()
                        && ta.iter().zip(&te).all(|(x, y)| token_matches(x, y, rule))
                };
                if !tokens_ok {
                    return Err(format!(
                        "line {}: expected {}, got {}",
                        i + 1,
                        clip(le),
                        clip(la)
                    ));
                }
            }
            if a.len() != e.len() {
                return Err(format!(
                    "expected {}, got {}",
                    plural(e.len(), "line"),
                    a.len()
                ));
            }
            Ok(())
        }
    }
}

pub use verdict_contract::depth::MAX_ANSWER_DEPTH;

/// Parses a candidate's answer (see `sandbox/PROTOCOL.md`). Its depth is checked first, so the
/// parse, the comparison and the drop of the value recurse at most [`MAX_ANSWER_DEPTH`] levels.
pub fn parse_answer(text: &str) -> Result<Value, String> {
    if verdict_contract::depth::deeper_than(text.as_bytes(), MAX_ANSWER_DEPTH).is_some() {
        return Err(format!(
            "the value is nested more than the {MAX_ANSWER_DEPTH} levels that are judged"
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let v = serde::Deserialize::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| format!("the candidate sent a malformed answer: {e}"))?;
    Ok(v)
}

/// Compares a call test's answer (tagged JSON from the candidate) with the expected value.
pub fn value_matches(actual: &Value, expected: &Exact, rule: &Rule) -> Result<(), String> {
    let keys = rule.keys();
    let one = |expected: &Exact| {
        if rule.unordered {
            unordered_matches(actual, expected, keys)
        } else {
            matches(actual, expected, rule.tol, keys, 0)
        }
    };
    let ok = one(expected)
        || match expected {
            Exact::Array(items) if rule.unwrap_single && items.len() == 1 => one(&items[0]),
            _ => false,
        };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {}{}, got {}",
            clip_value(&expected.to_json()),
            if rule.unordered { " in any order" } else { "" },
            clip_value(&display(actual))
        ))
    }
}

/// The one tag of a tagged object and its payload.
fn tag(o: &serde_json::Map<String, Value>) -> Option<(&str, &Value)> {
    if o.len() == 1 {
        o.iter().next().map(|(k, v)| (k.as_str(), v))
    } else {
        None
    }
}

/// Most characters a rendered value takes in a message (the rest is cut).
const DISPLAY_BUDGET: usize = 400;

/// A Python-like rendering of a tagged value, for messages; bounded in depth and length.
fn display(v: &Value) -> String {
    let mut out = String::new();
    render(v, &mut out, 0);
    out
}

fn render(v: &Value, out: &mut String, depth: usize) {
    if out.len() > DISPLAY_BUDGET {
        return;
    }
    if depth > 32 {
        out.push('…');
        return;
    }
    let list = |items: &[Value], open: &str, close: &str, out: &mut String| {
        out.push_str(open);
        for (i, x) in items.iter().enumerate() {
            if out.len() > DISPLAY_BUDGET {
                out.push('…');
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            render(x, out, depth + 1);
        }
        out.push_str(close);
    };
    let pairs = |p: &Value, out: &mut String| {
        out.push('{');
        for (i, pair) in p
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            if out.len() > DISPLAY_BUDGET {
                out.push('…');
                break;
            }
            if let Some([k, v]) = pair.as_array().map(Vec::as_slice) {
                if i > 0 {
                    out.push_str(", ");
                }
                render(k, out, depth + 1);
                out.push_str(": ");
                render(v, out, depth + 1);
            }
        }
        out.push('}');
    };
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Value::String(s) => out.push_str(&format!("{s:?}")),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Array(items) => list(items, "[", "]", out),
        Value::Object(o) => match tag(o) {
            Some(("int" | "float" | "decimal", Value::String(s))) => out.push_str(s),
            Some(("tuple", Value::Array(items))) => list(items, "(", ")", out),
            Some(("set" | "frozenset", Value::Array(items))) => list(items, "{", "}", out),
            Some(("dict" | "counter" | "ordereddict", p)) => pairs(p, out),
            Some(("handle", Value::Array(h))) => out.push_str(&format!(
                "<{} object>",
                h.get(1).and_then(Value::as_str).unwrap_or("?")
            )),
            _ => out.push_str(&v.to_string()),
        },
    }
}

/// A number as the candidate sent it.
enum Num<'a> {
    /// Exact decimal digits, normalized.
    Int(String),
    Float(f64),
    /// A `Fraction` n/d (both normalized digits).
    Ratio(String, String),
    /// A `Decimal`'s text.
    Decimal(&'a str),
}

fn actual_num(v: &Value) -> Option<Num<'_>> {
    match v {
        Value::Number(n) if n.is_f64() => n.as_f64().map(Num::Float),
        Value::Number(n) => Some(Num::Int(normalize_int(&n.to_string()))),
        Value::Object(o) => match tag(o)? {
            ("int", Value::String(s)) if is_integer(s) => Some(Num::Int(normalize_int(s))),
            ("float", Value::String(s)) => s.parse::<f64>().ok().map(Num::Float),
            ("decimal", Value::String(s)) => Some(Num::Decimal(s)),
            ("fraction", Value::Array(p)) if p.len() == 2 => {
                let part = |v: &Value| match actual_num(v) {
                    Some(Num::Int(d)) => Some(d),
                    _ => None,
                };
                match (part(&p[0]), part(&p[1])) {
                    (Some(n), Some(d)) if d != "0" => Some(Num::Ratio(n, d)),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    }
}

/// An integer as its significant digits and a count of trailing zeros (`-1500` is
/// `("-15", 2)`, zero is `("0", 0)`). It is never expanded, so an exponent the candidate chose
/// (`Decimal('1E+999999999999')`) sizes nothing on the host: building one is linear in the text
/// it came from, and two are equal exactly when their integers are.
#[derive(Debug, PartialEq, Eq)]
struct Integral {
    /// The sign and the digits without leading or trailing zeros (`"0"` for zero).
    digits: String,
    /// How many zeros follow them.
    zeros: u64,
}

impl Integral {
    /// From an integer's decimal digits, with an optional sign.
    fn of_int(text: &str) -> Integral {
        let normal = normalize_int(text);
        let body = normal.trim_end_matches('0');
        if body.is_empty() || body == "-" {
            return Integral {
                digits: "0".into(),
                zeros: 0,
            };
        }
        Integral {
            zeros: (normal.len() - body.len()) as u64,
            digits: body.to_string(),
        }
    }

    /// A float's value, when it is integral.
    fn of_float(f: f64) -> Option<Integral> {
        (f.is_finite() && f.fract() == 0.0).then(|| Integral::of_int(&format!("{f:.0}")))
    }

    /// A `Decimal`'s value, when it is integral (`"1.50E+2"` → `("15", 1)`): linear in the text
    /// with checked exponent arithmetic; `None` for NaN, infinities, non-integers and exponents
    /// beyond `i64`.
    fn of_decimal(text: &str) -> Option<Integral> {
        let t = text.trim();
        let (neg, t) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (mantissa, exp) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], t[i + 1..].parse::<i64>().ok()?),
            None => (t, 0),
        };
        let (int_part, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if !(int_part
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit()))
            || int_part.len() + frac.len() == 0
        {
            return None;
        }
        let all = format!("{int_part}{frac}");
        let significant = all.trim_start_matches('0');
        let body = significant.trim_end_matches('0');
        if body.is_empty() {
            return Some(Integral::of_int("0"));
        }
        // value = body × 10^(exp − len(frac) + trailing zeros of the significant digits)
        let trailing = i64::try_from(significant.len() - body.len()).ok()?;
        let frac_len = i64::try_from(frac.len()).ok()?;
        let zeros = exp.checked_sub(frac_len)?.checked_add(trailing)?;
        let zeros = u64::try_from(zeros).ok()?;
        Some(Integral {
            digits: if neg {
                format!("-{body}")
            } else {
                body.to_string()
            },
            zeros,
        })
    }

    /// A spelling shared exactly by equal integers: the digits, then `e` and the zeros when
    /// there are any (never expanded).
    fn spell(&self, out: &mut String) {
        out.push_str(&self.digits);
        if self.zeros > 0 {
            out.push('e');
            out.push_str(&self.zeros.to_string());
        }
    }
}

/// An answer number against an expected integer: exact, always.
fn matches_int(actual: &Num<'_>, digits: &str) -> bool {
    let integral = match actual {
        Num::Int(a) => return a == digits,
        Num::Float(f) => Integral::of_float(*f),
        Num::Ratio(n, d) => return d == "1" && n == digits,
        Num::Decimal(s) => Integral::of_decimal(s),
    };
    integral.is_some_and(|a| a == Integral::of_int(digits))
}

/// An answer number against an expected float: within the tolerance (exactly equal counts
/// too, for an integer that no float rounding may excuse).
fn matches_float(actual: &Num<'_>, e: f64, tol: Tolerance) -> bool {
    let a = match actual {
        Num::Int(digits) => {
            if Integral::of_float(e).is_some_and(|d| d == Integral::of_int(digits)) {
                return true;
            }
            if tol.is_exact() {
                return false;
            }
            digits.parse::<f64>().ok()
        }
        Num::Float(f) => Some(*f),
        Num::Ratio(n, d) => match (n.parse::<f64>(), d.parse::<f64>()) {
            (Ok(n), Ok(d)) => Some(n / d),
            _ => None,
        },
        Num::Decimal(s) => s.trim().parse::<f64>().ok(),
    };
    a.is_some_and(|a| tol.close(a, e))
}

/// A returned dict's pairs against the expected object: as many pairs as expected keys, each
/// key spelled as an expected one ([`answer_key`]) and spelled by no other pair (so one key
/// is never counted twice), each value matching.
fn pairs_match(
    pairs: &Value,
    expected: &[(String, Exact)],
    tol: Tolerance,
    keys: Keys,
    depth: usize,
) -> bool {
    let Some(pairs) = pairs.as_array() else {
        return false;
    };
    if pairs.len() != expected.len() {
        return false;
    }
    let wanted: HashMap<&str, &Exact> = expected.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut seen: HashSet<Cow<'_, str>> = HashSet::with_capacity(pairs.len());
    pairs.iter().all(|p| match p.as_array().map(Vec::as_slice) {
        Some([k, v]) => answer_key(k, keys).is_some_and(|k| {
            wanted
                .get(k.as_ref())
                .is_some_and(|ev| matches(v, ev, tol, keys, depth + 1))
                && seen.insert(k)
        }),
        _ => false,
    })
}

fn seq_matches(
    items: &[Value],
    expected: &[Exact],
    tol: Tolerance,
    keys: Keys,
    depth: usize,
) -> bool {
    items.len() == expected.len()
        && items
            .iter()
            .zip(expected)
            .all(|(x, y)| matches(x, y, tol, keys, depth + 1))
}

/// Whether a namedtuple's or dataclass's parts have their `fields` entries, and at most one
/// more (the harness's parameters and way back to the original, which the host ignores).
fn is_record(parts: &[Value], fields: usize) -> bool {
    parts.len() == fields || parts.len() == fields + 1
}

/// The items of an answer that is a sequence of any kind (list, tuple, deque, namedtuple, set,
/// frozenset).
fn any_sequence(actual: &Value) -> Option<&[Value]> {
    match actual {
        Value::Array(items) => Some(items),
        Value::Object(o) => match tag(o)? {
            ("tuple" | "set" | "frozenset", Value::Array(items)) => Some(items),
            ("deque", Value::Array(p)) if p.len() == 2 => p[1].as_array().map(Vec::as_slice),
            ("namedtuple", Value::Array(p)) if is_record(p, 3) => {
                p[2].as_array().map(Vec::as_slice)
            }
            _ => None,
        },
        _ => None,
    }
}

fn matches(actual: &Value, expected: &Exact, tol: Tolerance, keys: Keys, depth: usize) -> bool {
    if depth > MAX_ANSWER_DEPTH {
        return false;
    }
    match (actual, expected) {
        (Value::Null, Exact::Null) => true,
        (Value::Bool(a), Exact::Bool(e)) => a == e,
        (Value::String(a), Exact::Str(e)) => a == e,
        (_, Exact::Int(digits)) => actual_num(actual).is_some_and(|a| matches_int(&a, digits)),
        (_, Exact::Float(e)) => actual_num(actual).is_some_and(|a| matches_float(&a, *e, tol)),
        (Value::Array(a), Exact::Array(e)) => seq_matches(a, e, tol, keys, depth),
        (Value::Object(o), Exact::Array(e)) => match tag(o) {
            Some(("tuple", Value::Array(items))) => seq_matches(items, e, tol, keys, depth),
            Some(("deque", Value::Array(p))) if p.len() == 2 => p[1]
                .as_array()
                .is_some_and(|items| seq_matches(items, e, tol, keys, depth)),
            Some(("namedtuple", Value::Array(p))) if is_record(p, 3) => p[2]
                .as_array()
                .is_some_and(|items| seq_matches(items, e, tol, keys, depth)),
            // A set is not an ordered list (only `unordered` compares it with one).
            _ => false,
        },
        (Value::Object(o), Exact::Object(e)) => match tag(o) {
            Some(("dict" | "counter" | "ordereddict", p)) => pairs_match(p, e, tol, keys, depth),
            Some(("defaultdict", Value::Array(p))) if p.len() == 2 => {
                pairs_match(&p[1], e, tol, keys, depth)
            }
            Some(("dataclass", Value::Array(p))) if is_record(p, 2) => {
                pairs_match(&p[1], e, tol, keys, depth)
            }
            _ => false,
        },
        _ => false,
    }
}

/// `unordered`: a returned sequence of any kind against the expected array, as multisets of
/// exact spellings (O(n log n)).
fn unordered_matches(actual: &Value, expected: &Exact, keys: Keys) -> bool {
    let (Some(items), Exact::Array(wanted)) = (any_sequence(actual), expected) else {
        return false;
    };
    if items.len() != wanted.len() {
        return false;
    }
    let mut a = Vec::with_capacity(items.len());
    for x in items {
        let mut out = String::new();
        if !spell(x, &mut out, keys, 1) {
            return false;
        }
        a.push(out);
    }
    let mut e = Vec::with_capacity(wanted.len());
    for y in wanted {
        let mut out = String::new();
        if !spell_exact(y, &mut out, 1) {
            return false;
        }
        e.push(out);
    }
    a.sort_unstable();
    e.sort_unstable();
    a == e
}

/// Appends a spelling that an answer value and an expected value share exactly when they are
/// equal without tolerance (under the rules of [`matches`]): sequences as arrays, dict-likes as
/// objects with sorted keys (spelled by [`answer_key`]), integral floats as integers. `false` for
/// what has no spelling (a handle, a set, a NaN, a non-integral `Fraction` or `Decimal`, a dict
/// with a key no expected key can match or with two keys of one spelling).
fn spell(v: &Value, out: &mut String, keys: Keys, depth: usize) -> bool {
    if depth > MAX_ANSWER_DEPTH {
        return false;
    }
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            out.push_str(&v.to_string());
            true
        }
        Value::Array(items) => spell_seq(items.iter().map(Spellable::Answer), out, keys, depth),
        Value::Number(_) => spell_num(actual_num(v), out),
        Value::Object(o) => match tag(o) {
            Some(("int" | "float" | "decimal" | "fraction", _)) => spell_num(actual_num(v), out),
            Some(("tuple", Value::Array(items))) => {
                spell_seq(items.iter().map(Spellable::Answer), out, keys, depth)
            }
            Some(("deque", Value::Array(p))) if p.len() == 2 => {
                p[1].as_array().is_some_and(|items| {
                    spell_seq(items.iter().map(Spellable::Answer), out, keys, depth)
                })
            }
            Some(("namedtuple", Value::Array(p))) if is_record(p, 3) => {
                p[2].as_array().is_some_and(|items| {
                    spell_seq(items.iter().map(Spellable::Answer), out, keys, depth)
                })
            }
            Some(("dict" | "counter" | "ordereddict", p)) => spell_pairs(p, out, keys, depth),
            Some(("defaultdict", Value::Array(p))) if p.len() == 2 => {
                spell_pairs(&p[1], out, keys, depth)
            }
            Some(("dataclass", Value::Array(p))) if is_record(p, 2) => {
                spell_pairs(&p[1], out, keys, depth)
            }
            _ => false,
        },
    }
}

/// The expected side's spelling (see [`spell`]).
fn spell_exact(v: &Exact, out: &mut String, depth: usize) -> bool {
    if depth > MAX_ANSWER_DEPTH {
        return false;
    }
    match v {
        Exact::Null => out.push_str("null"),
        Exact::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Exact::Str(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Exact::Int(d) => Integral::of_int(d).spell(out),
        Exact::Float(f) => return spell_num(Some(Num::Float(*f)), out),
        Exact::Array(items) => {
            // `keys` only applies to an answer's dicts; the expected side has none.
            return spell_seq(
                items.iter().map(Spellable::Expected),
                out,
                Keys::Strict,
                depth,
            );
        }
        Exact::Object(pairs) => {
            let mut parts = Vec::with_capacity(pairs.len());
            for (k, x) in pairs {
                let mut p = format!("{k:?}:");
                if !spell_exact(x, &mut p, depth + 1) {
                    return false;
                }
                parts.push(p);
            }
            parts.sort_unstable();
            out.push('{');
            out.push_str(&parts.join(","));
            out.push('}');
        }
    }
    true
}

enum Spellable<'a> {
    Answer(&'a Value),
    Expected(&'a Exact),
}

fn spell_seq<'a>(
    items: impl Iterator<Item = Spellable<'a>>,
    out: &mut String,
    keys: Keys,
    depth: usize,
) -> bool {
    out.push('[');
    for (i, x) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let ok = match x {
            Spellable::Answer(v) => spell(v, out, keys, depth + 1),
            Spellable::Expected(v) => spell_exact(v, out, depth + 1),
        };
        if !ok {
            return false;
        }
    }
    out.push(']');
    true
}

fn spell_pairs(p: &Value, out: &mut String, keys: Keys, depth: usize) -> bool {
    let Some(pairs) = p.as_array() else {
        return false;
    };
    let mut parts = Vec::with_capacity(pairs.len());
    let mut seen = HashSet::with_capacity(pairs.len());
    for pair in pairs {
        let Some([k, x]) = pair.as_array().map(Vec::as_slice) else {
            return false;
        };
        let Some(k) = answer_key(k, keys) else {
            return false;
        };
        let mut part = format!("{:?}:", k.as_ref());
        if !seen.insert(k) {
            return false;
        }
        if !spell(x, &mut part, keys, depth + 1) {
            return false;
        }
        parts.push(part);
    }
    parts.sort_unstable();
    out.push('{');
    out.push_str(&parts.join(","));
    out.push('}');
    true
}

fn spell_num(n: Option<Num<'_>>, out: &mut String) -> bool {
    let integral = match n {
        Some(Num::Int(d)) => Some(Integral::of_int(&d)),
        Some(Num::Float(f)) => match Integral::of_float(f) {
            Some(i) => Some(i),
            None if f.is_finite() => {
                out.push_str(&format!("{f:?}"));
                return true;
            }
            None => None,
        },
        Some(Num::Ratio(n, d)) if d == "1" => Some(Integral::of_int(&n)),
        Some(Num::Decimal(s)) => Integral::of_decimal(s),
        _ => None,
    };
    match integral {
        Some(i) => {
            i.spell(out);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_contract::rollout::Compare;

    const TOL: Tolerance = Tolerance {
        rel: 1e-6,
        abs: 1e-6,
    };

    fn rule() -> Rule {
        Rule::with_tolerance(TOL)
    }

    fn with(c: Compare) -> Rule {
        Rule::from_compare(c)
    }

    fn ok(answer: &str, expected: &str) -> bool {
        ok_with(answer, expected, &rule())
    }

    fn ok_with(answer: &str, expected: &str, rule: &Rule) -> bool {
        let e = Exact::parse(expected).unwrap();
        value_matches(&parse_answer(answer).unwrap(), &e, rule).is_ok()
    }

    #[test]
    fn stdio_normalizes_endings_and_trailing_space_but_counts_lines() {
        let r = rule();
        assert!(stdout_matches("1 2 \r\n3\r\n\n", "1 2\n3\n", &r).is_ok());
        let err = stdout_matches("1 2\n", "1 2\n3\n", &r).unwrap_err();
        assert!(err.contains("expected 2 lines, got 1"), "{err}");
        assert!(stdout_matches("1 2\n3\n4\n", "1 2\n3\n", &r).is_err());
        assert!(stdout_matches("", "0\n", &r).is_err());
        // Within a line, tokens are compared: spacing between them is not significant...
        assert!(stdout_matches(" 1  2\n", "1 2\n", &r).is_ok());
        // ...except in `exact` mode.
        let exact = with(Compare {
            mode: Some(CompareMode::Exact),
            ..Compare::default()
        });
        assert!(stdout_matches(" 1\n", "1\n", &exact).is_err());
    }

    #[test]
    fn stdio_floats_within_tolerance_but_integers_exact() {
        let r = rule();
        assert!(stdout_matches("0.3333333\n", "0.333333333\n", &r).is_ok());
        assert!(stdout_matches("0.33\n", "0.333333333\n", &r).is_err());
        assert!(stdout_matches("10000000000000000001\n", "10000000000000000000\n", &r).is_err());
        // An integer expectation takes only that integer, never a float spelling of it.
        assert!(stdout_matches("7.62078937663847e+21\n", "7620789376638470000000\n", &r).is_err());
        assert!(stdout_matches("123456789008.0\n", "123456789008\n", &r).is_err());
        assert!(stdout_matches("2.0\n", "2\n", &r).is_err());
        assert!(stdout_matches("007 -0\n", "7 0\n", &r).is_ok());
        // A float expectation takes an integer within the tolerance.
        assert!(stdout_matches("2\n", "2.0\n", &r).is_ok());
        assert!(stdout_matches("nan\n", "inf\n", &r).is_err());
        let err = stdout_matches("YES\n", "NO\n", &r).unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn stdio_tolerance_is_the_problems() {
        let tight = with(Compare {
            rel_tol: Some(1e-9),
            abs_tol: Some(1e-9),
            ..Compare::default()
        });
        assert!(stdout_matches("3.1415926\n", "3.14159265358979\n", &tight).is_err());
        assert!(stdout_matches("3.1415926\n", "3.14159265358979\n", &rule()).is_ok());
        assert!(stdout_matches("3.1415926535898\n", "3.14159265358979\n", &tight).is_ok());
        let abs_only = with(Compare {
            rel_tol: Some(0.0),
            abs_tol: Some(0.01),
            ..Compare::default()
        });
        assert!(
            stdout_matches("100.005\n", "100\n", &abs_only).is_err(),
            "100 is an integer"
        );
        assert!(stdout_matches("100.005\n", "100.0\n", &abs_only).is_ok());
        assert!(stdout_matches("100.02\n", "100.0\n", &abs_only).is_err());
    }

    #[test]
    fn stdio_modes_exact_tokens_case_and_order() {
        let exact = with(Compare {
            mode: Some(CompareMode::Exact),
            ..Compare::default()
        });
        assert!(stdout_matches("a  b\r\n1.5\n\n", "a  b\n1.5", &exact).is_ok());
        assert!(stdout_matches("a b\n", "a  b\n", &exact).is_err());
        assert!(stdout_matches("a \n", "a\n", &exact).is_err());
        assert!(stdout_matches("1.5000001\n", "1.5\n", &exact).is_err());

        let tokens = with(Compare {
            mode: Some(CompareMode::Tokens),
            ..Compare::default()
        });
        assert!(stdout_matches("1 2\n3   4.0000001\n", "1\n2 3\n4\t4.0", &tokens).is_err());
        assert!(stdout_matches("1 2\n3   4.0000001\n", "1\n2 3\t4.0", &tokens).is_ok());
        assert!(stdout_matches("1 2 3", "1 2", &tokens)
            .unwrap_err()
            .contains("2 tokens"));

        let ci = with(Compare {
            case_insensitive: Some(true),
            ..Compare::default()
        });
        assert!(stdout_matches("yes\nNo\n", "YES\nNO\n", &ci).is_ok());
        assert!(stdout_matches("yes\n", "YES\n", &rule()).is_err());
        assert!(stdout_matches("yess\n", "YES\n", &ci).is_err());

        let any_order = with(Compare {
            unordered: Some(true),
            ..Compare::default()
        });
        assert!(stdout_matches("3 c\n1 a\n2 b\n", "1 a\n2 b\n3 c\n", &any_order).is_ok());
        assert!(stdout_matches("3 c\n1 a\n1 a\n", "1 a\n2 b\n3 c\n", &any_order).is_err());
        assert!(stdout_matches("1 a\n2 b\n", "1 a\n2 b\n3 c\n", &any_order).is_err());
        assert!(stdout_matches("3 c\n1 a\n2 b\n", "1 a\n2 b\n3 c\n", &rule()).is_err());
    }

    #[test]
    fn values_compare_canonically() {
        assert!(ok(r#"{"int":"2"}"#, "2.0"));
        assert!(ok("2", "2.0"));
        assert!(ok("2.0", "2"), "a float exactly equal to the integer");
        assert!(!ok("2.0000001", "2"), "integers are exact, always");
        assert!(ok(r#"{"tuple":[1,"a"]}"#, r#"[1, "a"]"#));
        assert!(ok(r#"{"counter":[["a",2]]}"#, r#"{"a": 2}"#));
        assert!(ok(r#"{"deque":[null,[1,2]]}"#, "[1, 2]"));
        assert!(ok(r#"{"namedtuple":["P",["x","y"],[1,2]]}"#, "[1, 2]"));
        assert!(ok(r#"{"fraction":[1,4]}"#, "0.25"));
        assert!(ok(r#"{"fraction":[6,1]}"#, "6"));
        assert!(!ok(r#"{"fraction":[13,2]}"#, "6"));
        assert!(ok(r#"{"decimal":"1.50E+2"}"#, "150"));
        assert!(!ok(r#"{"decimal":"150.5"}"#, "150"));
        assert!(ok(r#"{"decimal":"0.1"}"#, "0.1"));
        assert!(!ok(r#"{"handle":[0,"Weird"]}"#, "1"));
        assert!(!ok(r#"{"handle":[0,"Weird"]}"#, "[]"));
        assert!(!ok(r#"{"int":"1x"}"#, "1"));
        assert!(ok(r#"{"float":"2.0"}"#, "2"));
        assert!(ok(r#"{"float":"0.30000000000000004"}"#, "0.3"));
        assert!(!ok(r#"{"float":"0.31"}"#, "0.3"));
        assert!(ok(r#"[{"int":"1"},{"int":"2"}]"#, "[1, 2]"));
        assert!(!ok(r#"[{"int":"1"}]"#, "[1, 2]"));
        assert!(ok(
            r#"{"dict":[["b",{"int":"2"}],["a",{"int":"1"}]]}"#,
            r#"{"a": 1, "b": 2}"#
        ));
        assert!(!ok("true", "1"), "bool is not int");
        assert!(!ok("1", "true"));
        assert!(ok("null", "null"));
        assert!(!ok(r#""2""#, "2"));
    }

    fn strict_keys() -> Rule {
        with(Compare {
            strict_keys: Some(true),
            ..Compare::default()
        })
    }

    #[test]
    fn dict_keys_are_exact_and_all_required() {
        let strict = strict_keys();
        assert!(
            !ok_with(r#"{"dict":[[1,"x"]]}"#, r#"{"1": "x"}"#, &strict),
            "strictly, 1 is not \"1\""
        );
        assert!(ok(r#"{"dict":[["1","x"]]}"#, r#"{"1": "x"}"#));
        assert!(ok_with(r#"{"dict":[["1","x"]]}"#, r#"{"1": "x"}"#, &strict));
        assert!(!ok(r#"{"dict":[["a",1]]}"#, r#"{"a": 1, "b": 2}"#));
        assert!(!ok(r#"{"dict":[["a",1],["b",2]]}"#, r#"{"a": 1}"#));
        // A forged answer repeating a key cannot stand in for a missing one.
        assert!(!ok(r#"{"dict":[["a",1],["a",1]]}"#, r#"{"a": 1, "b": 2}"#));
        assert!(ok(r#"{"defaultdict":["int",[["a",1]]]}"#, r#"{"a": 1}"#));
        assert!(ok(
            r#"{"ordereddict":[["b",2],["a",1]]}"#,
            r#"{"a": 1, "b": 2}"#
        ));
        assert!(ok(
            r#"{"dataclass":["P",[["x",1],["y",2]]]}"#,
            r#"{"x": 1, "y": 2}"#
        ));
    }

    #[test]
    fn int_keys_match_their_json_spelling_unless_strict() {
        let strict = strict_keys();
        // {1: 1, 2: 4} as a JSON dataset writes it.
        let squares = r#"{"dict":[[1,{"int":"1"}],[2,4]]}"#;
        assert!(ok(squares, r#"{"1": 1, "2": 4}"#));
        assert!(!ok_with(squares, r#"{"1": 1, "2": 4}"#, &strict));
        assert!(!ok(squares, r#"{"1": 1, "2": 5}"#), "values still compare");
        assert!(!ok(squares, r#"{"1": 1, "3": 4}"#));
        // The canonical decimal spelling only (Python's `str(k)`), at any size.
        for spelled in ["01", "+1", "1.0", " 1", "1 ", "0x1", "True", "true"] {
            let expected = format!(r#"{{"{spelled}": "a"}}"#);
            assert!(!ok(r#"{"dict":[[1,"a"]]}"#, &expected), "{spelled}");
        }
        assert!(ok(r#"{"dict":[[-7,"a"]]}"#, r#"{"-7": "a"}"#));
        assert!(ok(r#"{"dict":[[0,"a"]]}"#, r#"{"0": "a"}"#));
        assert!(!ok(r#"{"dict":[[0,"a"]]}"#, r#"{"-0": "a"}"#));
        let big = "123456789012345678901234567890";
        assert!(ok(
            &format!(r#"{{"dict":[[{{"int":"{big}"}},"a"]]}}"#),
            &format!(r#"{{"{big}": "a"}}"#)
        ));
        assert!(ok(r#"{"dict":[[{"int":"007"}, "a"]]}"#, r#"{"7": "a"}"#));
        // Only ints: a bool, a float or a tuple key is not its spelling.
        for key in [
            "true",
            "1.0",
            "1.5",
            r#"{"float":"inf"}"#,
            r#"{"tuple":[1]}"#,
        ] {
            let answer = format!(r#"{{"dict":[[{key},"a"]]}}"#);
            for spelled in ["1", "True", "true", "1.0", "1.5", "inf", "(1,)"] {
                let expected = format!(r#"{{"{spelled}": "a"}}"#);
                assert!(!ok(&answer, &expected), "{key} against {spelled}");
            }
        }
        // One key is never counted twice: {1: 'a', '1': 'a'} has two keys, the expected one
        // of them and one too many, or a repeat standing in for a missing key.
        let twice = r#"{"dict":[[1,"a"],["1","a"]]}"#;
        assert!(!ok(twice, r#"{"1": "a"}"#));
        assert!(!ok(twice, r#"{"1": "a", "2": "a"}"#));
        assert!(!ok(
            r#"{"dict":[["1","a"],[1,"a"]]}"#,
            r#"{"1": "a", "2": "a"}"#
        ));
        assert!(!ok(
            r#"{"dict":[[1,"a"],[{"int":"01"},"a"]]}"#,
            r#"{"1": "a", "2": "a"}"#
        ));
        // Nested, and in every dict-like.
        assert!(ok(
            r#"[{"dict":[[1,{"counter":[[2,3]]}]]},{"defaultdict":["list",[[5,[]]]]}]"#,
            r#"[{"1": {"2": 3}}, {"5": []}]"#
        ));
        assert!(ok(
            r#"{"ordereddict":[[3,"c"],["x",1]]}"#,
            r#"{"x": 1, "3": "c"}"#
        ));
        // And in any order, under the same rules.
        let any_order = with(Compare {
            unordered: Some(true),
            ..Compare::default()
        });
        let any_order_strict = with(Compare {
            unordered: Some(true),
            strict_keys: Some(true),
            ..Compare::default()
        });
        let dicts = r#"[{"dict":[[2,"b"]]},{"dict":[[1,"a"]]}]"#;
        assert!(ok_with(dicts, r#"[{"1": "a"}, {"2": "b"}]"#, &any_order));
        assert!(!ok_with(
            dicts,
            r#"[{"1": "a"}, {"2": "b"}]"#,
            &any_order_strict
        ));
        assert!(!ok_with(dicts, r#"[{"01": "a"}, {"2": "b"}]"#, &any_order));
        assert!(!ok_with(
            &format!("[{twice}]"),
            r#"[{"1": "a", "2": "a"}]"#,
            &any_order
        ));
        assert!(!ok_with(
            r#"[{"dict":[[true,"a"]]}]"#,
            r#"[{"1": "a"}]"#,
            &any_order
        ));
    }

    #[test]
    fn a_set_is_not_an_ordered_list_unless_order_is_waived() {
        assert!(!ok(r#"{"set":[3,1]}"#, "[1, 3]"));
        assert!(!ok(r#"{"frozenset":[1,3]}"#, "[1, 3]"));
        let any_order = with(Compare {
            unordered: Some(true),
            ..Compare::default()
        });
        assert!(ok_with(r#"{"set":[3,1]}"#, "[1, 3]", &any_order));
        assert!(ok_with(
            r#"[3,1,{"tuple":[2,2.0]}]"#,
            "[1, [2, 2], 3]",
            &any_order
        ));
        assert!(!ok_with(r#"[3,1,1]"#, "[1, 3, 3]", &any_order));
        assert!(!ok_with(r#"{"set":[3,1]}"#, "[1, 3, 5]", &any_order));
    }

    #[test]
    fn expected_integers_are_exact_at_any_size() {
        let fact25 = "15511210043330985984000000";
        // int(math.gamma(26)): the float's own integer, off in the low digits.
        let gamma = format!("{:.0}", 1.5511210043330986e25f64);
        assert_ne!(gamma, fact25);
        assert!(ok(&format!(r#"{{"int":"{fact25}"}}"#), fact25));
        assert!(!ok(&format!(r#"{{"int":"{gamma}"}}"#), fact25));
        assert!(!ok("1.5511210043330986e25", fact25));
        // 3**50 through floats vs exactly.
        let exact = "717897987691852588770249";
        assert!(ok(&format!(r#"{{"int":"{exact}"}}"#), exact));
        assert!(!ok(r#"{"int":"717897987691852578422784"}"#, exact));
        let digits = format!("1{}", "0".repeat(5735));
        assert!(ok(&format!(r#"{{"int":"{digits}"}}"#), &digits));
        assert!(!ok(&format!(r#"{{"int":"{digits}1"}}"#), &digits));
        assert!(!ok("10", &digits));
        assert!(ok(
            r#"{"int":"-12345678901234567890"}"#,
            "-12345678901234567890"
        ));
        assert!(ok(
            r#"{"int":"18446744073709551615"}"#,
            "18446744073709551615"
        ));
    }

    #[test]
    fn call_tolerance_is_the_problems() {
        let tight = with(Compare {
            rel_tol: Some(1e-9),
            abs_tol: Some(0.0),
            ..Compare::default()
        });
        assert!(!ok_with("3.1415926", "3.141592653589793", &tight));
        assert!(ok_with("3.14159265358979", "3.141592653589793", &tight));
        let exact = with(Compare {
            mode: Some(CompareMode::Exact),
            ..Compare::default()
        });
        assert!(!ok_with("0.30000000000000004", "0.3", &exact));
        assert!(ok_with("0.5", "0.5", &exact));
        // Found by the differential test: answers are parsed with correct rounding
        // (serde_json's `float_roundtrip`), as exactly as the expected side.
        assert!(ok_with("931618.7424542899", "931618.7424542899", &exact));
        assert!(ok_with(
            r#"{"int":"9007199254740993"}"#,
            "9007199254740993",
            &exact
        ));
        // The int 2**53 + 1 is not the float 2**53 (exactly, as Python).
        assert!(!ok_with(
            r#"{"int":"9007199254740993"}"#,
            "9007199254740992.0",
            &exact
        ));
    }

    #[test]
    fn deep_answers_are_refused_before_parsing_and_deep_ones_within_the_cap_compare() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_answer(&deep).unwrap_err().contains("nested"));
        // 46 dicts deep, as a correct trie: 138 JSON levels in the answer.
        let mut text = "null".to_string();
        let mut expected = "null".to_string();
        for _ in 0..46 {
            text = format!(r#"{{"dict":[["a",{text}]]}}"#);
            expected = format!(r#"{{"a": {expected}}}"#);
        }
        assert!(ok(&text, &expected));
    }

    #[test]
    fn large_unordered_answers_compare_in_n_log_n() {
        let n = 40_000;
        let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let answer = parse_answer(&format!(r#"{{"set":[{}]}}"#, items.join(","))).unwrap();
        let mut expected: Vec<i64> = (0..n).rev().collect();
        let any_order = with(Compare {
            unordered: Some(true),
            ..Compare::default()
        });
        let e = Exact::parse(&serde_json::to_string(&expected).unwrap()).unwrap();
        expected[0] = -1;
        let wrong = Exact::parse(&serde_json::to_string(&expected).unwrap()).unwrap();
        // Element by element it would be 1.6e9 comparisons; sorted, well under a second.
        let start = std::time::Instant::now();
        assert!(value_matches(&answer, &e, &any_order).is_ok());
        assert!(value_matches(&answer, &wrong, &any_order).is_err());
        assert!(start.elapsed().as_secs_f64() < 3.0, "{:?}", start.elapsed());
    }

    #[test]
    fn decimal_exponents_size_nothing_on_the_host() {
        // Exponents at and past i64's ends: no overflow, no expansion, no match.
        for text in [
            "1E+9223372036854775807",
            "9E+9223372036854775806",
            "1.5E+9223372036854775807",
            "-1E-9223372036854775808",
            "1E+99999999999999999999",
            "100E-9223372036854775808",
        ] {
            let answer = format!(r#"{{"decimal":"{text}"}}"#);
            assert!(!ok(&answer, "1"), "{text}");
            assert!(!ok(&answer, "10"), "{text}");
            let mut spelled = String::new();
            spell(
                &parse_answer(&answer).unwrap(),
                &mut spelled,
                Keys::IntsAsDecimal,
                1,
            );
            assert!(spelled.len() <= text.len() + 21, "{text}: {spelled:.80}");
        }
        // Integral decimals still equal their integers, whatever their spelling.
        assert!(ok(r#"{"decimal":"1.50E+2"}"#, "150"));
        assert!(ok(r#"{"decimal":"1500E-1"}"#, "150"));
        assert!(ok(r#"{"decimal":"-0.0"}"#, "0"));
        assert!(ok(
            r#"{"decimal":"1E+30"}"#,
            &format!("1{}", "0".repeat(30))
        ));
        assert!(!ok(r#"{"decimal":"1.5"}"#, "1"));
        assert!(!ok(
            r#"{"decimal":"1E+30"}"#,
            &format!("1{}", "0".repeat(29))
        ));
    }

    #[test]
    fn unordered_decimals_are_compared_without_spelling_their_zeros() {
        // 25 bytes of answer per item used to become a MiB of digits on the host.
        let n = 20_000;
        let item = r#"{"decimal":"1E+1048000"}"#;
        let answer = parse_answer(&format!(r#"{{"set":[{}]}}"#, vec![item; n].join(","))).unwrap();
        let any_order = with(Compare {
            unordered: Some(true),
            ..Compare::default()
        });
        let ones = Exact::parse(&serde_json::to_string(&vec![1; n]).unwrap()).unwrap();
        let start = std::time::Instant::now();
        assert!(value_matches(&answer, &ones, &any_order).is_err());
        assert!(start.elapsed().as_secs_f64() < 3.0, "{:?}", start.elapsed());
        // And the same values, spelled out, are equal to them.
        let big = format!("1{}", "0".repeat(1000));
        let answer =
            parse_answer(r#"{"set":[{"decimal":"1E+1000"},{"decimal":"10E+999"}]}"#).unwrap();
        let expected = Exact::parse(&format!("[{big}, {big}]")).unwrap();
        assert!(value_matches(&answer, &expected, &any_order).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn any_decimal_text_is_read_in_bounded_space(
            mantissa in "[+-]?[0-9]{0,40}(\\.[0-9]{0,40})?",
            exp in proptest::option::of(proptest::prelude::any::<i64>()),
            junk in "[0-9eE+.-]{0,12}",
        ) {
            let text = match exp {
                Some(e) => format!("{mantissa}E{e:+}{junk}"),
                None => format!("{mantissa}{junk}"),
            };
            if let Some(i) = Integral::of_decimal(&text) {
                let mut out = String::new();
                i.spell(&mut out);
                proptest::prop_assert!(out.len() <= text.len() + 21);
            }
            let answer = serde_json::json!({ "decimal": text });
            let _ = value_matches(&answer, &Exact::parse("123").unwrap(), &rule());
        }
    }
}
