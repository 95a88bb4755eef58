//! APPS, TACO, verl, PRIME: `input_output` (`inputs`, `outputs`, optional `fn_name`) as stdio
//! tests, or call tests of `fn_name`.

use super::fields::{bad, exact_text, get, json_lines, json_of};
use super::Adapted;
use crate::field_error::FieldError;
use crate::json::{Exact, Json};
use crate::rollout::{Compare, TestCase};

/// APPS, TACO, verl and PRIME `input_output` (see the module docs).
pub(super) fn adapt(obj: &Exact, field: &str) -> Result<Adapted, FieldError> {
    if !matches!(obj, Exact::Object(_)) {
        return Err(bad(field, "expected an object"));
    }
    let Some(Exact::Array(inputs)) = get(obj, "inputs") else {
        return Err(bad(field, "`inputs` must be an array"));
    };
    let Some(Exact::Array(outputs)) = get(obj, "outputs") else {
        return Err(bad(field, "`outputs` must be an array"));
    };
    if inputs.len() != outputs.len() {
        return Err(bad(
            field,
            format!("{} inputs but {} outputs", inputs.len(), outputs.len()),
        ));
    }
    let fn_name = match get(obj, "fn_name") {
        Some(Exact::Str(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    let unwrap = Compare {
        unwrap_single: Some(true),
        ..Compare::default()
    };
    let tests = inputs
        .iter()
        .zip(outputs)
        .map(|(i, o)| match fn_name {
            Some(f) => {
                let args = match i {
                    Exact::Str(lines) => json_lines(lines, field)?,
                    Exact::Array(a) => a.iter().map(json_of).collect(),
                    other => vec![json_of(other)],
                };
                let expected = match o {
                    Exact::Str(text) => Json::from_text(text)
                        .map_err(|e| bad(field, format!("an output is {e}")))?,
                    other => json_of(other),
                };
                Ok(TestCase::Call {
                    function: f.to_string(),
                    args,
                    expected,
                    timing: false,
                    compare: Some(unwrap),
                })
            }
            None => Ok(TestCase::Stdio {
                stdin: exact_text(i, "inputs")?,
                stdout: exact_text(o, "outputs")?,
                timing: false,
                compare: None,
                checker: None,
            }),
        })
        .collect::<Result<_, FieldError>>()?;
    Ok(Adapted {
        tests,
        setup: None,
        source: "apps",
        ..Adapted::default()
    })
}
