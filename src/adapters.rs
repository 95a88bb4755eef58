//! Dataset adapters: read tests from the fields common datasets ship (kept in
//! [`Rollout::extra`]) so they score without conversion scripts, as the dataset's own harness
//! means them.
//!
//! Used only when a rollout's own `tests` is empty; the first adapter whose fields are present
//! wins, in this order:
//!
//! | dataset style | fields read | becomes |
//! |---|---|---|
//! | HumanEval | `test` (defines `check(candidate)`) + `entry_point` (the rollout's, or in `extra`) | one `assert` test: `test` followed by `check(<entry_point>)` |
//! | MBPP | `test_list` (assert statements), optional `test_setup_code`, `test_imports` (sanitized MBPP) | one `assert` test per statement; the setup code and imports are prepended to each |
//! | APPS / TACO / verl / PRIME | `input_output` (an object or a JSON string), or `inputs` + `outputs` at the top level, or verl's `reward_model.ground_truth` (a JSON string); with `fn_name` for functional problems | without `fn_name`: `stdio` tests, stdin `inputs[i]`, stdout `outputs[i]` (lists of lines joined with `\n`). With `fn_name`: `call` tests; an input that is a **string** holds one JSON value per line, one per argument, and an output string is JSON (verl, PRIME, LiveCodeBench); an input that is an **array** is the argument list (APPS, TACO). Expected values get `unwrap_single`: APPS wraps them in a one-element list and its harness accepts the value or the list |
//! | open-r1 | `verification_info.test_cases[]` (object or JSON string) with `input`, `output`, `type` | `type` `stdin_stdout` (or absent) → `stdio`; `function_call` with `fn_name` → `call` with `input` as the JSON argument list |
//! | LiveCodeBench | `public_test_cases` / `private_test_cases`: arrays, JSON strings, or (private) base64 of zlib of the pickle of a JSON string; `{input, output, testtype}`; `metadata.func_name` | `testtype: stdin` → `stdio`; `testtype: functional` → `call` of `func_name` with the newline-separated JSON arguments of `input`, expected `json(output)`; a method of `class Solution` is called as `Solution().func_name(...)` |
//!
//! Whatever the tests' source, a problem's per-test time limit is read from its `time_limit`
//! field ([`time_limit_ms`]): TACO's text (`"1 second"`, `"2.5 seconds"`, `"1000 ms"`),
//! CodeContests' `{"seconds": 2, "nanos": 500000000}`, or a number of seconds.
//!
//! Values in JSON strings are read exactly (integers of any size, [`Exact`]); a dataset field
//! that is already a JSON object went through `serde_json::Value` when the line was read.
//! The compressed LiveCodeBench tests are decoded without running any pickle code: only the
//! pickle of one `str` (or `bytes`) is accepted, read by [`pickled_string`].

use std::io::Read;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::field_error::FieldError;
use crate::json::{Exact, Json};
use crate::rollout::{Compare, Limits, Rollout, TestCase};

fn bad(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError::new(field, reason)
}

/// Tests and extra setup for a rollout, with where they came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Adapted {
    /// The tests to run.
    pub tests: Vec<TestCase>,
    /// Setup code to run after the rollout's own `setup` (e.g. a call shim).
    pub setup: Option<String>,
    /// `tests` (the rollout's own), `humaneval`, `mbpp`, `apps` (APPS, TACO, verl, PRIME),
    /// `open-r1`, `livecodebench`, or `none`.
    pub source: &'static str,
    /// The problem's time limit per test from its data ([`time_limit_ms`]), in milliseconds;
    /// set by [`crate::verifiers::tests::resolve_tests`].
    pub time_limit_ms: Option<u64>,
    /// The tolerance stated in the problem's text, where tests took it; set by
    /// [`crate::verifiers::tests::resolve_tests`].
    pub tolerance: Option<crate::tolerance::AppliedTolerance>,
}

impl Adapted {
    /// The limits of a run of `tests_run` of these tests: the rollout's own `limits`, with the
    /// time budget of the whole run (`time_ms`) taken from the data's per-test time limit —
    /// that limit times `tests_run` — where the rollout sets none. The sandbox caps it by
    /// `[sandbox] time_ms` as every rollout limit.
    pub fn limits_for(&self, own: Option<&Limits>, tests_run: usize) -> Option<Limits> {
        match (own, self.time_limit_ms) {
            (Some(l), _) if l.time_ms.is_some() => Some(*l),
            (own, Some(per_test)) => Some(Limits {
                time_ms: Some(per_test.saturating_mul(tests_run.max(1) as u64)),
                ..own.copied().unwrap_or_default()
            }),
            (own, None) => own.copied(),
        }
    }
}

/// The tests for a rollout: its own `tests`, else those an adapter finds in `extra`.
pub fn tests_for(rollout: &Rollout) -> Result<Adapted, FieldError> {
    if !rollout.tests.is_empty() {
        return Ok(Adapted {
            tests: rollout.tests.clone(),
            setup: None,
            source: "tests",
            ..Adapted::default()
        });
    }
    let x = &rollout.extra;
    if let Some(test) = dataset_field(x, "test").and_then(Value::as_str) {
        let entry = rollout
            .entry_point
            .as_deref()
            .or_else(|| dataset_field(x, "entry_point").and_then(Value::as_str));
        if let Some(entry) = entry {
            return humaneval(test, entry);
        }
    }
    if let Some(list) = dataset_field(x, "test_list") {
        return mbpp(
            list,
            dataset_field(x, "test_setup_code").and_then(Value::as_str),
            dataset_field(x, "test_imports"),
        );
    }
    if let Some(io) = dataset_field(x, "input_output") {
        return apps(&exact_field(io, "input_output")?, "input_output");
    }
    if dataset_field(x, "inputs").is_some() && dataset_field(x, "outputs").is_some() {
        let mut obj = Vec::new();
        for key in ["inputs", "outputs", "fn_name"] {
            if let Some(v) = dataset_field(x, key) {
                obj.push((key.to_string(), exact_field_value(v)));
            }
        }
        return apps(&Exact::Object(obj), "inputs");
    }
    if let Some(truth) = x
        .get("reward_model")
        .and_then(|m| m.get("ground_truth"))
        .filter(|t| t.is_string() || t.is_object())
    {
        let truth = exact_field(truth, "reward_model.ground_truth")?;
        if get(&truth, "inputs").is_some() {
            return apps(&truth, "reward_model.ground_truth");
        }
    }
    if let Some(info) = dataset_field(x, "verification_info") {
        return open_r1(&json_or_string(info, "verification_info")?);
    }
    if dataset_field(x, "public_test_cases").is_some()
        || dataset_field(x, "private_test_cases").is_some()
    {
        return livecodebench(x);
    }
    Ok(Adapted {
        tests: Vec::new(),
        setup: None,
        source: "none",
        ..Adapted::default()
    })
}

/// A dataset field of `extra`; `null` is no field (a dataset stored as Arrow gives every row
/// every column, `null` where a row has none).
fn dataset_field<'x>(x: &'x Map<String, Value>, key: &str) -> Option<&'x Value> {
    x.get(key).filter(|v| !v.is_null())
}

/// A dataset field as exact JSON: a JSON string is read as the JSON it holds.
fn exact_field(v: &Value, field: &str) -> Result<Exact, FieldError> {
    match v {
        Value::String(s) => Exact::parse(s).map_err(|e| bad(field, e)),
        other => Ok(exact_field_value(other)),
    }
}

/// A value already read as `serde_json::Value`, as exact JSON (its text reads back).
fn exact_field_value(v: &Value) -> Exact {
    Exact::parse(&v.to_string()).unwrap_or(Exact::Null)
}

fn get<'e>(obj: &'e Exact, key: &str) -> Option<&'e Exact> {
    match obj {
        Exact::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn json_of(e: &Exact) -> Json {
    Json::from_text(&e.to_json()).expect("exact JSON reads back")
}

fn json_or_string(v: &Value, field: &str) -> Result<Value, FieldError> {
    match v {
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| bad(field, format!("not JSON: {e}")))
        }
        other => Ok(other.clone()),
    }
}

fn humaneval(test: &str, entry: &str) -> Result<Adapted, FieldError> {
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
        ..Adapted::default()
    })
}

fn mbpp(list: &Value, setup: Option<&str>, imports: Option<&Value>) -> Result<Adapted, FieldError> {
    let items = list
        .as_array()
        .ok_or_else(|| bad("test_list", "expected an array of assert statements"))?;
    let imports = match imports {
        None | Some(Value::Null) => String::new(),
        Some(v) => text(v, "test_imports")?,
    };
    let prefix = [imports.as_str(), setup.unwrap_or("")]
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!("{s}\n"))
        .reduce(|a, b| a + &b);
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
        ..Adapted::default()
    })
}

fn text(v: &Value, field: &str) -> Result<String, FieldError> {
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

fn exact_text(v: &Exact, field: &str) -> Result<String, FieldError> {
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
fn json_lines(input: &str, field: &str) -> Result<Vec<Json>, FieldError> {
    input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Json::from_text(l).map_err(|e| bad(field, format!("an argument is {e}"))))
        .collect()
}

/// APPS, TACO, verl and PRIME `input_output` (see the module docs).
fn apps(obj: &Exact, field: &str) -> Result<Adapted, FieldError> {
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

fn open_r1(info: &Value) -> Result<Adapted, FieldError> {
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

/// The name of the call shim LiveCodeBench functional tests go through.
pub const LCB_SHIM: &str = "__verdict_lcb_call";

/// Most bytes a compressed LiveCodeBench test field may inflate to.
pub const MAX_INFLATED: u64 = 256 << 20;

/// A LiveCodeBench test-case field: an array, the JSON text of one, or LiveCodeBench's
/// compressed form `base64(zlib(pickle(json_text)))`.
fn lcb_cases(v: &Value, field: &str) -> Result<Vec<Value>, FieldError> {
    let text = match v {
        Value::Array(a) => return Ok(a.clone()),
        Value::String(s) => s,
        _ => return Err(bad(field, "expected an array of test cases")),
    };
    let trimmed = text.trim_start();
    let json = if trimmed.starts_with('[') || trimmed.is_empty() {
        text.clone()
    } else {
        decompress_lcb(text).map_err(|e| bad(field, e))?
    };
    match serde_json::from_str::<Value>(&json) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(_) => Err(bad(field, "expected an array of test cases")),
        Err(e) => Err(bad(field, format!("not JSON: {e}"))),
    }
}

/// `json_text` from `base64(zlib(pickle(json_text)))`, inflating at most [`MAX_INFLATED`]
/// bytes and running no pickle code.
pub fn decompress_lcb(text: &str) -> Result<String, String> {
    let packed = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("neither JSON nor base64 ({e})"))?;
    let mut pickle = Vec::new();
    flate2::read::ZlibDecoder::new(packed.as_slice())
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut pickle)
        .map_err(|e| format!("base64, but not zlib data ({e})"))?;
    if pickle.len() as u64 > MAX_INFLATED {
        return Err(format!("inflates to more than {} MiB", MAX_INFLATED >> 20));
    }
    pickled_string(&pickle)
}

/// The string a pickle holds, when it is the pickle of one `str` (or UTF-8 `bytes`), any
/// protocol from 1 to 5; any other pickle is refused. No opcode beyond these is interpreted,
/// so nothing can run: `PROTO`, `FRAME`, one string opcode (`SHORT_BINUNICODE`,
/// `BINUNICODE`, `BINUNICODE8`, `SHORT_BINBYTES`, `BINBYTES`, `BINBYTES8`), an optional
/// memo store (`MEMOIZE`, `BINPUT`, `LONG_BINPUT`), `STOP`, and nothing after it.
pub fn pickled_string(p: &[u8]) -> Result<String, String> {
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= p.len())
            .ok_or("the pickle is cut short")?;
        let s = &p[*at..end];
        *at = end;
        Ok(s)
    };
    let len = |b: &[u8]| -> Result<usize, String> {
        let mut v = 0u64;
        for (i, byte) in b.iter().enumerate() {
            v |= u64::from(*byte) << (8 * i);
        }
        usize::try_from(v).map_err(|_| "a length beyond this machine".to_string())
    };
    // Skips FRAME opcodes (protocol 4+) wherever they stand between opcodes.
    let skip_frames = |at: &mut usize| -> Result<(), String> {
        while p.get(*at) == Some(&0x95) {
            *at += 1;
            take(at, 8)?;
        }
        Ok(())
    };
    if p.first() == Some(&0x80) {
        let proto = take(&mut at, 2)?[1];
        if proto > 5 {
            return Err(format!("pickle protocol {proto} is not known"));
        }
    }
    skip_frames(&mut at)?;
    let op = *take(&mut at, 1)?.first().expect("one byte");
    let (n, text) = match op {
        0x8c => (len(take(&mut at, 1)?)?, true),
        b'X' => (len(take(&mut at, 4)?)?, true),
        0x8d => (len(take(&mut at, 8)?)?, true),
        b'C' => (len(take(&mut at, 1)?)?, false),
        b'B' => (len(take(&mut at, 4)?)?, false),
        0x8e => (len(take(&mut at, 8)?)?, false),
        other => {
            return Err(format!(
                "the pickle is not of one string (opcode 0x{other:02x}); only a pickled str is read"
            ))
        }
    };
    let body = take(&mut at, n)?;
    let s = std::str::from_utf8(body)
        .map_err(|_| {
            format!(
                "the pickled {} is not UTF-8",
                if text { "str" } else { "bytes" }
            )
        })?
        .to_string();
    skip_frames(&mut at)?;
    match p.get(at) {
        Some(0x94) => at += 1,
        Some(b'q') => at += 2,
        Some(b'r') => at += 5,
        _ => {}
    }
    skip_frames(&mut at)?;
    if p.get(at) != Some(&b'.') || at + 1 != p.len() {
        return Err("the pickle holds more than one string".into());
    }
    Ok(s)
}

fn livecodebench(x: &Map<String, Value>) -> Result<Adapted, FieldError> {
    let metadata = match dataset_field(x, "metadata") {
        Some(m) => json_or_string(m, "metadata")?,
        None => Value::Null,
    };
    let func = metadata.get("func_name").and_then(Value::as_str);
    let mut tests = Vec::new();
    let mut functional = false;
    for field in ["public_test_cases", "private_test_cases"] {
        let Some(v) = dataset_field(x, field) else {
            continue;
        };
        for c in lcb_cases(v, field)? {
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
                    compare: None,
                    checker: None,
                }),
                Some("functional") => {
                    functional = true;
                    tests.push(TestCase::Call {
                        function: LCB_SHIM.to_string(),
                        args: json_lines(input, field)?,
                        expected: Json::from_text(output)
                            .map_err(|e| bad(field, format!("an output is {e}")))?,
                        timing: false,
                        compare: None,
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
        ..Adapted::default()
    })
}

/// The most milliseconds a dataset's time limit is read as (a day): past it, it is no limit
/// verdict could honour anyway, and the configured cap applies.
const MAX_TIME_LIMIT_MS: f64 = 86_400_000.0;

/// A problem's time limit per test, in milliseconds, from the dataset field `time_limit`:
///
/// - TACO (and APPS-style scrapes): text, a number and a unit — `"1 second"`, `"2 seconds"`,
///   `"0.5 seconds"`, `"1.5 s"`, `"1000 ms"`, `"2 sec"`, `"3 milliseconds"`; a bare number in
///   text is seconds (`"2"`);
/// - CodeContests: `{"seconds": 2, "nanos": 500000000}` (either part may be absent or null);
/// - a JSON number: seconds.
///
/// Anything else (`null`, `"None"`, `"-"`, text in another shape, a limit of 0 or below) is no
/// time limit; a limit under a millisecond is one millisecond.
pub fn time_limit_ms(x: &Map<String, Value>) -> Option<u64> {
    let seconds = match dataset_field(x, "time_limit")? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => seconds_of_text(s)?,
        Value::Object(o) => {
            let part = |k: &str| match o.get(k) {
                None | Some(Value::Null) => Some(0.0),
                Some(v) => v.as_f64(),
            };
            part("seconds")? + part("nanos")? / 1e9
        }
        _ => return None,
    };
    let ms = seconds * 1000.0;
    (ms.is_finite() && ms > 0.0).then(|| ms.clamp(1.0, MAX_TIME_LIMIT_MS).ceil() as u64)
}

/// `"1 second"`, `"2.5 seconds"`, `"1000 ms"`, `"2"` as seconds.
fn seconds_of_text(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let per_unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" | "msec" | "millisecond" | "milliseconds" => 1e-3,
        _ => return None,
    };
    Some(value * per_unit)
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

    fn call(a: &Adapted, i: usize) -> (&str, Vec<&str>, &str, Option<Compare>) {
        match &a.tests[i] {
            TestCase::Call {
                function,
                args,
                expected,
                compare,
                ..
            } => (
                function.as_str(),
                args.iter().map(Json::text).collect(),
                expected.text(),
                *compare,
            ),
            other => panic!("not a call test: {other:?}"),
        }
    }

    #[test]
    fn humaneval_record_becomes_one_check_call() {
        // openai_humaneval, HumanEval/53 (abridged).
        let r = rollout(json!({
            "task_id": "HumanEval/53",
            "prompt": "\n\ndef add(x: int, y: int):\n    \"\"\"Add two numbers x and y\n    >>> add(2, 3)\n    5\n    \"\"\"\n",
            "canonical_solution": "    return x + y\n",
            "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    import random\n\n    assert candidate(0, 1) == 1\n    assert candidate(1, 0) == 1\n    assert candidate(2, 3) == 5\n",
            "entry_point": "add"
        }));
        let a = tests_for(&r).unwrap();
        assert_eq!(a.source, "humaneval");
        let TestCase::Assert { code, .. } = &a.tests[0] else {
            panic!()
        };
        assert!(code.contains("def check(candidate):"));
        assert!(code.ends_with("check(add)\n"));
        let err = tests_for(&rollout(json!({"test": "x", "entry_point": "a b"}))).unwrap_err();
        assert_eq!(err.field, "entry_point");
    }

    #[test]
    fn mbpp_records_original_and_sanitized() {
        // mbpp (full), task 11 (abridged), and mbpp/sanitized with its `test_imports`.
        let a = tests_for(&rollout(json!({
            "task_id": 11,
            "text": "Write a python function to remove first and last occurrence of a given character from the string.",
            "code": "def remove_Occ(s,ch): ...",
            "test_list": ["assert remove_Occ(\"hello\",\"l\") == \"heo\"", "assert remove_Occ(\"abcda\",\"a\") == \"bcd\""],
            "test_setup_code": "",
            "challenge_test_list": []
        })))
        .unwrap();
        assert_eq!(a.source, "mbpp");
        assert_eq!(a.tests.len(), 2);
        assert!(
            matches!(&a.tests[1], TestCase::Assert { code, .. } if code == "assert remove_Occ(\"abcda\",\"a\") == \"bcd\"\n")
        );
        let a = tests_for(&rollout(json!({
            "source_file": "Benchmark Questions Verification V2.ipynb",
            "task_id": 4,
            "prompt": "Write a function to find the n largest integers from a given list of numbers, returned in descending order.",
            "code": "import heapq as hq\ndef heap_queue_largest(nums,n): ...",
            "test_imports": ["import math"],
            "test_list": ["assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],3)==[85, 75, 65]"]
        })))
        .unwrap();
        assert!(
            matches!(&a.tests[0], TestCase::Assert { code, .. } if code.starts_with("import math\nassert heap_queue_largest("))
        );
        let a = tests_for(&rollout(
            json!({"test_list": ["assert f(1) == 1"], "test_setup_code": "import math"}),
        ))
        .unwrap();
        assert!(
            matches!(&a.tests[0], TestCase::Assert { code, .. } if code.starts_with("import math\n"))
        );
    }

    #[test]
    fn verl_prime_functional_inputs_are_newline_separated_json_arguments() {
        // PRIME / verl `input_output` (a JSON string) with `fn_name`: each input is one JSON
        // value per line, one per argument; each output the JSON of the return value.
        let io = r#"{"fn_name": "maxSubarraySum", "inputs": ["[1, -2, 3]\n2", "[5]\n1"], "outputs": ["3", "5"]}"#;
        let a = tests_for(&rollout(json!({ "input_output": io }))).unwrap();
        assert_eq!(a.source, "apps");
        let (f, args, expected, compare) = call(&a, 0);
        assert_eq!(
            (f, args, expected),
            ("maxSubarraySum", vec!["[1, -2, 3]", "2"], "3")
        );
        assert_eq!(compare.and_then(|c| c.unwrap_single), Some(true));
        // verl's own layout: `reward_model.ground_truth`.
        let a = tests_for(&rollout(json!({
            "data_source": "codecontests",
            "reward_model": {"style": "rule", "ground_truth": io}
        })))
        .unwrap();
        assert_eq!(call(&a, 1).1, vec!["[5]", "1"]);
        // Integers of any size stay exact on both sides.
        let big = format!("1{}", "0".repeat(5735));
        let io = format!(r#"{{"fn_name": "f", "inputs": ["{big}\n7"], "outputs": ["{big}1"]}}"#);
        let a = tests_for(&rollout(json!({ "input_output": io }))).unwrap();
        let (_, args, expected, _) = call(&a, 0);
        assert_eq!(args, vec![big.as_str(), "7"]);
        assert_eq!(expected, format!("{big}1"));
    }

    #[test]
    fn apps_and_taco_records_functional_and_stdio() {
        // APPS / TACO call-based: `inputs[i]` is the argument list, `outputs[i]` the value
        // wrapped in a list.
        let io = r#"{"fn_name": "solve", "inputs": [[1, 2], [[3, 4], "x"]], "outputs": [[3], [[7, "x"]]]}"#;
        let a = tests_for(&rollout(json!({
            "problem_id": 2345, "question": "…", "solutions": "[]", "difficulty": "introductory",
            "input_output": io, "starter_code": "def solve(a, b):\n    "
        })))
        .unwrap();
        let (f, args, expected, compare) = call(&a, 1);
        assert_eq!(
            (f, args, expected),
            ("solve", vec!["[3,4]", "\"x\""], "[[7,\"x\"]]")
        );
        assert_eq!(compare.and_then(|c| c.unwrap_single), Some(true));
        // Standard input: strings, or lists of lines.
        let io = r#"{"inputs": ["3\n1 2 3\n", ["2", "5 5"]], "outputs": ["6\n", ["10"]]}"#;
        let a = tests_for(&rollout(json!({ "input_output": io }))).unwrap();
        assert!(
            matches!(&a.tests[1], TestCase::Stdio { stdin, stdout, .. } if stdin == "2\n5 5" && stdout == "10")
        );
        // Top-level inputs/outputs, as an object.
        let a = tests_for(&rollout(json!({"inputs": ["1 2\n"], "outputs": ["3\n"]}))).unwrap();
        assert!(matches!(&a.tests[0], TestCase::Stdio { stdin, .. } if stdin == "1 2\n"));
        assert!(tests_for(&rollout(json!({"inputs": ["1"], "outputs": []}))).is_err());
        let err = tests_for(&rollout(
            json!({"input_output": r#"{"fn_name": "f", "inputs": ["[1,"], "outputs": ["1"]}"#}),
        ))
        .unwrap_err();
        assert!(err.reason.contains("an argument is not JSON"), "{err}");
    }

    #[test]
    fn open_r1_verification_info_record() {
        // open-r1/verifiable-coding-problems-python.
        let a = tests_for(&rollout(json!({
            "source": "codeforces", "task_type": "verifiable_code", "in_source_id": "1234_A",
            "problem": "…",
            "gold_standard_solution": "```python\nprint(2 * int(input()))\n```",
            "verification_info": {"language": "python", "test_cases": [
                {"fn_name": null, "input": "2\n", "output": "4\n", "type": "stdin_stdout"},
                {"fn_name": null, "input": "10\n", "output": "20\n", "type": "stdin_stdout"}
            ]}
        })))
        .unwrap();
        assert_eq!(a.source, "open-r1");
        assert!(
            matches!(&a.tests[1], TestCase::Stdio { stdin, stdout, .. } if stdin == "10\n" && stdout == "20\n")
        );
        let a = tests_for(&rollout(json!({"verification_info": "{\"test_cases\": [{\"fn_name\": \"f\", \"input\": \"[1, 123456789012345678901234567890]\", \"output\": \"2\", \"type\": \"function_call\"}]}"}))).unwrap();
        assert_eq!(call(&a, 0).1, vec!["1", "123456789012345678901234567890"]);
    }

    /// `base64(zlib(pickle.dumps(json.dumps(cases))))` as LiveCodeBench ships private tests,
    /// made by CPython 3 with protocol 4 (the default) and protocol 2, of
    /// `[{"input": "[1, 2]\n3", "output": "[4, 5]", "testtype": "functional"},
    ///   {"input": "123456789012345678901234567890\n1", "output": "123456789012345678901234567891", "testtype": "functional"}]`.
    const LCB_PRIVATE_P4: &str = "eJxrYJl6gAECevZEVytl5hWUlihZKShFG+ooGMXG5Bkr6Sgo5ZeWwIRNdBRMY0FiJanFJSWVBakg0bTSvOSSzPy8xBylWh0FJFMMjYxNTM3MLSwNsLFi8gxRTcer3BCfrbFT9AAPSjeb";
    const LCB_PRIVATE_P2: &str = "eJxrYIrYw8DAEF2tlJlXUFqiZKWgFG2oo2AUG5NnrKSjoJRfWgITNtFRMI0FiZWkFpeUVBakgkTTSvOSSzLz8xJzlGp1FJBMMTQyNjE1M7ewNMDGiskzRDUdr3JDfLbGFjLoAQARTTXt";
    /// The same cases pickled as a list (not a string): must be refused.
    const LCB_PICKLED_LIST: &str = "eJxrYJk6jQECYqdo1E7R6GHNzCsoLZnSwxFtqKNgFMtlPKWHLb+0BCzGFm2io2AaC5QsSS0uKaksSJ3Sw5VWmpdckpmfl5gzpRRoQAZTj4KhkbGJqZm5haUBNhaX4ZQMlh45vIqAStgy2EtT9QCLji4F";

    #[test]
    fn livecodebench_record_with_public_and_compressed_private_tests() {
        let record = |private: &str| {
            rollout(json!({
                "question_title": "Add all",
                "question_content": "…",
                "platform": "leetcode",
                "question_id": "3000",
                "contest_id": "weekly-contest-1",
                "contest_date": "2023-08-01T00:00:00",
                "starter_code": "class Solution:\n    def addAll(self, nums: List[int], k: int) -> List[int]:\n        ",
                "difficulty": "easy",
                "public_test_cases": "[{\"input\": \"[1, 2]\\n3\", \"output\": \"[4, 5]\", \"testtype\": \"functional\"}]",
                "private_test_cases": private,
                "metadata": "{\"func_name\": \"addAll\"}"
            }))
        };
        for private in [LCB_PRIVATE_P4, LCB_PRIVATE_P2] {
            let a = tests_for(&record(private)).unwrap();
            assert_eq!(a.source, "livecodebench");
            assert_eq!(a.tests.len(), 3);
            let (f, args, expected, _) = call(&a, 0);
            assert_eq!(
                (f, args, expected),
                (LCB_SHIM, vec!["[1, 2]", "3"], "[4, 5]")
            );
            let (_, args, expected, _) = call(&a, 2);
            assert_eq!(args, vec!["123456789012345678901234567890", "1"]);
            assert_eq!(expected, "123456789012345678901234567891");
            assert!(a
                .setup
                .as_deref()
                .unwrap()
                .contains("Solution().addAll(*args)"));
        }
        let err = tests_for(&record(LCB_PICKLED_LIST)).unwrap_err();
        assert!(err.reason.contains("not of one string"), "{err}");
        let err = tests_for(&record("not base64 at all!")).unwrap_err();
        assert!(err.reason.contains("neither JSON nor base64"), "{err}");
        // A stdin problem (AtCoder / Codeforces in LiveCodeBench).
        let a = tests_for(&rollout(json!({
            "platform": "atcoder",
            "public_test_cases": [{"input": "3\n", "output": "6\n", "testtype": "stdin"}],
            "metadata": "{}"
        })))
        .unwrap();
        assert!(matches!(&a.tests[0], TestCase::Stdio { stdout, .. } if stdout == "6\n"));
    }

    #[test]
    fn pickles_other_than_one_string_are_refused_without_running_anything() {
        // pickle.dumps("hi", protocol=0..5) shapes.
        assert_eq!(
            pickled_string(b"\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00\x8c\x02hi\x94.").unwrap(),
            "hi"
        );
        assert_eq!(
            pickled_string(b"\x80\x03X\x02\x00\x00\x00hiq\x00.").unwrap(),
            "hi"
        );
        assert_eq!(pickled_string(b"\x80\x03C\x02hiq\x00.").unwrap(), "hi");
        // os.system("id") via REDUCE, protocol 4 (STACK_GLOBAL of two strings) and 0 (GLOBAL).
        let evil = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
        assert!(pickled_string(evil)
            .unwrap_err()
            .contains("more than one string"));
        let evil0 = b"cposix\nsystem\n(S'id'\ntR.";
        assert!(pickled_string(evil0)
            .unwrap_err()
            .contains("not of one string"));
        // Cut short, lengths past the end, trailing opcodes.
        assert!(pickled_string(b"\x80\x04\x8c\x05hi").is_err());
        assert!(pickled_string(b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xffhi.").is_err());
        assert!(pickled_string(b"\x80\x04\x8c\x02hi\x8c\x02hi.")
            .unwrap_err()
            .contains("more than one"));
        assert!(pickled_string(b"").is_err());
        assert!(pickled_string(b"\x80\x04\x8c\x02\xff\xfe.")
            .unwrap_err()
            .contains("UTF-8"));
    }

    #[test]
    fn a_zlib_bomb_is_refused_at_the_cap() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(MAX_INFLATED >> 20) + 2 {
            z.write_all(&zeros).unwrap();
        }
        let packed = base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap());
        assert!(decompress_lcb(&packed)
            .unwrap_err()
            .contains("more than 256 MiB"));
    }

    #[test]
    fn null_dataset_fields_are_absent() {
        // A mixed HumanEval + MBPP + APPS dataset as Arrow stores it: each row has every column.
        let columns = |row: Value| {
            let mut all = json!({
                "test": null, "entry_point": null, "test_list": null, "test_setup_code": null,
                "test_imports": null, "input_output": null, "inputs": null, "outputs": null,
                "fn_name": null, "verification_info": null, "public_test_cases": null,
                "private_test_cases": null, "metadata": null,
            });
            all.as_object_mut()
                .unwrap()
                .extend(row.as_object().unwrap().clone());
            tests_for(&rollout(all)).unwrap()
        };
        let a = columns(json!({"test_list": ["assert f() == 1"]}));
        assert_eq!((a.source, a.tests.len()), ("mbpp", 1));
        let a = columns(json!({"test": "def check(c): assert c() == 1", "entry_point": "f"}));
        assert_eq!(a.source, "humaneval");
        let a = columns(json!({"inputs": ["1\n"], "outputs": ["1\n"]}));
        assert_eq!((a.source, a.tests.len()), ("apps", 1));
        let a = columns(
            json!({"public_test_cases": [{"input": "1\n", "output": "1\n", "testtype": "stdin"}]}),
        );
        assert_eq!(a.source, "livecodebench");
        let a = columns(json!({}));
        assert_eq!(a.source, "none");
    }

    #[test]
    fn time_limits_of_taco_and_codecontests_records() {
        let limit = |v: Value| time_limit_ms(&rollout(json!({ "time_limit": v })).extra);
        // TACO: text with a unit.
        assert_eq!(limit(json!("1 second")), Some(1000));
        assert_eq!(limit(json!("2 seconds")), Some(2000));
        assert_eq!(limit(json!("0.5 seconds")), Some(500));
        assert_eq!(limit(json!(" 1.5 s ")), Some(1500));
        assert_eq!(limit(json!("1000 ms")), Some(1000));
        assert_eq!(limit(json!("2")), Some(2000));
        // CodeContests: a protobuf Duration.
        assert_eq!(limit(json!({"seconds": 2, "nanos": 0})), Some(2000));
        assert_eq!(limit(json!({"seconds": 1, "nanos": 500000000})), Some(1500));
        assert_eq!(
            limit(json!({"seconds": null, "nanos": 250000000})),
            Some(250)
        );
        // A number of seconds.
        assert_eq!(limit(json!(3)), Some(3000));
        assert_eq!(limit(json!(0.0001)), Some(1));
        // No limit.
        for none in [
            json!(null),
            json!("None"),
            json!("-"),
            json!("1 minute"),
            json!(0),
            json!(-1),
            json!({"seconds": 0, "nanos": 0}),
            json!({"seconds": "x"}),
            json!([1]),
        ] {
            assert_eq!(limit(none.clone()), None, "{none}");
        }
        assert_eq!(time_limit_ms(&Map::new()), None);
    }

    #[test]
    fn own_tests_win_and_nothing_is_none() {
        let a = tests_for(&rollout(json!({}))).unwrap();
        assert_eq!(a.source, "none");
        assert!(a.tests.is_empty());
    }
}
