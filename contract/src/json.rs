//! JSON values read digit for digit: a call test's `args` and `expected`.
//!
//! serde_json reads an integer beyond 64 bits as an `f64` (and one beyond `f64`'s range not at
//! all), so an expected `3**50` would be compared as a float. A [`Json`] keeps the value's JSON
//! text exactly as it arrived; [`Json::exact`] reads that text into an [`Exact`] tree whose
//! integers are their decimal digits, of any length. Reading is one pass with an explicit stack
//! (the [struson] streaming reader): no recursion on the input's depth, no big-integer
//! arithmetic, linear in the text's length.
//!
//! Why not serde_json's `arbitrary_precision` feature: it changes every `serde_json::Value` in
//! the crate (numbers become strings compared by spelling, `1.0 != 1.00`), numbers serialize
//! as a private map through any serializer that is not serde_json's (insta snapshots, TOML),
//! and floats read through serde's buffering (`flatten`, internally tagged enums) fail. See
//! ARCHITECTURE.md.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use struson::reader::{JsonReader, JsonStreamReader, ReaderSettings, ValueType};

use crate::depth::MAX_VALUE_DEPTH;

/// A JSON value kept as its exact text (validated JSON).
///
/// Deserializing one needs serde_json's own deserializer (it is a [`RawValue`]): rollouts are
/// read that way (see [`Rollout::from_json`](crate::Rollout::from_json)).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Json(Box<RawValue>);

impl Json {
    /// Validates JSON text and keeps it as it is (surrounding whitespace trimmed).
    pub fn from_text(text: &str) -> Result<Json, String> {
        let raw =
            RawValue::from_string(text.trim().to_string()).map_err(|e| format!("not JSON: {e}"))?;
        let json = Json(raw);
        json.exact()?;
        Ok(json)
    }

    /// The JSON text, exactly as it arrived.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// Whether the value is JSON `null` (Python's `None`).
    pub fn is_null(&self) -> bool {
        self.text() == "null"
    }

    /// The value with exact integers. Fails only on nesting beyond [`MAX_VALUE_DEPTH`].
    pub fn exact(&self) -> Result<Exact, String> {
        Exact::parse(self.text())
    }

    /// The value as a `serde_json::Value`: integers beyond 64 bits become floats (or fail
    /// beyond `f64`'s range). For display and for code that does not compare.
    pub fn to_value(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(self.text()).map_err(|e| e.to_string())
    }
}

impl From<serde_json::Value> for Json {
    fn from(v: serde_json::Value) -> Json {
        Json(serde_json::value::to_raw_value(&v).expect("a JSON value serializes"))
    }
}

impl From<&serde_json::Value> for Json {
    fn from(v: &serde_json::Value) -> Json {
        Json(serde_json::value::to_raw_value(v).expect("a JSON value serializes"))
    }
}

impl PartialEq for Json {
    /// Equal when the values are the same JSON (not merely the same spelling).
    fn eq(&self, other: &Json) -> bool {
        self.text() == other.text()
            || matches!((self.exact(), other.exact()), (Ok(a), Ok(b)) if a == b)
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Json({})", self.text())
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// A JSON value whose integers are exact.
#[derive(Debug, Clone, PartialEq)]
pub enum Exact {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer literal (no fraction, no exponent): its digits, `-` first when negative, no
    /// leading zeros (`-0` is `0`).
    Int(String),
    /// A literal with a fraction or an exponent (`2.0`, `1e3`); `1e400` is infinite.
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Exact>),
    /// An object, in order; a key written twice keeps its last value (as Python's `json`).
    Object(Vec<(String, Exact)>),
}

/// An open array or object while reading (an object with the position of each key, so a
/// repeated key is found in O(1)).
enum Open {
    Array(Vec<Exact>),
    Object(Vec<(String, Exact)>, String, HashMap<String, usize>),
}

impl Exact {
    /// Reads JSON text (see the module docs).
    pub fn parse(text: &str) -> Result<Exact, String> {
        let settings = ReaderSettings {
            max_nesting_depth: Some(MAX_VALUE_DEPTH),
            // Numbers are kept as digits, never converted to big integers: any size is fine.
            restrict_number_values: false,
            track_path: false,
            ..ReaderSettings::default()
        };
        let mut r = JsonStreamReader::new_custom(text.as_bytes(), settings);
        let err = |e: struson::reader::ReaderError| format!("not JSON: {e}");
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // The next complete value, or an opened container (then continue inside it).
            let mut done = match stack.last_mut() {
                Some(Open::Array(_)) if !r.has_next().map_err(err)? => {
                    r.end_array().map_err(err)?;
                    match stack.pop() {
                        Some(Open::Array(items)) => Some(Exact::Array(items)),
                        _ => unreachable!("the top is an array"),
                    }
                }
                Some(Open::Object(..)) if !r.has_next().map_err(err)? => {
                    r.end_object().map_err(err)?;
                    match stack.pop() {
                        Some(Open::Object(pairs, ..)) => Some(Exact::Object(pairs)),
                        _ => unreachable!("the top is an object"),
                    }
                }
                top => {
                    if let Some(Open::Object(_, key, _)) = top {
                        *key = r.next_name_owned().map_err(err)?;
                    }
                    match r.peek().map_err(err)? {
                        ValueType::Array => {
                            r.begin_array().map_err(err)?;
                            stack.push(Open::Array(Vec::new()));
                            None
                        }
                        ValueType::Object => {
                            r.begin_object().map_err(err)?;
                            stack.push(Open::Object(Vec::new(), String::new(), HashMap::new()));
                            None
                        }
                        ValueType::String => Some(Exact::Str(r.next_string().map_err(err)?)),
                        ValueType::Boolean => Some(Exact::Bool(r.next_bool().map_err(err)?)),
                        ValueType::Null => {
                            r.next_null().map_err(err)?;
                            Some(Exact::Null)
                        }
                        ValueType::Number => Some(number(r.next_number_as_str().map_err(err)?)),
                    }
                }
            };
            // Hand the finished value to its container (or return it at the top).
            while let Some(v) = done.take() {
                match stack.last_mut() {
                    None => {
                        r.consume_trailing_whitespace().map_err(err)?;
                        return Ok(v);
                    }
                    Some(Open::Array(items)) => items.push(v),
                    Some(Open::Object(pairs, key, index)) => {
                        let key = std::mem::take(key);
                        match index.get(&key) {
                            Some(&i) => pairs[i].1 = v,
                            None => {
                                index.insert(key.clone(), pairs.len());
                                pairs.push((key, v));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes the value as JSON text; integers as their digits.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_tagged(&mut out, false);
        out
    }

    /// Writes the value in the tagged form the sandbox harness decodes (`sandbox/PROTOCOL.md`,
    /// "What crosses"): objects as `{"dict": [[k, v], …]}`, integers of 2^53 and beyond as
    /// `{"int": "<digits>"}`. With `tagged` false, plain JSON. An explicit stack: the value's
    /// depth is its sender's.
    pub fn write_tagged(&self, out: &mut String, tagged: bool) {
        enum Step<'v> {
            Value(&'v Exact),
            Text(&'static str),
            Key(&'v str),
        }
        let quote = |s: &str, out: &mut String| {
            out.push_str(&serde_json::Value::String(s.to_string()).to_string())
        };
        let mut stack = vec![Step::Value(self)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Text(t) => out.push_str(t),
                Step::Key(k) => {
                    if tagged {
                        out.push('[');
                        quote(k, out);
                        out.push(',');
                    } else {
                        quote(k, out);
                        out.push(':');
                    }
                }
                Step::Value(Exact::Array(items)) => {
                    out.push('[');
                    stack.push(Step::Text("]"));
                    for (i, x) in items.iter().enumerate().rev() {
                        stack.push(Step::Value(x));
                        if i > 0 {
                            stack.push(Step::Text(","));
                        }
                    }
                }
                Step::Value(Exact::Object(pairs)) => {
                    out.push_str(if tagged { "{\"dict\":[" } else { "{" });
                    stack.push(Step::Text(if tagged { "]}" } else { "}" }));
                    for (i, (k, x)) in pairs.iter().enumerate().rev() {
                        if tagged {
                            stack.push(Step::Text("]"));
                        }
                        stack.push(Step::Value(x));
                        stack.push(Step::Key(k));
                        if i > 0 {
                            stack.push(Step::Text(","));
                        }
                    }
                }
                Step::Value(Exact::Null) => out.push_str("null"),
                Step::Value(Exact::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                Step::Value(Exact::Str(s)) => quote(s, out),
                Step::Value(Exact::Int(d)) => {
                    if tagged && d.trim_start_matches('-').len() > 15 {
                        out.push_str("{\"int\":\"");
                        out.push_str(d);
                        out.push_str("\"}");
                    } else {
                        out.push_str(d);
                    }
                }
                Step::Value(Exact::Float(f)) => {
                    if f.is_finite() {
                        out.push_str(&format!("{f:?}"));
                    } else if tagged {
                        out.push_str(if *f > 0.0 {
                            "{\"float\":\"inf\"}"
                        } else {
                            "{\"float\":\"-inf\"}"
                        });
                    } else {
                        // Plain JSON has no infinity: the literal that reads back as one.
                        out.push_str(if *f > 0.0 { "1e999" } else { "-1e999" });
                    }
                }
            }
        }
    }
}

/// A JSON number literal (already validated by the reader).
fn number(lit: &str) -> Exact {
    if lit.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        // Rust's float parser is exact and linear in the literal's length.
        return Exact::Float(lit.parse().unwrap_or(f64::NAN));
    }
    Exact::Int(normalize_int(lit))
}

/// An integer's digits without a `+`, leading zeros or a negative zero.
pub fn normalize_int(digits: &str) -> String {
    let (neg, body) = match digits.as_bytes().first() {
        Some(b'-') => (true, &digits[1..]),
        Some(b'+') => (false, &digits[1..]),
        _ => (false, digits),
    };
    let body = body.trim_start_matches('0');
    if body.is_empty() {
        "0".to_string()
    } else if neg {
        format!("-{body}")
    } else {
        body.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_any_size_are_kept_digit_for_digit() {
        let digits = format!("7{}", "1".repeat(5735));
        let j = Json::from_text(&format!(
            "[{digits}, -0, 2.0, 1e400, {{\"a\": 1, \"a\": 2}}]"
        ))
        .unwrap();
        let Exact::Array(items) = j.exact().unwrap() else {
            panic!()
        };
        assert_eq!(items[0], Exact::Int(digits.clone()));
        assert_eq!(items[1], Exact::Int("0".into()));
        assert_eq!(items[2], Exact::Float(2.0));
        assert_eq!(items[3], Exact::Float(f64::INFINITY));
        assert_eq!(
            items[4],
            Exact::Object(vec![("a".into(), Exact::Int("2".into()))])
        );
        assert!(j.text().contains(&digits), "the text is kept as it came");
    }

    #[test]
    fn tagged_form_tags_big_ints_and_dicts() {
        let e = Exact::parse(r#"{"k": [12345678901234567890, 3, "x"]}"#).unwrap();
        let mut out = String::new();
        e.write_tagged(&mut out, true);
        assert_eq!(
            out,
            r#"{"dict":[["k",[{"int":"12345678901234567890"},3,"x"]]]}"#
        );
        assert_eq!(e.to_json(), r#"{"k":[12345678901234567890,3,"x"]}"#);
    }

    #[test]
    fn deep_and_malformed_text_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Exact::parse(&deep).unwrap_err().contains("nesting"));
        assert!(Exact::parse("[1,").is_err());
        assert!(Exact::parse("1 2").is_err());
        assert!(Json::from_text("{oops").is_err());
    }

    #[test]
    fn an_object_with_many_keys_reads_in_linear_time() {
        let keys: Vec<String> = (0..100_000).map(|i| format!("\"k{i}\": {i}")).collect();
        let start = std::time::Instant::now();
        let e = Exact::parse(&format!("{{{}, \"k7\": -1}}", keys.join(","))).unwrap();
        let Exact::Object(pairs) = e else { panic!() };
        assert_eq!(pairs.len(), 100_000);
        assert_eq!(pairs[7].1, Exact::Int("-1".into()));
        assert!(start.elapsed().as_secs_f64() < 3.0, "{:?}", start.elapsed());
    }

    #[test]
    fn a_million_digit_number_reads_in_linear_time() {
        let text = "9".repeat(1_000_000);
        let start = std::time::Instant::now();
        let e = Exact::parse(&text).unwrap();
        assert!(matches!(e, Exact::Int(d) if d.len() == 1_000_000));
        assert!(start.elapsed().as_secs_f64() < 2.0, "{:?}", start.elapsed());
    }
}
