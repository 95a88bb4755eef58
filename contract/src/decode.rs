//! The one text decoder: JSON text into a typed value, every problem a [`FieldError`] naming
//! the path of the first field at fault. [`Rollout::from_json`] is built on it and is how every
//! path reads a rollout: a JSONL line, an HTTP body, a Python dict, a trainer's dataset row.
//!
//! The order of checks is the same on every path: nesting first, without recursion
//! ([`crate::depth`]); then whether the text is JSON at all, so a syntax error is never blamed
//! on a field; then the fields, through serde_json's own deserializer (no `Value` in between,
//! so a call test's integers stay exact: [`crate::json`]).

use serde::de::DeserializeOwned;

use crate::depth::{check_depth, MAX_ROLLOUT_DEPTH};
use crate::field_error::FieldError;
use crate::rollout::Rollout;

/// Decode JSON text into `T`, naming the path of the first problem. The caller checks the
/// text's depth first (see [`crate::depth`]); [`Rollout::from_json`] does.
pub fn from_text<T: DeserializeOwned>(text: &str) -> Result<T, FieldError> {
    // Malformed JSON is named as such before any field is blamed for it.
    let not_json = |e: serde_json::Error| FieldError::whole(format!("not JSON: {}", placed(&e)));
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(not_json)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end().map_err(not_json)?;
    Ok(value)
}

/// serde_json's message with its position written for a person: `(column 31)` on a one-line
/// text such as a JSONL record, `(line 3, column 4)` otherwise.
fn placed(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let bare = without_position(&message);
    match (e.line(), e.column()) {
        (0, _) => bare.to_string(),
        (1, column) => format!("{bare} (column {column})"),
        (line, column) => format!("{bare} (line {line}, column {column})"),
    }
}

/// serde_json's message without its trailing ` at line L column C`.
fn without_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
}

/// serde's error with its path as the field. serde names a missing field only in its
/// message: it becomes part of the path, and the reason `is required`.
fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let inner = e.into_inner();
    let reason = without_position(&inner.to_string()).to_string();
    let missing = reason
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    match missing {
        Some(name) if path.is_empty() => FieldError::new(name, "is required"),
        Some(name) => FieldError::new(format!("{path}.{name}"), "is required"),
        None => FieldError::new(path, reason),
    }
}

impl Rollout {
    /// Decode one rollout from JSON text: nesting checked first without recursion
    /// ([`MAX_ROLLOUT_DEPTH`]), then JSON syntax, then the fields, the first problem named by
    /// its path (`tests[0].stdout: is required`); a rollout's `id` must not be empty.
    pub fn from_json(text: &str) -> Result<Rollout, FieldError> {
        check_depth(text.as_bytes(), MAX_ROLLOUT_DEPTH, "a rollout")?;
        let rollout: Rollout = from_text(text)?;
        if rollout.id.is_empty() {
            return Err(FieldError::new("id", "is empty"));
        }
        Ok(rollout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> (String, String) {
        let e = Rollout::from_json(text).unwrap_err();
        (e.field, e.reason)
    }

    #[test]
    fn every_problem_names_its_field() {
        assert_eq!(error(r#"{"id": "a", "completion": 5}"#).0, "completion");
        assert_eq!(
            error(r#"{"id": "a", "completion": "x", "tests": [{"kind": "stdio", "stdin": ""}]}"#),
            ("tests[0].stdout".into(), "is required".into())
        );
        assert_eq!(
            error(r#"{"id": "a"}"#),
            ("completion".into(), "is required".into())
        );
        assert_eq!(
            error(r#"{"id": "", "completion": ""}"#),
            ("id".into(), "is empty".into())
        );
        let (field, reason) = error("{not json");
        assert_eq!(field, "");
        assert_eq!(reason, "not JSON: key must be a string (column 2)");
        let (field, reason) = error("{\n  \"id\": \"a\",\n  oops");
        assert_eq!(field, "");
        assert_eq!(reason, "not JSON: key must be a string (line 3, column 3)");
        let (field, reason) = error(r#"{"id": "a", "completion": 42}"#);
        assert_eq!(field, "completion");
        assert_eq!(reason, "invalid type: integer `42`, expected a string");
        let (field, reason) = error(r#"{"id": "a", "completion": "x"} trailing"#);
        assert_eq!(field, "");
        assert!(reason.starts_with("not JSON"), "{reason}");
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let (field, reason) = error(&deep);
        assert_eq!(field, "");
        assert!(reason.contains("the limit for a rollout"), "{reason}");
    }

    #[test]
    fn call_values_stay_exact() {
        let r = Rollout::from_json(
            r#"{"id": "a", "completion": "", "tests": [{"kind": "call", "fn": "f",
                "args": [123456789012345678901234567890], "expected": 1.10}]}"#,
        )
        .unwrap();
        let crate::TestCase::Call { args, expected, .. } = &r.tests[0] else {
            panic!("{:?}", r.tests[0]);
        };
        assert_eq!(args[0].text(), "123456789012345678901234567890");
        assert_eq!(expected.text(), "1.10");
    }
}
