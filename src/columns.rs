//! Trainer-side fields → a [`Rollout`]: the one mapping behind TRL's dataset columns, verl's
//! `ground_truth`/`extra_info` and OpenRLHF's `labels`.
//!
//! A trainer hands verdict a prompt, a completion and whatever its dataset row carries. Those
//! fields become the rest of a rollout, as if they were keys of a JSONL line:
//!
//! - `tests`, `reference`, `setup`, `entry_point`, `problem_id`, `limits` are the rollout's own
//!   fields. `tests` may also be JSON text, or a list of assert statements (strings);
//! - everything else is kept in [`Rollout::extra`], where the dataset adapters
//!   ([`crate::adapters`]) find `test` + `entry_point` (HumanEval), `test_list` (MBPP),
//!   `input_output` or `inputs`/`outputs` (verl/PRIME/APPS), `verification_info` (open-r1),
//!   `public_test_cases` (LiveCodeBench), and a problem's `time_limit` (TACO, CodeContests;
//!   [`crate::adapters::time_limit_ms`]). Their decoding is the adapters' business, not this
//!   module's: a JSON-text column is passed on as text, and the adapters are asked once, so a
//!   field they cannot read is an error here, naming it.
//!
//! [`label_fields`] reads an OpenRLHF label and [`verl_fields`] a verl `ground_truth` and
//! `extra_info` into such fields.

use serde_json::{Map, Value};

use crate::depth::{value_depth, MAX_ROLLOUT_DEPTH};
use crate::field_error::FieldError;
use crate::rollout::Rollout;

/// The fields a trainer may set that are not the rollout's own: `prompt` and `completion` come
/// from the trainer, `id` from the caller.
const GIVEN: [&str; 3] = ["id", "prompt", "completion"];

/// The rollout `id` for `completion` to `prompt`, with the rest of its fields taken from
/// `fields` (see the module docs). `id`, `prompt` and `completion` in `fields` are ignored.
pub fn rollout_from_fields(
    id: &str,
    prompt: &str,
    completion: &str,
    fields: &Map<String, Value>,
) -> Result<Rollout, FieldError> {
    let mut line = Map::new();
    line.insert("id".into(), Value::from(id));
    line.insert("prompt".into(), Value::from(prompt));
    line.insert("completion".into(), Value::from(completion));
    for (key, value) in fields {
        if GIVEN.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        let value = if key == "tests" {
            tests_value(value)?
        } else {
            value.clone()
        };
        line.insert(key.clone(), value);
    }
    let line = Value::Object(line);
    // The row is written out and read back by the one decoder every other path uses; its
    // depth is measured first, as writing a value out recurses.
    let depth = value_depth(&line);
    if depth > MAX_ROLLOUT_DEPTH {
        return Err(FieldError::whole(format!(
            "nested {depth} levels deep, over the limit of {MAX_ROLLOUT_DEPTH} for a rollout"
        )));
    }
    let rollout = Rollout::from_json(&line.to_string())?;
    // Dataset fields that the adapters cannot read are this caller's error, named now rather
    // than as an `invalid_input` score later.
    crate::adapters::tests_for(&rollout)?;
    Ok(rollout)
}

/// `tests` as the rollout's list of test objects: JSON text is decoded, a string in the list
/// is an assert test.
fn tests_value(value: &Value) -> Result<Value, FieldError> {
    let value = match value {
        Value::String(text) => serde_json::from_str(text).map_err(|e| {
            FieldError::new("tests", format!("JSON text that does not decode: {e}"))
        })?,
        other => other.clone(),
    };
    let Value::Array(items) = value else {
        return Err(FieldError::new(
            "tests",
            "must be a list of tests (objects with a `kind`, or assert statements as strings)",
        ));
    };
    Ok(Value::Array(
        items
            .into_iter()
            .map(|t| match t {
                Value::String(code) => serde_json::json!({"kind": "assert", "code": code}),
                other => other,
            })
            .collect(),
    ))
}

/// An OpenRLHF label (`--label_key`) as rollout fields: an object is the rest of a rollout
/// (`{"tests": […]}`, `{"input_output": …}`, `{"verification_info": …}`, …), a list is its
/// `tests`, JSON text is decoded first, and `null` means no tests (format and parse only).
pub fn label_fields(label: &Value) -> Result<Map<String, Value>, FieldError> {
    let decoded;
    let label = match label {
        Value::String(text) => {
            decoded = serde_json::from_str::<Value>(text).map_err(|e| {
                FieldError::new(
                    "",
                    format!(
                        "a string label must be JSON text (an object of rollout fields or a \
                         list of tests): {e}"
                    ),
                )
            })?;
            &decoded
        }
        other => other,
    };
    match label {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map.clone()),
        Value::Array(_) => Ok(Map::from_iter([("tests".to_string(), label.clone())])),
        other => Err(FieldError::new(
            "",
            format!(
                "expected an object of rollout fields or a list of tests, got {}",
                kind_of(other)
            ),
        )),
    }
}

/// verl's `ground_truth` and `extra_info` as rollout fields.
///
/// `extra_info`'s entries come first (an `entry_point`, a `test` or `tests`, `input_output`…);
/// then `ground_truth`, which verl's code datasets fill with the tests:
/// - `{"inputs": […], "outputs": […], "fn_name"?: …}`, as an object or JSON text (PRIME,
///   APPS, TACO, CodeContests): the `input_output` dataset field;
/// - `{"test_cases": […]}` (open-r1 style): `verification_info`;
/// - any other object: more rollout fields;
/// - a list: the rollout's `tests` (test objects or assert statements);
/// - Python text with `def check(` (HumanEval): `test`, with `entry_point` from `extra_info`;
/// - otherwise (a math answer, say) an error: verdict judges code.
pub fn verl_fields(
    ground_truth: &Value,
    extra_info: Option<&Value>,
) -> Result<Map<String, Value>, FieldError> {
    let mut fields = match extra_info {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(FieldError::new(
                "extra_info",
                format!("expected an object, got {}", kind_of(other)),
            ))
        }
    };
    let field = "ground_truth";
    // Arrow writes null where a row keeps its tests elsewhere (in `extra_info`): absent then.
    if ground_truth.is_null() && has_tests(&fields) {
        return Ok(fields);
    }
    let (decoded, text) =
        match ground_truth {
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => (v, Some(text)),
                _ if text.contains("def check(") => {
                    fields.insert("test".into(), Value::from(text.as_str()));
                    return Ok(fields);
                }
                _ => return Err(FieldError::new(
                    field,
                    "text that is neither JSON tests nor a HumanEval `check` function; verdict \
                     judges code against tests (`{\"inputs\": […], \"outputs\": […]}`, a list \
                     of tests, `{\"test_cases\": […]}`)",
                )),
            },
            other => (other.clone(), None),
        };
    match decoded {
        Value::Object(map) if map.contains_key("inputs") || map.contains_key("outputs") => {
            // The adapter decodes JSON text itself: hand it what verl stored.
            let value = match text {
                Some(text) => Value::from(text.as_str()),
                None => Value::Object(map),
            };
            fields.insert("input_output".into(), value);
        }
        Value::Object(map) if map.contains_key("test_cases") && map.len() <= 3 => {
            fields.insert("verification_info".into(), Value::Object(map));
        }
        Value::Object(map) => fields.extend(map),
        Value::Array(items) => {
            fields.insert("tests".into(), Value::Array(items));
        }
        other => {
            return Err(FieldError::new(
                field,
                format!(
                    "expected tests (an object or a list, or JSON text of one), got {}",
                    kind_of(&other)
                ),
            ))
        }
    }
    Ok(fields)
}

/// Whether dataset fields carry tests of their own (any field the adapters read tests from).
fn has_tests(fields: &Map<String, Value>) -> bool {
    [
        "tests",
        "test",
        "test_list",
        "input_output",
        "verification_info",
        "public_test_cases",
        "private_test_cases",
    ]
    .iter()
    .any(|k| fields.get(*k).is_some_and(|v| !v.is_null()))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The completion inside OpenRLHF's `query` (prompt and response as one decoded text): the text
/// after `prompt` where `query` starts with it, else all of `query`.
pub fn response_of<'q>(query: &'q str, prompt: &str) -> &'q str {
    if prompt.is_empty() {
        return query;
    }
    query.strip_prefix(prompt).unwrap_or(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::tests_for;
    use crate::rollout::TestCase;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn columns_become_rollout_fields_and_dataset_fields() {
        let r = rollout_from_fields(
            "r1",
            "Write add.",
            "```python\ndef add(a, b): return a + b\n```",
            &obj(json!({
                "tests": ["assert add(1, 2) == 3", {"kind": "call", "fn": "add", "args": [1, 1], "expected": 2}],
                "reference": "def add(a, b): return a + b",
                "completion": "ignored",
                "source": "mine",
                "nothing": null,
            })),
        )
        .unwrap();
        assert_eq!(r.id, "r1");
        assert_eq!(r.prompt, "Write add.");
        assert!(r.completion.contains("def add"));
        assert_eq!(
            r.tests[0],
            TestCase::Assert {
                code: "assert add(1, 2) == 3".into(),
                timing: false
            }
        );
        assert_eq!(r.tests[1].kind(), "call");
        assert_eq!(r.reference.as_deref(), Some("def add(a, b): return a + b"));
        assert_eq!(r.extra.get("source"), Some(&json!("mine")));
        assert!(!r.extra.contains_key("nothing"));
    }

    #[test]
    fn nulls_that_datasets_fill_in_are_absent() {
        // A row of `datasets.Dataset.from_list` over mixed tests: every test has every field
        // of the column, `null` where it has none; a missing column is `null` too.
        let test = |kind: &str, fields: Value| {
            let mut t = json!({"kind": kind, "code": null, "stdin": null, "stdout": null,
                               "fn": null, "args": null, "expected": null, "timing": null,
                               "compare": null, "checker": null});
            t.as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            t
        };
        let row = obj(json!({
            "tests": [
                test("assert", json!({"code": "assert add(1, 2) == 3"})),
                test("stdio", json!({"stdout": "3\n", "timing": true})),
                test("call", json!({"fn": "add", "args": [1, 2], "expected": 3})),
                test("call", json!({"fn": "nothing"})),
            ],
            "limits": {"time_ms": 1000.0, "memory_mb": null, "output_kb": null},
            "reference": null,
            "test_list": null,
        }));
        let r = rollout_from_fields("d", "", "x", &row).unwrap();
        assert_eq!(r.tests.len(), 4);
        assert!(matches!(
            &r.tests[0],
            TestCase::Assert { timing: false, .. }
        ));
        assert!(matches!(
            &r.tests[1],
            TestCase::Stdio {
                timing: true,
                compare: None,
                ..
            }
        ));
        assert!(
            matches!(&r.tests[3], TestCase::Call { expected, .. } if expected.is_null()),
            "a call test's null `expected` is None: {:?}",
            r.tests[3]
        );
        assert_eq!(r.limits.unwrap().time_ms, Some(1000));
        assert_eq!(r.limits.unwrap().memory_mb, None);
        // The same row as a JSON line (a Python dict, an HTTP body) decodes the same.
        let mut line = row.clone();
        line.insert("id".into(), json!("d"));
        line.insert("completion".into(), json!("x"));
        let decoded = Rollout::from_json(&Value::Object(line).to_string()).unwrap();
        assert_eq!(decoded.tests, r.tests);
        assert_eq!(decoded.limits, r.limits);
        // Zero is not a limit.
        let e = rollout_from_fields("d", "", "x", &obj(json!({"limits": {"output_kb": 0}})))
            .unwrap_err();
        assert_eq!(e.field, "limits.output_kb");
    }

    #[test]
    fn tests_as_json_text_decode_and_bad_ones_name_the_field() {
        let text = r#"[{"kind": "stdio", "stdin": "1\n", "stdout": "1\n"}]"#;
        let r = rollout_from_fields("a", "", "x", &obj(json!({"tests": text}))).unwrap();
        assert_eq!(r.tests[0].kind(), "stdio");
        let e = rollout_from_fields("a", "", "x", &obj(json!({"tests": [{"kind": "stdio"}]})))
            .unwrap_err();
        assert_eq!(e.field, "tests[0].stdout");
        assert_eq!(e.reason, "is required");
        let e = rollout_from_fields("a", "", "x", &obj(json!({"tests": 3}))).unwrap_err();
        assert_eq!(e.field, "tests");
        let e = rollout_from_fields("a", "", "x", &obj(json!({"limits": {"time_ms": "soon"}})))
            .unwrap_err();
        assert_eq!(e.field, "limits.time_ms");
    }

    #[test]
    fn labels_are_objects_lists_or_json_text() {
        assert_eq!(label_fields(&Value::Null).unwrap(), Map::new());
        let f = label_fields(&json!("[\"assert f() == 1\"]")).unwrap();
        assert_eq!(f.get("tests"), Some(&json!(["assert f() == 1"])));
        let f = label_fields(&json!({"input_output": "{}"})).unwrap();
        assert!(f.contains_key("input_output"));
        let e = label_fields(&json!("the answer is 4")).unwrap_err();
        assert!(e.reason.contains("JSON text"), "{e}");
        assert!(label_fields(&json!(4))
            .unwrap_err()
            .reason
            .contains("a number"));
        assert_eq!(e.within("labels[2]").field, "labels[2]");
    }

    #[test]
    fn decoded_rollouts_keep_call_values_exact() {
        let big = format!("1{}", "0".repeat(5735));
        let line = format!(
            r#"{{"id": "x", "completion": "c", "tests": [{{"kind": "call", "fn": "f", "args": [{big}], "expected": {big}}}]}}"#
        );
        let r = Rollout::from_json(&line).unwrap();
        assert!(
            matches!(&r.tests[0], TestCase::Call { expected, args, .. } if expected.text() == big && args[0].text() == big)
        );
        let err = Rollout::from_json(
            r#"{"id": "x", "completion": "c", "tests": [{"kind": "call", "fn": "f"}]}"#,
        )
        .unwrap_err();
        assert!(err.field.starts_with("tests"), "{err:?}");
        assert!(Rollout::from_json("{oops")
            .unwrap_err()
            .reason
            .starts_with("not JSON"));
    }

    #[test]
    fn a_time_limit_column_reaches_the_runs_limits() {
        // A CodeContests row as TRL passes it: `time_limit` a struct column, no `limits`.
        let r = rollout_from_fields(
            "c",
            "Print the sum.",
            "print(3)",
            &obj(json!({
                "inputs": ["1 2\n", "2 2\n"], "outputs": ["3\n", "4\n"],
                "time_limit": {"seconds": 2, "nanos": 0}, "memory_limit_bytes": 256000000
            })),
        )
        .unwrap();
        let adapted = crate::adapters::resolve_tests(&r, true).unwrap();
        assert_eq!(adapted.time_limit_ms, Some(2000));
        let limits = adapted.limits_for(r.limits.as_ref(), adapted.tests.len());
        assert_eq!(limits.and_then(|l| l.time_ms), Some(4000));
        // A `limits` column with its own time wins; one without keeps the data's.
        let own = crate::rollout::Limits {
            time_ms: Some(700),
            ..Default::default()
        };
        assert_eq!(adapted.limits_for(Some(&own), 2), Some(own));
        let memory = crate::rollout::Limits {
            memory_mb: Some(128),
            ..Default::default()
        };
        let both = adapted.limits_for(Some(&memory), 2).unwrap();
        assert_eq!((both.time_ms, both.memory_mb), (Some(4000), Some(128)));
    }

    #[test]
    fn a_null_ground_truth_is_absent_when_extra_info_holds_the_tests() {
        let extra = json!({"test_list": ["assert f() == 1"], "index": 3});
        let fields = verl_fields(&Value::Null, Some(&extra)).unwrap();
        assert_eq!(fields["test_list"], json!(["assert f() == 1"]));
        // With no tests anywhere, a null ground truth is still named as the problem.
        let err = verl_fields(&Value::Null, Some(&json!({"index": 3}))).unwrap_err();
        assert!(err.to_string().contains("ground_truth"), "{err}");
    }

    #[test]
    fn verl_ground_truth_reaches_the_adapters() {
        let gt = json!("{\"inputs\": [\"1 2\\n\"], \"outputs\": [\"3\\n\"]}");
        let fields = verl_fields(&gt, Some(&json!({"split": "train", "index": 3}))).unwrap();
        assert_eq!(fields.get("input_output"), Some(&gt));
        let r = rollout_from_fields("v", "", "print(3)", &fields).unwrap();
        let adapted = tests_for(&r).unwrap();
        assert_eq!(adapted.source, "apps");
        assert!(matches!(&adapted.tests[0], TestCase::Stdio { stdin, .. } if stdin == "1 2\n"));

        let fields = verl_fields(
            &json!({"inputs": [[1, 2]], "outputs": [3], "fn_name": "add"}),
            None,
        )
        .unwrap();
        let r = rollout_from_fields("v", "", "x", &fields).unwrap();
        assert_eq!(tests_for(&r).unwrap().tests[0].kind(), "call");

        let fields = verl_fields(
            &json!("def check(candidate):\n    assert candidate(1) == 2\n"),
            Some(&json!({"entry_point": "inc"})),
        )
        .unwrap();
        let r = rollout_from_fields("v", "", "x", &fields).unwrap();
        assert_eq!(tests_for(&r).unwrap().source, "humaneval");

        let fields = verl_fields(
            &json!({"test_cases": [{"input": "2\n", "output": "4\n", "type": "stdin_stdout"}]}),
            None,
        )
        .unwrap();
        assert!(fields.contains_key("verification_info"));

        let bad = verl_fields(&json!({"inputs": [[1], [2]], "outputs": [1]}), None).unwrap();
        let e = rollout_from_fields("v", "", "x", &bad).unwrap_err();
        assert_eq!(e.field, "input_output");

        let e = verl_fields(&json!("42"), None).unwrap_err();
        assert_eq!(e.field, "ground_truth");
        let e = verl_fields(&json!("x"), Some(&json!([1]))).unwrap_err();
        assert_eq!(e.field, "extra_info");
    }

    #[test]
    fn rollouts_decode_with_the_field_named() {
        let r = Rollout::from_json(r#"{"id": "a", "completion": "x"}"#).unwrap();
        assert_eq!(r.id, "a");
        let e =
            Rollout::from_json(r#"{"id": "a", "completion": "x", "limits": {"memory_mb": "big"}}"#)
                .unwrap_err();
        assert_eq!(e.field, "limits.memory_mb");
        assert_eq!(
            Rollout::from_json(r#"{"id": "", "completion": "x"}"#)
                .unwrap_err()
                .field,
            "id"
        );
        assert!(Rollout::from_json("{")
            .unwrap_err()
            .reason
            .starts_with("not JSON"));
    }

    #[test]
    fn deep_fields_are_refused_without_recursion() {
        let mut v = json!(1);
        for _ in 0..150 {
            v = json!([v]);
        }
        let e = rollout_from_fields("d", "", "x", &obj(json!({"deep": v}))).unwrap_err();
        assert!(e.reason.contains("limit of 100"), "{e}");
    }

    #[test]
    fn the_response_is_the_query_after_its_prompt() {
        assert_eq!(response_of("Q: add\nA: def f", "Q: add\n"), "A: def f");
        assert_eq!(response_of("other", "Q"), "other");
        assert_eq!(response_of("all", ""), "all");
    }
}
