//! Host-side comparisons: a stdio test's output against the expected output, a call test's
//! canonical value against the expected JSON. The expected side never enters the sandbox.
//!
//! # stdio
//! Line endings (`\r\n`, `\r`) become `\n`, trailing whitespace of every line is dropped, and
//! trailing empty lines are dropped. Then both sides must have **the same number of lines** (a
//! program printing a prefix of the answer fails) and each line must match: exactly, or, with a
//! tolerance, token by token (split on whitespace) where tokens that both parse as floats and
//! are not both plain integers are compared within the tolerance. Integers are always compared
//! exactly (`10000000000000000001` ≠ `10000000000000000000`).
//!
//! # call
//! The candidate answers with tagged JSON (`sandbox/PROTOCOL.md`, "What crosses"): numbers
//! below 2^53 and finite floats as JSON numbers, `{"int": "<digits>"}` beyond, `{"float":
//! "nan"}`, lists as arrays, `{"tuple": […]}`, `{"dict": [[k, v], …]}`, `{"set": […]}`, and tags
//! for `Counter`, `defaultdict`, `OrderedDict`, `deque`, namedtuples, `Fraction`, `Decimal`,
//! dataclasses. Against the expected JSON: ints and floats compare numerically (`2 == 2.0`),
//! floats within the tolerance; tuples, deques and namedtuples match arrays; dict-like values
//! match objects, order aside, keys by their JSON spelling (`{1: "a"}` matches `{"1": "a"}`, as
//! `json.dumps` would write it); a set matches an array with the same elements in any order
//! (within the tolerance up to 64 elements, exactly beyond: O(n log n)); `bool` only matches
//! `true`/`false` (never `1`); an opaque handle matches nothing. Expected integers beyond 64
//! bits arrive as JSON floats and are compared as floats. Parsing checks the depth first
//! ([`MAX_ANSWER_DEPTH`]), and every walk is bounded by it.

use serde_json::Value;

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

fn tokens_match(a: &str, b: &str, tol: Tolerance) -> bool {
    if a == b {
        return true;
    }
    if is_integer(a) && is_integer(b) {
        return false;
    }
    let has_digit = |s: &str| s.bytes().any(|c| c.is_ascii_digit());
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if has_digit(a) && has_digit(b) => tol.close(x, y),
        _ => false,
    }
}

/// Compares a program's stdout with the expected output. `Err` says where they differ.
pub fn stdout_matches(actual: &str, expected: &str, tol: Option<Tolerance>) -> Result<(), String> {
    let norm = |s: &str| s.replace("\r\n", "\n").replace('\r', "\n");
    let (actual, expected) = (norm(actual), norm(expected));
    let (a, e) = (lines(&actual), lines(&expected));
    for (i, (la, le)) in a.iter().zip(e.iter()).enumerate() {
        if la == le {
            continue;
        }
        let ok = tol.is_some_and(|tol| {
            let (ta, te): (Vec<_>, Vec<_>) = (
                la.split_whitespace().collect(),
                le.split_whitespace().collect(),
            );
            ta.len() == te.len() && ta.iter().zip(&te).all(|(x, y)| tokens_match(x, y, tol))
        });
        if !ok {
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
            "expected {} line{}, got {}",
            e.len(),
            if e.len() == 1 { "" } else { "s" },
            a.len()
        ));
    }
    Ok(())
}

/// Most JSON nesting levels of an answer: the harness's own cap ([`crate::sandbox`] values are
/// at most 200 levels deep) times the three JSON levels of its deepest tag (`{"dict": [[k, v]]}`).
pub const MAX_ANSWER_DEPTH: usize = 640;

/// Parses a candidate's answer (see `sandbox/PROTOCOL.md`). Its depth is checked first, so the
/// parse, the comparison and the drop of the value recurse at most [`MAX_ANSWER_DEPTH`] levels.
pub fn parse_answer(text: &str) -> Result<Value, String> {
    if crate::rollout::deeper_than(text.as_bytes(), MAX_ANSWER_DEPTH).is_some() {
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
pub fn value_matches(actual: &Value, expected: &Value, tol: Tolerance) -> Result<(), String> {
    if matches(actual, expected, tol, 0) {
        Ok(())
    } else {
        Err(format!(
            "expected {}, got {}",
            clip_value(&expected.to_string()),
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
    /// Exact decimal digits (optionally signed).
    Int(std::borrow::Cow<'a, str>),
    Float(f64),
    /// A `Fraction` n/d.
    Ratio(&'a Value, &'a Value),
}

fn actual_num(v: &Value) -> Option<Num<'_>> {
    match v {
        Value::Number(n) if n.is_f64() => n.as_f64().map(Num::Float),
        Value::Number(n) => Some(Num::Int(n.to_string().into())),
        Value::Object(o) => match tag(o)? {
            ("int", Value::String(s)) if is_integer(s) => Some(Num::Int(s.as_str().into())),
            ("float", Value::String(s)) => s.parse::<f64>().ok().map(Num::Float),
            ("decimal", Value::String(s)) => s.parse::<f64>().ok().map(Num::Float),
            ("fraction", Value::Array(p)) if p.len() == 2 => Some(Num::Ratio(&p[0], &p[1])),
            _ => None,
        },
        _ => None,
    }
}

fn number_matches(actual: Num<'_>, expected: &serde_json::Number, tol: Tolerance) -> bool {
    match actual {
        Num::Int(digits) => {
            if expected.is_i64() || expected.is_u64() {
                *digits == expected.to_string()
            } else {
                let e = expected.as_f64().unwrap_or(f64::NAN);
                // A big int compared with a float: Python compares exactly; floats are only
                // precise to 2^53, so use the tolerance.
                digits.parse::<f64>().is_ok_and(|a| tol.close(a, e))
            }
        }
        Num::Float(a) => expected.as_f64().is_some_and(|e| tol.close(a, e)),
        Num::Ratio(n, d) => {
            let part = |v: &Value| match actual_num(v) {
                Some(Num::Int(s)) => s.parse::<f64>().ok(),
                _ => None,
            };
            match (part(n), part(d)) {
                (Some(n), Some(d)) if d != 0.0 => {
                    expected.as_f64().is_some_and(|e| tol.close(n / d, e))
                }
                _ => false,
            }
        }
    }
}

/// The JSON spelling of a dict key (what `json.dumps` would write).
fn key_spelling(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        _ => match actual_num(k)? {
            Num::Int(d) => Some(d.into_owned()),
            Num::Float(f) => Some(format!("{f:?}")),
            Num::Ratio(..) => None,
        },
    }
}

/// Sets of at most this many elements are matched element by element, with the float
/// tolerance; larger ones by their exact canonical spelling, sorted (O(n log n)).
const SET_TOLERANCE_LIMIT: usize = 64;

fn set_matches(items: &[Value], expected: &[Value], tol: Tolerance, depth: usize) -> bool {
    if items.len() != expected.len() {
        return false;
    }
    if items.len() <= SET_TOLERANCE_LIMIT {
        let mut used = vec![false; items.len()];
        return expected.iter().all(|y| {
            let found =
                (0..items.len()).find(|&i| !used[i] && matches(&items[i], y, tol, depth + 1));
            if let Some(i) = found {
                used[i] = true;
            }
            found.is_some()
        });
    }
    let spelled = |vs: &[Value]| -> Option<Vec<String>> {
        vs.iter()
            .map(|v| {
                let mut out = String::new();
                spell(v, &mut out, depth).then_some(out)
            })
            .collect()
    };
    let (Some(mut a), Some(mut e)) = (spelled(items), spelled(expected)) else {
        return false;
    };
    a.sort_unstable();
    e.sort_unstable();
    a == e
}

/// Appends the spelling of a value that two values share exactly when they are equal as Python
/// values without tolerance, whichever side (tagged answer or plain expected JSON) they come
/// from: sequences as arrays, dict-likes as objects with sorted keys, sets sorted, integral
/// floats as integers. `false` for what has no spelling (a handle, a NaN).
fn spell(v: &Value, out: &mut String, depth: usize) -> bool {
    if depth > MAX_ANSWER_DEPTH {
        return false;
    }
    let seq = |items: &[Value], out: &mut String, sort: bool| -> bool {
        let mut parts = Vec::with_capacity(items.len());
        for x in items {
            let mut p = String::new();
            if !spell(x, &mut p, depth + 1) {
                return false;
            }
            parts.push(p);
        }
        if sort {
            parts.sort_unstable();
        }
        out.push('[');
        out.push_str(&parts.join(","));
        out.push(']');
        true
    };
    let object = |pairs: Vec<(String, &Value)>, out: &mut String| -> bool {
        let mut parts = Vec::with_capacity(pairs.len());
        for (k, x) in pairs {
            let mut p = format!("{k:?}:");
            if !spell(x, &mut p, depth + 1) {
                return false;
            }
            parts.push(p);
        }
        parts.sort_unstable();
        out.push('{');
        out.push_str(&parts.join(","));
        out.push('}');
        true
    };
    fn tagged_pairs(p: &Value) -> Option<Vec<(String, &Value)>> {
        p.as_array()?
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([k, x]) => key_spelling(k).map(|k| (k, x)),
                _ => None,
            })
            .collect()
    }
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            out.push_str(&v.to_string());
            true
        }
        Value::Array(items) => seq(items, out, false),
        Value::Number(_) => spell_num(actual_num(v), out),
        Value::Object(o) => match tag(o) {
            Some(("int" | "float" | "decimal" | "fraction", _)) => spell_num(actual_num(v), out),
            Some(("tuple", Value::Array(items))) => seq(items, out, false),
            Some(("set" | "frozenset", Value::Array(items))) => seq(items, out, true),
            Some(("deque", Value::Array(p))) if p.len() == 2 => {
                p[1].as_array().is_some_and(|items| seq(items, out, false))
            }
            Some(("namedtuple", Value::Array(p))) if p.len() == 3 => {
                p[2].as_array().is_some_and(|items| seq(items, out, false))
            }
            Some(("dict" | "counter" | "ordereddict", p)) => {
                tagged_pairs(p).is_some_and(|pairs| object(pairs, out))
            }
            Some(("defaultdict" | "dataclass", Value::Array(p))) if p.len() == 2 => {
                tagged_pairs(&p[1]).is_some_and(|pairs| object(pairs, out))
            }
            Some(_) => false,
            // Plain JSON objects (the expected side).
            None => object(o.iter().map(|(k, x)| (k.clone(), x)).collect(), out),
        },
    }
}

fn spell_num(n: Option<Num<'_>>, out: &mut String) -> bool {
    match n {
        Some(Num::Int(d)) => {
            out.push_str(d.trim_start_matches('+'));
            true
        }
        Some(Num::Float(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e18 => {
            out.push_str(&format!("{}", f as i64));
            true
        }
        Some(Num::Float(f)) if f.is_finite() => {
            out.push_str(&format!("{f:?}"));
            true
        }
        _ => false,
    }
}

fn pairs_match(
    pairs: &Value,
    expected: &serde_json::Map<String, Value>,
    tol: Tolerance,
    depth: usize,
) -> bool {
    let Some(pairs) = pairs.as_array() else {
        return false;
    };
    pairs.len() == expected.len()
        && pairs.iter().all(|p| match p.as_array().map(Vec::as_slice) {
            Some([k, v]) => key_spelling(k)
                .and_then(|k| expected.get(&k))
                .is_some_and(|ev| matches(v, ev, tol, depth + 1)),
            _ => false,
        })
}

fn seq_matches(items: &[Value], expected: &[Value], tol: Tolerance, depth: usize) -> bool {
    items.len() == expected.len()
        && items
            .iter()
            .zip(expected)
            .all(|(x, y)| matches(x, y, tol, depth + 1))
}

fn matches(actual: &Value, expected: &Value, tol: Tolerance, depth: usize) -> bool {
    if depth > MAX_ANSWER_DEPTH {
        return false;
    }
    match (actual, expected) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(e)) => a == e,
        (Value::String(a), Value::String(e)) => a == e,
        (Value::Array(a), Value::Array(e)) => seq_matches(a, e, tol, depth),
        (_, Value::Number(n)) => actual_num(actual).is_some_and(|a| number_matches(a, n, tol)),
        (Value::Object(o), Value::Array(e)) => match tag(o) {
            Some(("tuple", Value::Array(items))) => seq_matches(items, e, tol, depth),
            Some(("set" | "frozenset", Value::Array(items))) => set_matches(items, e, tol, depth),
            Some(("deque", Value::Array(p))) if p.len() == 2 => p[1]
                .as_array()
                .is_some_and(|items| seq_matches(items, e, tol, depth)),
            Some(("namedtuple", Value::Array(p))) if p.len() == 3 => p[2]
                .as_array()
                .is_some_and(|items| seq_matches(items, e, tol, depth)),
            _ => false,
        },
        (Value::Object(o), Value::Object(e)) => match tag(o) {
            Some(("dict" | "counter" | "ordereddict", p)) => pairs_match(p, e, tol, depth),
            Some(("defaultdict" | "dataclass", Value::Array(p))) if p.len() == 2 => {
                pairs_match(&p[1], e, tol, depth)
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOL: Tolerance = Tolerance {
        rel: 1e-6,
        abs: 1e-6,
    };

    #[test]
    fn stdio_normalizes_endings_and_trailing_space_but_counts_lines() {
        assert!(stdout_matches("1 2 \r\n3\r\n\n", "1 2\n3\n", None).is_ok());
        let err = stdout_matches("1 2\n", "1 2\n3\n", None).unwrap_err();
        assert!(err.contains("expected 2 lines, got 1"), "{err}");
        assert!(stdout_matches("1 2\n3\n4\n", "1 2\n3\n", None).is_err());
        assert!(stdout_matches("", "0\n", None).is_err());
        assert!(
            stdout_matches(" 1\n", "1\n", None).is_err(),
            "leading space is significant"
        );
    }

    #[test]
    fn stdio_floats_within_tolerance_but_integers_exact() {
        assert!(stdout_matches("0.3333333\n", "0.333333333\n", Some(TOL)).is_ok());
        assert!(stdout_matches("0.33\n", "0.333333333\n", Some(TOL)).is_err());
        assert!(stdout_matches("0.3333333\n", "0.333333333\n", None).is_err());
        assert!(stdout_matches(
            "10000000000000000001\n",
            "10000000000000000000\n",
            Some(TOL)
        )
        .is_err());
        assert!(stdout_matches("2.0\n", "2\n", Some(TOL)).is_ok());
        assert!(stdout_matches("nan\n", "inf\n", Some(TOL)).is_err());
        let err = stdout_matches("YES\n", "NO\n", Some(TOL)).unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn values_compare_canonically() {
        let ok = |c: &str, e: Value| value_matches(&parse_answer(c).unwrap(), &e, TOL).is_ok();
        assert!(ok(r#"{"int":"2"}"#, json!(2.0)));
        assert!(ok("2", json!(2.0)));
        assert!(ok("2.0", json!(2)));
        assert!(ok(r#"{"tuple":[1,"a"]}"#, json!([1, "a"])));
        assert!(ok(r#"{"counter":[["a",2]]}"#, json!({"a": 2})));
        assert!(ok(r#"{"deque":[null,[1,2]]}"#, json!([1, 2])));
        assert!(ok(r#"{"namedtuple":["P",["x","y"],[1,2]]}"#, json!([1, 2])));
        assert!(ok(r#"{"fraction":[1,4]}"#, json!(0.25)));
        assert!(!ok(r#"{"handle":[0,"Weird"]}"#, json!(1)));
        assert!(!ok(r#"{"handle":[0,"Weird"]}"#, json!([])));
        assert!(!ok(r#"{"int":"1x"}"#, json!(1)));
        assert!(ok(r#"{"float":"2.0"}"#, json!(2)));
        assert!(ok(r#"{"float":"0.30000000000000004"}"#, json!(0.3)));
        assert!(!ok(r#"{"float":"0.31"}"#, json!(0.3)));
        assert!(ok(r#"[{"int":"1"},{"int":"2"}]"#, json!([1, 2])));
        assert!(!ok(r#"[{"int":"1"}]"#, json!([1, 2])));
        assert!(ok(
            r#"{"dict":[["b",{"int":"2"}],["a",{"int":"1"}]]}"#,
            json!({"a": 1, "b": 2})
        ));
        assert!(ok(r#"{"dict":[[{"int":"1"},"x"]]}"#, json!({"1": "x"})));
        assert!(ok(r#"{"set":[{"int":"3"},{"int":"1"}]}"#, json!([1, 3])));
        assert!(!ok("true", json!(1)), "bool is not int");
        assert!(!ok(r#"{"int":"1"}"#, json!(true)));
        assert!(ok("null", json!(null)));
        assert!(!ok(r#""2""#, json!(2)));
        assert!(ok(
            r#"{"int":"18446744073709551615"}"#,
            json!(18446744073709551615u64)
        ));
    }

    #[test]
    fn big_ints_beyond_the_str_limit_compare() {
        let digits = format!("1{}", "0".repeat(5000));
        let canon = parse_answer(&format!(r#"{{"int":"{digits}"}}"#)).unwrap();
        // The expected side cannot spell it exactly in JSON numbers without arbitrary precision;
        // a mismatch against a small int is still detected exactly.
        assert!(value_matches(&canon, &json!(10), TOL).is_err());
        assert!(value_matches(
            &parse_answer(r#"{"int":"-12345678901234567890"}"#).unwrap(),
            &json!(-12345678901234567890i128 as f64),
            TOL
        )
        .is_ok());
    }

    #[test]
    fn deep_answers_are_refused_before_parsing_and_deep_ones_within_the_cap_compare() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_answer(&deep).unwrap_err().contains("nested"));
        // 46 dicts deep, as a correct trie: 138 JSON levels, beyond serde_json's default 128.
        let mut text = "null".to_string();
        let mut expected = json!(null);
        for _ in 0..46 {
            text = format!(r#"{{"dict":[["a",{text}]]}}"#);
            expected = json!({ "a": expected });
        }
        assert!(value_matches(&parse_answer(&text).unwrap(), &expected, TOL).is_ok());
    }

    #[test]
    fn large_sets_compare_in_n_log_n() {
        let n = 40_000;
        let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let answer = parse_answer(&format!(r#"{{"set":[{}]}}"#, items.join(","))).unwrap();
        let expected: Vec<i64> = (0..n).rev().collect();
        let start = std::time::Instant::now();
        assert!(value_matches(&answer, &json!(expected), TOL).is_ok());
        let mut wrong = expected.clone();
        wrong[0] = -1;
        assert!(value_matches(&answer, &json!(wrong), TOL).is_err());
        assert!(start.elapsed().as_secs_f64() < 2.0, "{:?}", start.elapsed());
    }
}
