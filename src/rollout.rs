//! What comes in: a [`Rollout`] (one model completion for one problem) and its [`TestCase`]s.
//!
//! The JSON shape is the contract shared by the JSONL batch command, the gRPC service and the
//! Python package. It is documented in `README.md` and `schema/rollout.schema.json`.

use serde::{Deserialize, Serialize};

/// One model completion to score, with everything needed to verify it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Caller-chosen identifier, echoed in the [`Score`](crate::Score). Unique within a file.
    pub id: String,
    /// Groups the rollouts of one prompt (a GRPO group). Used by group-relative verifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_id: Option<String>,
    /// The problem as shown to the model.
    #[serde(default)]
    pub prompt: String,
    /// The raw model output: may hold `<think>…</think>`, prose and markdown fences.
    pub completion: String,
    /// Tests the extracted code must pass. Empty means "no tests shipped".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestCase>,
    /// Code run after the solution and before the tests (imports, helpers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// The function the problem asks for, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<String>,
    /// A known-good solution (used by the timing verifier as a baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Per-rollout resource limits; each is capped by the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// The reference answer of a task whose answer is not code (a math result), for the
    /// `match` verifier and plug-ins. JSONL also accepts a number (`"answer": 42`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "answer_text"
    )]
    pub answer: Option<String>,
    /// Fields this format does not define, kept so dataset adapters can read them
    /// (HumanEval `test`, verl `inputs`/`outputs`, …).
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `answer` as text: a string as is, a number as written.
fn answer_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(D::Error::custom("`answer` must be a string or a number")),
    }
}

/// The deepest JSON nesting a rollout may have, counting its own object as level 1 (a call
/// test's `expected` sits at level 4, so its value may nest 96 deep).
///
/// Below serde_json's own limit of 128 on purpose: a rollout accepted here can be re-encoded
/// inside a larger message (the sandbox's worker request wraps its tests) and still decode.
/// A deeper line is refused with an error naming the limit, before serde sees it.
pub const MAX_JSON_DEPTH: usize = 100;

impl Rollout {
    /// Decode one rollout from JSON text (a JSONL line), refusing nesting deeper than
    /// [`MAX_JSON_DEPTH`]. The depth check is one linear pass over the bytes; it never recurses.
    pub fn from_json(text: &str) -> Result<Rollout, serde_json::Error> {
        check_json_depth(text.as_bytes(), MAX_JSON_DEPTH)
            .map_err(<serde_json::Error as serde::de::Error>::custom)?;
        serde_json::from_str(text)
    }
}

/// Where the JSON text `json` first nests arrays and objects more than `max` deep: the byte
/// offset of the bracket that goes deeper, or `None`. One pass, no recursion; brackets inside
/// strings do not count. Text that is not JSON is scanned all the same (decoding it reports
/// the problem).
pub fn deeper_than(json: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Checks that the JSON text `json` nests arrays and objects at most `max` deep; the error says
/// where it went deeper (see [`deeper_than`]).
pub fn check_json_depth(json: &[u8], max: usize) -> Result<(), String> {
    match deeper_than(json, max) {
        None => Ok(()),
        Some(i) => Err(format!(
            "JSON nested deeper than {max} levels (at byte {i}), the limit for a rollout"
        )),
    }
}

/// One test of a rollout's code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TestCase {
    /// Python code run after the solution and `setup`; passes when it raises nothing.
    Assert {
        /// The test code, e.g. `assert add(1, 2) == 3`.
        code: String,
        /// Marks a test whose main purpose is to measure cost (a larger input).
        #[serde(default, skip_serializing_if = "is_false")]
        timing: bool,
    },
    /// The program reads `stdin` and must print `stdout` (compared line by line).
    Stdio {
        /// Standard input fed to the program.
        #[serde(default)]
        stdin: String,
        /// Expected standard output.
        stdout: String,
        /// Marks a test whose main purpose is to measure cost (a larger input).
        #[serde(default, skip_serializing_if = "is_false")]
        timing: bool,
    },
    /// Call function `fn` with JSON `args`; the result is compared with `expected` on the host.
    Call {
        /// Name of the function to call.
        #[serde(rename = "fn")]
        function: String,
        /// Positional arguments, as JSON values.
        #[serde(default)]
        args: Vec<serde_json::Value>,
        /// The expected return value, as JSON.
        expected: serde_json::Value,
        /// Marks a test whose main purpose is to measure cost (a larger input).
        #[serde(default, skip_serializing_if = "is_false")]
        timing: bool,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl TestCase {
    /// The test's kind as written in JSON (`assert`, `stdio`, `call`).
    pub fn kind(&self) -> &'static str {
        match self {
            TestCase::Assert { .. } => "assert",
            TestCase::Stdio { .. } => "stdio",
            TestCase::Call { .. } => "call",
        }
    }

    /// Whether the test is marked as a timing test.
    pub fn is_timing(&self) -> bool {
        match self {
            TestCase::Assert { timing, .. }
            | TestCase::Stdio { timing, .. }
            | TestCase::Call { timing, .. } => *timing,
        }
    }
}

/// Resource limits a rollout may ask for. Each is capped by the configured maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget for the whole sandbox run, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    /// Linear-memory cap for the interpreter, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Cap on captured stdout + stderr, in KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_kb: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let line = r#"{"id": "r-17", "problem_id": "two-sum", "prompt": "p", "completion": "c",
            "tests": [{"kind": "assert", "code": "assert add(1, 2) == 3"},
                      {"kind": "stdio", "stdin": "1 2\n", "stdout": "3\n"},
                      {"kind": "call", "fn": "add", "args": [1, 2], "expected": 3}],
            "setup": "import math", "entry_point": "add", "reference": "def add(a,b): return a+b",
            "limits": {"time_ms": 10000, "memory_mb": 256, "output_kb": 1024}}"#;
        let r: Rollout = serde_json::from_str(line).unwrap();
        assert_eq!(r.id, "r-17");
        assert_eq!(r.tests.len(), 3);
        assert_eq!(r.tests[2].kind(), "call");
        assert!(matches!(&r.tests[2], TestCase::Call { function, .. } if function == "add"));
        assert_eq!(r.limits.unwrap().memory_mb, Some(256));
        assert!(r.extra.is_empty());
    }

    #[test]
    fn unknown_top_level_fields_are_kept_for_adapters() {
        let r: Rollout =
            serde_json::from_str(r#"{"id": "a", "completion": "x", "test": "def check(c): pass"}"#)
                .unwrap();
        assert!(r.extra.contains_key("test"));
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    fn call_test_line(expected: &str) -> String {
        format!(
            r#"{{"id": "d", "completion": "x", "tests": [{{"kind": "call", "fn": "f", "expected": {expected}}}]}}"#
        )
    }

    #[test]
    fn nesting_up_to_the_limit_decodes_and_deeper_is_a_clear_error() {
        // `expected` is at level 4: object, `tests` array, test object, then the value.
        let ok = call_test_line(&nested(MAX_JSON_DEPTH - 3));
        let r = Rollout::from_json(&ok).expect("at the limit");
        assert!(matches!(&r.tests[0], TestCase::Call { expected, .. } if expected.is_array()));

        for depth in [MAX_JSON_DEPTH - 2, 200, 100_000] {
            let err = Rollout::from_json(&call_test_line(&nested(depth))).unwrap_err();
            assert!(
                err.to_string().contains("nested deeper than 100 levels"),
                "{depth}: {err}"
            );
        }
    }

    #[test]
    fn brackets_in_strings_do_not_count_as_nesting() {
        let deep_text = format!("\"{}\\\"{}\"", "[".repeat(500), "{".repeat(500));
        let line = call_test_line(&deep_text);
        let r = Rollout::from_json(&line).expect("brackets inside a string");
        assert!(matches!(&r.tests[0], TestCase::Call { expected, .. } if expected.is_string()));
        assert_eq!(check_json_depth(b"[[]]", 2), Ok(()));
        assert!(check_json_depth(b"[[[]]]", 2).is_err());
        // Not JSON: left to the decoder.
        assert_eq!(check_json_depth(b"]]]]", 2), Ok(()));
    }

    #[test]
    fn unknown_test_kind_is_an_error() {
        let err = serde_json::from_str::<Rollout>(
            r#"{"id": "a", "completion": "x", "tests": [{"kind": "fuzz"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("fuzz"), "{err}");
    }
}
