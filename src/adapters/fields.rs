//! Reading dataset fields: `null` is absent, JSON text is the JSON it holds, lines join.

use serde_json::{Map, Value};

use crate::field_error::FieldError;
use crate::json::{Exact, Json};

pub(super) fn bad(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError::new(field, reason)
}

/// A dataset field of `extra`; `null` is no field (a dataset stored as Arrow gives every row
/// every column, `null` where a row has none).
pub(super) fn dataset_field<'x>(x: &'x Map<String, Value>, key: &str) -> Option<&'x Value> {
    x.get(key).filter(|v| !v.is_null())
}

/// A dataset field as exact JSON: a JSON string is read as the JSON it holds.
pub(super) fn exact_field(v: &Value, field: &str) -> Result<Exact, FieldError> {
    match v {
        Value::String(s) => Exact::parse(s).map_err(|e| bad(field, e)),
        other => Ok(exact_field_value(other)),
    }
}

/// A value already read as `serde_json::Value`, as exact JSON (its text reads back).
pub(super) fn exact_field_value(v: &Value) -> Exact {
    Exact::parse(&v.to_string()).unwrap_or(Exact::Null)
}

pub(super) fn get<'e>(obj: &'e Exact, key: &str) -> Option<&'e Exact> {
    match obj {
        Exact::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

pub(super) fn json_of(e: &Exact) -> Json {
    Json::from_text(&e.to_json()).expect("exact JSON reads back")
}

pub(super) fn json_or_string(v: &Value, field: &str) -> Result<Value, FieldError> {
    match v {
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| bad(field, format!("not JSON: {e}")))
        }
        other => Ok(other.clone()),
    }
}

pub(super) fn text(v: &Value, field: &str) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(lines) => lines
            .iter()
            .map(|l| {
                l.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(field, "lines must be strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|ls| ls.join("\n")),
        other => Ok(other.to_string()),
    }
}

pub(super) fn exact_text(v: &Exact, field: &str) -> Result<String, FieldError> {
    match v {
        Exact::Str(s) => Ok(s.clone()),
        Exact::Array(lines) => lines
            .iter()
            .map(|l| match l {
                Exact::Str(s) => Ok(s.clone()),
                _ => Err(bad(field, "lines must be strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|ls| ls.join("\n")),
        other => Ok(other.to_json()),
    }
}

/// The JSON values of a functional input string, one per non-blank line.
pub(super) fn json_lines(input: &str, field: &str) -> Result<Vec<Json>, FieldError> {
    input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Json::from_text(l).map_err(|e| bad(field, format!("an argument is {e}"))))
        .collect()
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}
