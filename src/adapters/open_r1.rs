//! open-r1: `verification_info.test_cases[]` with `input`, `output` and `type`.

use serde_json::Value;

use super::fields::{bad, exact_field, json_of, text};
use super::Adapted;
use crate::field_error::FieldError;
use crate::json::Exact;
use crate::rollout::TestCase;

pub(super) fn adapt(info: &Value) -> Result<Adapted, FieldError> {
    let cases = info
        .get("test_cases")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("verification_info", "`test_cases` must be an array"))?;
    let fn_name = info.get("fn_name").and_then(Value::as_str);
    let tests = cases
        .iter()
        .map(|c| {
            let kind = c
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("stdin_stdout");
            let input = c
                .get("input")
                .ok_or_else(|| bad("verification_info", "a test case has no `input`"))?;
            let output = c
                .get("output")
                .ok_or_else(|| bad("verification_info", "a test case has no `output`"))?;
            match kind {
                "stdin_stdout" | "stdio" => Ok(TestCase::Stdio {
                    stdin: text(input, "input")?,
                    stdout: text(output, "output")?,
                    timing: false,
                    compare: None,
                    checker: None,
                }),
                "function_call" | "call" => {
                    let f = c
                        .get("fn_name")
                        .and_then(Value::as_str)
                        .or(fn_name)
                        .ok_or_else(|| {
                            bad("verification_info", "a function_call case needs `fn_name`")
                        })?;
                    let args = match exact_field(input, "input")? {
                        Exact::Array(a) => a.iter().map(json_of).collect(),
                        other => vec![json_of(&other)],
                    };
                    Ok(TestCase::Call {
                        function: f.to_string(),
                        args,
                        expected: json_of(&exact_field(output, "output")?),
                        timing: false,
                        compare: None,
                    })
                }
                other => Err(bad(
                    "verification_info",
                    format!("unknown test case type {other:?}"),
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Adapted {
        tests,
        setup: None,
        source: "open-r1",
        ..Adapted::default()
    })
}
