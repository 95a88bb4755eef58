//! Dataset adapters: read tests from the fields common datasets ship (kept in
//! [`Rollout::extra`]) so they score without conversion scripts.
//!
//! Used only when a rollout's own `tests` is empty; the first adapter whose fields are present
//! wins, in this order:
//!
//! | dataset style | fields read | becomes |
//! |---|---|---|
//! | HumanEval | `test` (defines `check(candidate)`) + `entry_point` (the rollout's, or in `extra`) | one `assert` test: `test` followed by `check(<entry_point>)` |
//! | MBPP | `test_list` (assert statements), optional `test_setup_code` | one `assert` test per statement; `test_setup_code` is prepended to each |
//! | verl / PRIME / APPS / TACO | `inputs` + `outputs` (+ `fn_name`), top level or inside `input_output` (an object or a JSON string) | with `fn_name`: `call` tests, `fn(*inputs[i]) == outputs[i]`; without: `stdio` tests, stdin `inputs[i]`, stdout `outputs[i]` (lists of lines are joined with `\n`) |
//! | open-r1 | `verification_info.test_cases[]` (object or JSON string) with `input`, `output`, `type` | `type` `stdin_stdout` (or absent) → `stdio`; `function_call` with `fn_name` → `call` with `input` as the JSON argument list |
//! | LiveCodeBench | `public_test_cases` / `private_test_cases` (arrays or JSON strings) of `{input, output, testtype}`, `metadata.func_name` | `testtype: stdin` → `stdio`; `testtype: functional` → `call` of `func_name` with the newline-separated JSON arguments of `input`, expected `json(output)`; a method of `class Solution` is called as `Solution().func_name(...)` |
//!
//! Not supported: LiveCodeBench private tests stored compressed (base64/zlib/pickle) — decode
//! them offline first; the adapter reports them as invalid input rather than skipping silently.

use serde_json::{Map, Value};

use crate::rollout::{Rollout, TestCase};

/// Why a rollout's dataset fields could not be turned into tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dataset field `{field}`: {reason}")]
pub struct AdapterError {
    /// The field at fault.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn bad(field: &str, reason: impl Into<String>) -> AdapterError {
    AdapterError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Tests and extra setup for a rollout, with where they came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Adapted {
    /// The tests to run.
    pub tests: Vec<TestCase>,
    /// Setup code to run after the rollout's own `setup` (e.g. a call shim).
    pub setup: Option<String>,
    /// `tests` (the rollout's own), `humaneval`, `mbpp`, `verl`, `open-r1`, `livecodebench`, or
    /// `none`.
    pub source: &'static str,
}

/// The tests for a rollout: its own `tests`, else those an adapter finds in `extra`.
pub fn tests_for(rollout: &Rollout) -> Result<Adapted, AdapterError> {
    if !rollout.tests.is_empty() {
        return Ok(Adapted {
            tests: rollout.tests.clone(),
            setup: None,
            source: "tests",
        });
    }
    let x = &rollout.extra;
    if let Some(test) = x.get("test").and_then(Value::as_str) {
        let entry = rollout
            .entry_point
            .as_deref()
            .or_else(|| x.get("entry_point").and_then(Value::as_str));
        if let Some(entry) = entry {
            return humaneval(test, entry);
        }
    }
    if let Some(list) = x.get("test_list") {
        return mbpp(list, x.get("test_setup_code").and_then(Value::as_str));
    }
    if let Some(io) = x.get("input_output") {
        let io = json_or_string(io, "input_output")?;
        let obj = io
            .as_object()
            .ok_or_else(|| bad("input_output", "expected an object"))?;
        return verl(obj, "input_output");
    }
    if x.contains_key("inputs") && x.contains_key("outputs") {
        return verl(x, "inputs");
    }
    if let Some(info) = x.get("verification_info") {
        return open_r1(&json_or_string(info, "verification_info")?);
    }
    if x.contains_key("public_test_cases") || x.contains_key("private_test_cases") {
        return livecodebench(x);
    }
    Ok(Adapted {
        tests: Vec::new(),
        setup: None,
        source: "none",
    })
}

fn json_or_string(v: &Value, field: &str) -> Result<Value, AdapterError> {
    match v {
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| bad(field, format!("not JSON: {e}")))
        }
        other => Ok(other.clone()),
    }
}

fn humaneval(test: &str, entry: &str) -> Result<Adapted, AdapterError> {
    if !is_identifier(entry) {
        return Err(bad(
            "entry_point",
            format!("{entry:?} is not a Python identifier"),
        ));
    }
    Ok(Adapted {
        tests: vec![TestCase::Assert {
            code: format!("{test}\n\ncheck({entry})\n"),
            timing: false,
        }],
        setup: None,
        source: "humaneval",
    })
}

fn mbpp(list: &Value, setup: Option<&str>) -> Result<Adapted, AdapterError> {
    let items = list
        .as_array()
        .ok_or_else(|| bad("test_list", "expected an array of assert statements"))?;
    let prefix = setup
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!("{s}\n"));
    let tests = items
        .iter()
        .map(|t| {
            t.as_str()
                .map(|code| TestCase::Assert {
                    code: format!("{}{code}\n", prefix.as_deref().unwrap_or("")),
                    timing: false,
                })
                .ok_or_else(|| bad("test_list", "every entry must be a string"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Adapted {
        tests,
        setup: None,
        source: "mbpp",
    })
}

fn text(v: &Value, field: &str) -> Result<String, AdapterError> {
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

fn verl(obj: &Map<String, Value>, field: &str) -> Result<Adapted, AdapterError> {
    let inputs = obj
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(field, "`inputs` must be an array"))?;
    let outputs = obj
        .get("outputs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(field, "`outputs` must be an array"))?;
    if inputs.len() != outputs.len() {
        return Err(bad(
            field,
            format!("{} inputs but {} outputs", inputs.len(), outputs.len()),
        ));
    }
    let fn_name = obj
        .get("fn_name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let tests = inputs
        .iter()
        .zip(outputs)
        .map(|(i, o)| match fn_name {
            Some(f) => Ok(TestCase::Call {
                function: f.to_string(),
                args: match i {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                },
                expected: o.clone(),
                timing: false,
            }),
            None => Ok(TestCase::Stdio {
                stdin: text(i, "inputs")?,
                stdout: text(o, "outputs")?,
                timing: false,
            }),
        })
        .collect::<Result<_, AdapterError>>()?;
    Ok(Adapted {
        tests,
        setup: None,
        source: "verl",
    })
}

fn open_r1(info: &Value) -> Result<Adapted, AdapterError> {
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
                }),
                "function_call" | "call" => {
                    let f = c
                        .get("fn_name")
                        .and_then(Value::as_str)
                        .or(fn_name)
                        .ok_or_else(|| {
                            bad("verification_info", "a function_call case needs `fn_name`")
                        })?;
                    let args = match json_or_string(input, "input")? {
                        Value::Array(a) => a,
                        other => vec![other],
                    };
                    Ok(TestCase::Call {
                        function: f.to_string(),
                        args,
                        expected: json_or_string(output, "output")?,
                        timing: false,
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
    })
}

/// The name of the call shim LiveCodeBench functional tests go through.
pub const LCB_SHIM: &str = "__verdict_lcb_call";

fn livecodebench(x: &Map<String, Value>) -> Result<Adapted, AdapterError> {
    let metadata = match x.get("metadata") {
        Some(m) => json_or_string(m, "metadata")?,
        None => Value::Null,
    };
    let func = metadata.get("func_name").and_then(Value::as_str);
    let mut tests = Vec::new();
    let mut functional = false;
    for field in ["public_test_cases", "private_test_cases"] {
        let Some(v) = x.get(field) else { continue };
        let cases = match json_or_string(v, field) {
            Ok(Value::Array(a)) => a,
            Ok(_) => return Err(bad(field, "expected an array of test cases")),
            Err(_) => {
                return Err(bad(
                    field,
                    "not JSON (compressed LiveCodeBench tests must be decoded first)",
                ))
            }
        };
        for c in cases {
            let input = c
                .get("input")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(field, "`input` must be a string"))?;
            let output = c
                .get("output")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(field, "`output` must be a string"))?;
            match c.get("testtype").and_then(Value::as_str) {
                Some("stdin") | None => tests.push(TestCase::Stdio {
                    stdin: input.to_string(),
                    stdout: output.to_string(),
                    timing: false,
                }),
                Some("functional") => {
                    functional = true;
                    let args = input
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| {
                            serde_json::from_str(l)
                                .map_err(|e| bad(field, format!("argument is not JSON: {e}")))
                        })
                        .collect::<Result<Vec<Value>, _>>()?;
                    let expected = serde_json::from_str(output)
                        .map_err(|e| bad(field, format!("output is not JSON: {e}")))?;
                    tests.push(TestCase::Call {
                        function: LCB_SHIM.to_string(),
                        args,
                        expected,
                        timing: false,
                    });
                }
                Some(other) => return Err(bad(field, format!("unknown testtype {other:?}"))),
            }
        }
    }
    let setup = if functional {
        let f =
            func.ok_or_else(|| bad("metadata", "functional tests need `metadata.func_name`"))?;
        if !is_identifier(f) {
            return Err(bad("metadata", format!("{f:?} is not a Python identifier")));
        }
        Some(format!(
            "def {LCB_SHIM}(*args):\n    if 'Solution' in globals():\n        return Solution().{f}(*args)\n    return {f}(*args)\n"
        ))
    } else {
        None
    };
    Ok(Adapted {
        tests,
        setup,
        source: "livecodebench",
    })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(extra: Value) -> Rollout {
        let mut r: Rollout = serde_json::from_value(json!({"id": "r", "completion": ""})).unwrap();
        r.extra = extra.as_object().unwrap().clone();
        r
    }

    #[test]
    fn humaneval_becomes_one_check_call() {
        let r = rollout(
            json!({"test": "def check(candidate):\n    assert candidate(1) == 2\n", "entry_point": "inc"}),
        );
        let a = tests_for(&r).unwrap();
        assert_eq!(a.source, "humaneval");
        let TestCase::Assert { code, .. } = &a.tests[0] else {
            panic!()
        };
        assert!(code.ends_with("check(inc)\n"));
    }

    #[test]
    fn verl_with_and_without_fn_name() {
        let a = tests_for(&rollout(json!({"input_output": "{\"inputs\": [[1, 2]], \"outputs\": [3], \"fn_name\": \"add\"}"}))).unwrap();
        assert_eq!(
            a.tests[0],
            TestCase::Call {
                function: "add".into(),
                args: vec![json!(1), json!(2)],
                expected: json!(3),
                timing: false
            }
        );
        let a = tests_for(&rollout(json!({"inputs": ["1 2\n"], "outputs": ["3\n"]}))).unwrap();
        assert!(matches!(&a.tests[0], TestCase::Stdio { stdin, .. } if stdin == "1 2\n"));
        assert!(tests_for(&rollout(json!({"inputs": ["1"], "outputs": []}))).is_err());
    }

    #[test]
    fn open_r1_and_livecodebench() {
        let a = tests_for(&rollout(json!({"verification_info": {"language": "python", "test_cases": [{"input": "2\n", "output": "4\n", "type": "stdin_stdout"}]}}))).unwrap();
        assert_eq!(a.source, "open-r1");
        assert!(matches!(&a.tests[0], TestCase::Stdio { stdout, .. } if stdout == "4\n"));
        let a = tests_for(&rollout(json!({
            "public_test_cases": "[{\"input\": \"[1, 2]\\n3\", \"output\": \"[4, 5]\", \"testtype\": \"functional\"}]",
            "metadata": "{\"func_name\": \"addAll\"}"}))).unwrap();
        assert_eq!(
            a.tests[0],
            TestCase::Call {
                function: LCB_SHIM.into(),
                args: vec![json!([1, 2]), json!(3)],
                expected: json!([4, 5]),
                timing: false
            }
        );
        assert!(a.setup.unwrap().contains("Solution().addAll(*args)"));
        let err = tests_for(&rollout(
            json!({"private_test_cases": "eJzLSM3JyQcABiwCFQ=="}),
        ))
        .unwrap_err();
        assert!(err.reason.contains("compressed"), "{err}");
    }

    #[test]
    fn own_tests_win_and_nothing_is_none() {
        let a = tests_for(&rollout(json!({}))).unwrap();
        assert_eq!(a.source, "none");
        assert!(a.tests.is_empty());
        let a = tests_for(&rollout(
            json!({"test_list": ["assert f(1) == 1"], "test_setup_code": "import math"}),
        ))
        .unwrap();
        assert!(
            matches!(&a.tests[0], TestCase::Assert { code, .. } if code.starts_with("import math\n"))
        );
    }
}
