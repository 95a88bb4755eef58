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
//! The guest sends the value's canonical JSON (see `sandbox/PROTOCOL.md`):
//! `null`, `true`/`false`, strings as JSON strings, `{"int": "<digits>"}` (any size — beyond
//! CPython's 4,300-digit `str` limit too), `{"float": "<repr>"}`, lists and tuples as arrays,
//! `{"dict": [[k, v], …]}`, `{"set": […]}`. Against the expected JSON:
//! ints and floats compare numerically (`2 == 2.0`), floats within the tolerance; tuples and
//! lists are the same; dict order does not matter and keys compare by their JSON spelling
//! (`{1: "a"}` matches `{"1": "a"}`, as `json.dumps` would write it); a set matches an array
//! with the same elements in any order; `bool` only matches `true`/`false` (never `1`).
//! Expected integers beyond 64 bits arrive as JSON floats and are compared as floats.

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

/// Compares a call test's canonical value (JSON from the guest) with the expected value.
pub fn value_matches(canonical: &str, expected: &Value, tol: Tolerance) -> Result<(), String> {
    let actual: Value = serde_json::from_str(canonical)
        .map_err(|e| format!("the harness sent malformed canonical JSON: {e}"))?;
    if matches(&actual, expected, tol, 0) {
        Ok(())
    } else {
        Err(format!(
            "expected {}, got {}",
            clip_value(&expected.to_string()),
            clip_value(&display(&actual))
        ))
    }
}

/// A Python-like rendering of a canonical value, for messages.
fn display(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(display).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => {
            if let Some(Value::String(s)) = o.get("int").or_else(|| o.get("float")) {
                s.clone()
            } else if let Some(Value::Array(pairs)) = o.get("dict") {
                let inner: Vec<String> = pairs
                    .iter()
                    .filter_map(|p| p.as_array())
                    .filter(|p| p.len() == 2)
                    .map(|p| format!("{}: {}", display(&p[0]), display(&p[1])))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            } else if let Some(Value::Array(items)) = o.get("set") {
                format!(
                    "{{{}}}",
                    items.iter().map(display).collect::<Vec<_>>().join(", ")
                )
            } else {
                v.to_string()
            }
        }
        Value::Number(n) => n.to_string(),
    }
}

enum Num<'a> {
    Int(&'a str),
    Float(f64),
}

fn canon_num(o: &serde_json::Map<String, Value>) -> Option<Num<'_>> {
    if o.len() != 1 {
        return None;
    }
    match (o.get("int"), o.get("float")) {
        (Some(Value::String(s)), _) => Some(Num::Int(s)),
        (_, Some(Value::String(s))) => s.parse::<f64>().ok().map(Num::Float),
        _ => None,
    }
}

fn number_matches(actual: Num<'_>, expected: &serde_json::Number, tol: Tolerance) -> bool {
    match actual {
        Num::Int(digits) => {
            if expected.is_i64() || expected.is_u64() {
                digits == expected.to_string()
            } else {
                let e = expected.as_f64().unwrap_or(f64::NAN);
                // A big int compared with a float: Python compares exactly; floats are only
                // precise to 2^53, so use the tolerance.
                digits.parse::<f64>().is_ok_and(|a| tol.close(a, e))
            }
        }
        Num::Float(a) => expected.as_f64().is_some_and(|e| tol.close(a, e)),
    }
}

/// The JSON spelling of a canonical dict key (what `json.dumps` would write).
fn key_spelling(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        Value::Object(o) => match canon_num(o)? {
            Num::Int(d) => Some(d.to_string()),
            Num::Float(f) => Some(format!("{f:?}")),
        },
        _ => None,
    }
}

const MAX_DEPTH: usize = 256;

fn matches(actual: &Value, expected: &Value, tol: Tolerance, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match (actual, expected) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(e)) => a == e,
        (Value::String(a), Value::String(e)) => a == e,
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(x, y)| matches(x, y, tol, depth + 1))
        }
        (Value::Object(o), Value::Number(n)) => {
            canon_num(o).is_some_and(|a| number_matches(a, n, tol))
        }
        (Value::Object(o), Value::Array(e)) => match o.get("set") {
            Some(Value::Array(items)) if o.len() == 1 => {
                if items.len() != e.len() {
                    return false;
                }
                let mut used = vec![false; items.len()];
                e.iter().all(|y| {
                    let found = (0..items.len())
                        .find(|&i| !used[i] && matches(&items[i], y, tol, depth + 1));
                    if let Some(i) = found {
                        used[i] = true;
                    }
                    found.is_some()
                })
            }
            _ => false,
        },
        (Value::Object(o), Value::Object(e)) => match o.get("dict") {
            Some(Value::Array(pairs)) if o.len() == 1 => {
                pairs.len() == e.len()
                    && pairs
                        .iter()
                        .all(|p| match p.as_array().map(|p| p.as_slice()) {
                            Some([k, v]) => key_spelling(k)
                                .and_then(|k| e.get(&k))
                                .is_some_and(|ev| matches(v, ev, tol, depth + 1)),
                            _ => false,
                        })
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
        let ok = |c: &str, e: Value| value_matches(c, &e, TOL).is_ok();
        assert!(ok(r#"{"int":"2"}"#, json!(2.0)));
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
        let canon = format!(r#"{{"int":"{digits}"}}"#);
        // The expected side cannot spell it exactly in JSON numbers without arbitrary precision;
        // a mismatch against a small int is still detected exactly.
        assert!(value_matches(&canon, &json!(10), TOL).is_err());
        assert!(value_matches(
            r#"{"int":"-12345678901234567890"}"#,
            &json!(-12345678901234567890i128 as f64),
            TOL
        )
        .is_ok());
    }
}
