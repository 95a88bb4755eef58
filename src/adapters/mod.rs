//! Dataset adapters: read tests from the fields common datasets ship (kept in
//! [`Rollout::extra`]) so they score without conversion scripts, as the dataset's own harness
//! means them.
//!
//! [`resolve_tests`] is what every verifier that runs tests asks (the `tests` and `generated`
//! steps, timing, test generation): the rollout's own `tests`, else the adapters'. The
//! adapters are used only when a rollout's own `tests` is empty; the first adapter whose fields are present
//! wins, in this order:
//!
//! | dataset style | fields read | becomes |
//! |---|---|---|
//! | BigCodeBench | `test` defining a `unittest.TestCase` class (and no `check`) | one `unittest` test module (the program's names are its globals, as BigCodeBench appends the tests to the solution) |
//! | KodCode | `test` with top-level `def test…` or `class Test…` (and no `check`), importing `from solution import …` | one `pytest` test module |
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

mod apps;
mod fields;
mod humaneval;
mod livecodebench;
mod mbpp;
mod open_r1;
mod suites;
#[cfg(test)]
mod tests;
mod time_limit;

use serde_json::Value;

use crate::field_error::FieldError;
use crate::json::Exact;
use crate::rollout::{Limits, Rollout, TestCase};
use fields::{dataset_field, exact_field, exact_field_value, get, json_or_string};

pub use livecodebench::{decompress_lcb, pickled_string, LCB_SHIM, MAX_INFLATED};
pub use time_limit::time_limit_ms;

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
    /// set by [`resolve_tests`].
    pub time_limit_ms: Option<u64>,
    /// The tolerance stated in the problem's text, where tests took it; set by
    /// [`resolve_tests`].
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

/// The tests a rollout is run against and the setup before them: the rollout's own `tests`, or
/// (with `adapters`) those read from dataset fields; the setup is the rollout's `setup` followed
/// by the adapter's; the rollout's `compare` goes under each test's own, and where neither sets
/// a float tolerance, the one the problem's text states ([`crate::tolerance`]). With
/// `adapters`, the data's per-test time limit ([`time_limit_ms`]) is kept for
/// [`Adapted::limits_for`]. Shared by the verifiers that run tests so all see the
/// same tests.
pub fn resolve_tests(rollout: &Rollout, adapters: bool) -> Result<Adapted, FieldError> {
    let mut adapted = if adapters {
        Adapted {
            time_limit_ms: time_limit_ms(&rollout.extra),
            ..tests_for(rollout)?
        }
    } else {
        Adapted {
            tests: rollout.tests.clone(),
            setup: None,
            source: "tests",
            ..Adapted::default()
        }
    };
    // Only stdio and call tests compare expected values from data.
    let compares_values = adapted
        .tests
        .iter()
        .any(|t| !matches!(t, TestCase::Assert { .. }));
    let stated = compares_values
        .then(|| crate::tolerance::stated_for(rollout))
        .flatten();
    let mut tolerated = 0;
    for test in &mut adapted.tests {
        test.inherit_compare(rollout.compare);
        if let Some((t, _)) = &stated {
            tolerated += usize::from(crate::tolerance::applies(t, test));
        }
    }
    adapted.tolerance = stated.filter(|_| tolerated > 0).map(|(tolerance, from)| {
        crate::tolerance::AppliedTolerance {
            tolerance,
            from,
            tests: tolerated,
        }
    });
    adapted.setup = match (&rollout.setup, adapted.setup.take()) {
        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
        (a, b) => a.clone().or(b),
    };
    Ok(adapted)
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
        if let Some(style) = suites::style_of(test) {
            return Ok(suites::adapt(test, style));
        }
        let entry = rollout
            .entry_point
            .as_deref()
            .or_else(|| dataset_field(x, "entry_point").and_then(Value::as_str));
        if let Some(entry) = entry {
            return humaneval::adapt(test, entry);
        }
    }
    if let Some(list) = dataset_field(x, "test_list") {
        return mbpp::adapt(
            list,
            dataset_field(x, "test_setup_code").and_then(Value::as_str),
            dataset_field(x, "test_imports"),
        );
    }
    if let Some(io) = dataset_field(x, "input_output") {
        return apps::adapt(&exact_field(io, "input_output")?, "input_output");
    }
    if dataset_field(x, "inputs").is_some() && dataset_field(x, "outputs").is_some() {
        let mut obj = Vec::new();
        for key in ["inputs", "outputs", "fn_name"] {
            if let Some(v) = dataset_field(x, key) {
                obj.push((key.to_string(), exact_field_value(v)));
            }
        }
        return apps::adapt(&Exact::Object(obj), "inputs");
    }
    if let Some(truth) = x
        .get("reward_model")
        .and_then(|m| m.get("ground_truth"))
        .filter(|t| t.is_string() || t.is_object())
    {
        let truth = exact_field(truth, "reward_model.ground_truth")?;
        if get(&truth, "inputs").is_some() {
            return apps::adapt(&truth, "reward_model.ground_truth");
        }
    }
    if let Some(info) = dataset_field(x, "verification_info") {
        return open_r1::adapt(&json_or_string(info, "verification_info")?);
    }
    if dataset_field(x, "public_test_cases").is_some()
        || dataset_field(x, "private_test_cases").is_some()
    {
        return livecodebench::adapt(x);
    }
    Ok(Adapted {
        tests: Vec::new(),
        setup: None,
        source: "none",
        ..Adapted::default()
    })
}
