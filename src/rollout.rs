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
    /// Fields this format does not define, kept so dataset adapters can read them
    /// (HumanEval `test`, verl `inputs`/`outputs`, …).
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
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

    #[test]
    fn unknown_test_kind_is_an_error() {
        let err = serde_json::from_str::<Rollout>(
            r#"{"id": "a", "completion": "x", "tests": [{"kind": "fuzz"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("fuzz"), "{err}");
    }
}
