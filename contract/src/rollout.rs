//! What comes in: a [`Rollout`] (one model completion for one problem) and its [`TestCase`]s.
//!
//! The JSON shape is the contract shared by the JSONL batch command, the gRPC service and the
//! Python package. It is documented in `README.md` and `schema/rollout.schema.json`.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use crate::json::Json;

/// One model completion to score, with everything needed to verify it.
///
/// Read with serde_json's own deserializer ([`Rollout::from_json`], `serde_json::from_str`,
/// `from_value`): call tests keep their values' exact text.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
    /// Code both sides see, run after the solution and before the tests: imports, helpers,
    /// shared classes (`ListNode`). The program can read what it defines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// Code only the judge sees, run after `setup` before each assert test: test tables and
    /// expected data the program must never read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_setup: Option<String>,
    /// The function the problem asks for, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<String>,
    /// A known-good solution (used by the timing verifier as a baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Per-rollout resource limits; each is capped by the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// The comparison rule of every test of this rollout (each test's own `compare` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
    /// The reference answer of a task whose answer is not code (a math result), for the
    /// `match` verifier and plug-ins. JSONL also accepts a number (`"answer": 42`, kept as
    /// written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Fields this format does not define, kept so dataset adapters can read them
    /// (HumanEval `test`, verl `inputs`/`outputs`, …).
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Reads a rollout field by field, without serde's buffering of `#[serde(flatten)]` (which
/// would read numbers through `f64` before the tests see them): known fields go to their
/// types, every other field to `extra`. A known field that is `null` is absent (Arrow and
/// Hugging Face `datasets` write `null` for every field a row lacks): a required one
/// (`id`, `completion`) is then missing, an optional one takes its default.
impl<'de> Deserialize<'de> for Rollout {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rollout, D::Error> {
        d.deserialize_map(RolloutVisitor)
    }
}

struct RolloutVisitor;

impl<'de> Visitor<'de> for RolloutVisitor {
    type Value = Rollout;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a rollout object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Rollout, A::Error> {
        fn once<T, E: de::Error>(slot: &mut Option<T>, key: &str, v: T) -> Result<(), E> {
            if slot.replace(v).is_some() {
                return Err(E::custom(format_args!("duplicate field `{key}`")));
            }
            Ok(())
        }
        let (mut id, mut problem_id, mut prompt, mut completion) = (None, None, None, None);
        let (mut tests, mut setup, mut entry_point, mut reference) = (None, None, None, None);
        let (mut limits, mut compare, mut answer, mut judge_setup) = (None, None, None, None);
        let mut extra = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" => once(&mut id, &key, map.next_value::<Option<String>>()?)?,
                "problem_id" => once(&mut problem_id, &key, map.next_value::<Option<String>>()?)?,
                "prompt" => once(&mut prompt, &key, map.next_value::<Option<String>>()?)?,
                "completion" => once(&mut completion, &key, map.next_value::<Option<String>>()?)?,
                "tests" => once(&mut tests, &key, map.next_value::<Option<Vec<TestCase>>>()?)?,
                "setup" => once(&mut setup, &key, map.next_value::<Option<String>>()?)?,
                "judge_setup" => once(&mut judge_setup, &key, map.next_value::<Option<String>>()?)?,
                "entry_point" => once(&mut entry_point, &key, map.next_value::<Option<String>>()?)?,
                "reference" => once(&mut reference, &key, map.next_value::<Option<String>>()?)?,
                "limits" => once(&mut limits, &key, map.next_value::<Option<Limits>>()?)?,
                "compare" => once(&mut compare, &key, map.next_value::<Option<Compare>>()?)?,
                "answer" => once(&mut answer, &key, map.next_value::<AnswerText>()?.0)?,
                _ => {
                    let raw = map.next_value::<Box<RawValue>>()?;
                    let value = serde_json::from_str(raw.get())
                        .map_err(|e| de::Error::custom(format_args!("field `{key}`: {e}")))?;
                    if extra.insert(key.clone(), value).is_some() {
                        return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                }
            }
        }
        Ok(Rollout {
            id: id.flatten().ok_or_else(|| de::Error::missing_field("id"))?,
            problem_id: problem_id.flatten(),
            prompt: prompt.flatten().unwrap_or_default(),
            completion: completion
                .flatten()
                .ok_or_else(|| de::Error::missing_field("completion"))?,
            tests: tests.flatten().unwrap_or_default(),
            setup: setup.flatten(),
            judge_setup: judge_setup.flatten(),
            entry_point: entry_point.flatten(),
            reference: reference.flatten(),
            limits: limits.flatten(),
            compare: compare.flatten(),
            answer: answer.flatten(),
            extra,
        })
    }
}

/// `answer` as text: a string as is, a number as written (its JSON text), null as absent.
struct AnswerText(Option<String>);

impl<'de> Deserialize<'de> for AnswerText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AnswerText, D::Error> {
        let raw = <Box<RawValue>>::deserialize(d)?;
        let text = raw.get().trim();
        if text == "null" {
            return Ok(AnswerText(None));
        }
        if text.starts_with('"') {
            return serde_json::from_str::<String>(text)
                .map(|s| AnswerText(Some(s)))
                .map_err(de::Error::custom);
        }
        if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Ok(AnswerText(Some(text.to_string())));
        }
        Err(de::Error::custom("`answer` must be a string or a number"))
    }
}

/// The `id` of a rollout's JSON text whenever it can be read, however wrong the rest is: the
/// fields before it may be anything JSON, the fields after it are not read at all. For the
/// `invalid_input` record of a line, so a trainer can still match it.
pub fn readable_id(text: &str) -> Option<String> {
    struct IdVisitor<'a>(&'a mut Option<String>);
    impl<'de> Visitor<'de> for IdVisitor<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "id" {
                    *self.0 = map.next_value::<Option<String>>()?;
                    return Ok(());
                }
                map.next_value::<de::IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut id = None;
    // serde_json's recursion limit bounds the skipping of deep fields before the id; whatever
    // goes wrong after the id was read leaves it read.
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = serde::Deserializer::deserialize_map(&mut de, IdVisitor(&mut id));
    id.filter(|id| !id.is_empty())
}

/// One test of a rollout's code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "RawTest")]
pub enum TestCase {
    /// Python code run after the solution and `setup`; passes when it raises nothing.
    Assert {
        /// The test code, e.g. `assert add(1, 2) == 3`.
        code: String,
        /// Marks a test whose main purpose is to measure cost (a larger input).
        #[serde(default, skip_serializing_if = "is_false")]
        timing: bool,
    },
    /// The program reads `stdin` and must print `stdout` (compared line by line, or as
    /// `compare` says, or by a `checker`).
    Stdio {
        /// Standard input fed to the program.
        #[serde(default)]
        stdin: String,
        /// Expected standard output.
        stdout: String,
        /// Marks a test whose main purpose is to measure cost (a larger input).
        #[serde(default, skip_serializing_if = "is_false")]
        timing: bool,
        /// This test's comparison rule (over the rollout's and the configured defaults).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compare: Option<Compare>,
        /// A special judge: trusted Python source defining `check(input, output, expected)`,
        /// run in the judge's sandbox instance with the program's output as a string. It
        /// returns `True`/`False` or a score in [0, 1] (1 passes); if it raises or runs out of
        /// its budget the test's outcome is `error` (see README, "Checkers").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checker: Option<String>,
    },
    /// A test module, pytest- or unittest-style: each collected item (a test function, each
    /// parametrized case, each `TestCase` method) is one result. It runs in the judge with the
    /// program importable as `solution` (or `module`); a module that does not import it sees
    /// the program's names as globals (BigCodeBench appends its tests to the solution).
    Suite {
        /// How its items are collected and run.
        style: SuiteStyle,
        /// The module's source.
        code: String,
        /// The module name the program is importable as (default `solution`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        module: Option<String>,
    },
    /// Call function `fn` with JSON `args`; the result is compared with `expected` on the host.
    Call {
        /// Name of the function to call.
        #[serde(rename = "fn")]
        function: String,
        /// Positional arguments, as JSON values (integers exact, of any size).
        #[serde(default)]
        args: Vec<Json>,
        /// The expected return value, as JSON (integers exact, of any size).
        expected: Json,
        /// Marks a test whose main purpose is to measure cost (a larger input).
        #[serde(default, skip_serializing_if = "is_false")]
        timing: bool,
        /// This test's comparison rule (over the rollout's and the configured defaults).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compare: Option<Compare>,
    },
}

/// How a test module's items are collected and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteStyle {
    /// pytest's conventions: `test*` functions, `Test*` classes' `test*` methods,
    /// `unittest.TestCase` methods, `@pytest.mark.parametrize`, fixtures.
    Pytest,
    /// `unittest.TestCase` classes' `test*` methods.
    Unittest,
}

impl SuiteStyle {
    /// `pytest` or `unittest`: the test's `kind`.
    pub fn name(self) -> &'static str {
        match self {
            SuiteStyle::Pytest => "pytest",
            SuiteStyle::Unittest => "unittest",
        }
    }
}

/// A test as written, before its fields are checked against its kind. Read by serde_json's
/// own deserializer (no buffering), so `args` and `expected` keep their exact text.
///
/// `null` means absent, in every field but a call test's `expected`, where it is the value
/// `None`: datasets stored as Arrow give every test every field any test of the column has,
/// `null` where a test lacks it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    kind: Option<String>,
    code: Option<String>,
    stdin: Option<String>,
    stdout: Option<String>,
    #[serde(rename = "fn")]
    function: Option<String>,
    args: Option<Vec<Json>>,
    #[serde(default, deserialize_with = "present")]
    expected: Option<Json>,
    timing: Option<bool>,
    compare: Option<Compare>,
    checker: Option<String>,
    module: Option<String>,
    /// With `kind: "suite"` (how a test module serializes): `pytest` or `unittest`.
    style: Option<SuiteStyle>,
}

/// Whether `name` is a dotted module name (`solution`, `pkg.mod`): identifiers, not a keyword
/// check (Python's import refuses those itself).
fn is_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
                && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        })
}

/// A present field, `null` included (`Option`'s own reading turns `null` into `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

impl TryFrom<RawTest> for TestCase {
    type Error = String;

    fn try_from(t: RawTest) -> Result<TestCase, String> {
        // serde's own wording, which callers read to name the field (`columns::decode`).
        let missing = |field: &str| format!("missing field `{field}`");
        let kind = t.kind.as_deref().ok_or_else(|| missing("kind"))?;
        // `expected` is a value only to a call test; to the others `null` is no `expected`.
        let has_expected = t.expected.as_ref().is_some_and(|e| !e.is_null());
        let timing = t.timing.unwrap_or(false);
        let not_for = |present: bool, field: &str| -> Result<(), String> {
            if present {
                Err(format!("field `{field}` does not belong to a {kind} test"))
            } else {
                Ok(())
            }
        };
        // A test module serializes as `suite` with its `style`; written by hand it is `pytest` or
        // `unittest`.
        let style_kind;
        let kind = match (kind, t.style) {
            ("suite", Some(style)) => {
                style_kind = style.name();
                style_kind
            }
            ("suite", None) => return Err(missing("style")),
            (_, Some(_)) => return Err(format!("field `style` does not belong to a {kind} test")),
            _ => kind,
        };
        match kind {
            "assert" => {
                not_for(t.module.is_some(), "module")?;
                not_for(t.stdin.is_some(), "stdin")?;
                not_for(t.stdout.is_some(), "stdout")?;
                not_for(t.function.is_some(), "fn")?;
                not_for(t.args.is_some(), "args")?;
                not_for(has_expected, "expected")?;
                not_for(t.checker.is_some(), "checker")?;
                not_for(
                    t.compare.is_some(),
                    "compare` (an assert test compares with its own code, not `compare",
                )?;
                Ok(TestCase::Assert {
                    code: t.code.ok_or_else(|| missing("code"))?,
                    timing,
                })
            }
            "stdio" => {
                not_for(t.module.is_some(), "module")?;
                not_for(t.code.is_some(), "code")?;
                not_for(t.function.is_some(), "fn")?;
                not_for(t.args.is_some(), "args")?;
                not_for(has_expected, "expected")?;
                Ok(TestCase::Stdio {
                    stdin: t.stdin.unwrap_or_default(),
                    stdout: t.stdout.ok_or_else(|| missing("stdout"))?,
                    timing,
                    compare: t.compare,
                    checker: t.checker,
                })
            }
            "pytest" | "unittest" => {
                not_for(t.stdin.is_some(), "stdin")?;
                not_for(t.stdout.is_some(), "stdout")?;
                not_for(t.function.is_some(), "fn")?;
                not_for(t.args.is_some(), "args")?;
                not_for(has_expected, "expected")?;
                not_for(t.checker.is_some(), "checker")?;
                not_for(t.timing.unwrap_or(false), "timing")?;
                not_for(
                    t.compare.is_some(),
                    "compare` (a test module compares with its own code, not `compare",
                )?;
                if let Some(m) = &t.module {
                    if !is_module_name(m) {
                        return Err(format!(
                            "field `module`: {:?} is not a module name (dotted identifiers)",
                            m.chars().take(60).collect::<String>()
                        ));
                    }
                }
                Ok(TestCase::Suite {
                    style: if kind == "pytest" {
                        SuiteStyle::Pytest
                    } else {
                        SuiteStyle::Unittest
                    },
                    code: t.code.ok_or_else(|| missing("code"))?,
                    module: t.module,
                })
            }
            "call" => {
                not_for(t.module.is_some(), "module")?;
                not_for(t.code.is_some(), "code")?;
                not_for(t.stdin.is_some(), "stdin")?;
                not_for(t.stdout.is_some(), "stdout")?;
                not_for(t.checker.is_some(), "checker")?;
                Ok(TestCase::Call {
                    function: t.function.ok_or_else(|| missing("fn"))?,
                    args: t.args.unwrap_or_default(),
                    expected: t.expected.ok_or_else(|| missing("expected"))?,
                    timing,
                    compare: t.compare,
                })
            }
            other => Err(format!(
                "unknown test kind `{}`, expected one of `assert`, `stdio`, `call`, `pytest`, `unittest`",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// How a test's result is compared with what is expected. Every field is optional: a test's
/// own rule wins over the rollout's `compare`, which wins over the configured defaults
/// (`[sandbox.judge]`). The rules, with their defaults, are tabled in the README
/// ("Comparison rules").
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CompareFields")]
pub struct Compare {
    /// Relative float tolerance (`0` for exact floats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_tol: Option<f64>,
    /// Absolute float tolerance (`0` for exact floats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_tol: Option<f64>,
    /// How stdout is cut into what is compared (`lines`, `tokens`, `exact`); `exact` also
    /// turns off the float tolerance of call tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CompareMode>,
    /// stdio: tokens and lines compare case-insensitively (`YES` matches `yes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_insensitive: Option<bool>,
    /// stdio: the lines may come in any order; call: a returned list, tuple or set matches
    /// the expected array in any order (as a multiset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unordered: Option<bool>,
    /// call: an expected array of one element also matches that element (APPS and TACO wrap
    /// a function's expected value in a list; their harness accepts either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwrap_single: Option<bool>,
    /// call: a returned dict's keys match the expected object's only when they are strings.
    /// Unset or `false` (the default), JSON's spelling of keys is read as datasets mean it: an
    /// `int` key also matches its canonical decimal spelling (`{1: 1}` matches `{"1": 1}`, never
    /// `{"01": 1}`). Only for expected values from data; assert tests use Python's `==`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_keys: Option<bool>,
}

/// How stdout is cut into what is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareMode {
    /// Line by line: trailing whitespace of each line and trailing blank lines are ignored,
    /// tokens that are floats compare within the tolerance. The default.
    Lines,
    /// Whitespace-insensitive: all whitespace-separated tokens in order, line breaks
    /// included, floats within the tolerance.
    Tokens,
    /// The same text (only `\r\n` vs `\n` and trailing newlines aside), no tolerance.
    Exact,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareFields {
    rel_tol: Option<f64>,
    abs_tol: Option<f64>,
    mode: Option<CompareMode>,
    case_insensitive: Option<bool>,
    unordered: Option<bool>,
    unwrap_single: Option<bool>,
    strict_keys: Option<bool>,
}

impl TryFrom<CompareFields> for Compare {
    type Error = String;

    fn try_from(c: CompareFields) -> Result<Compare, String> {
        for (name, tol) in [("rel_tol", c.rel_tol), ("abs_tol", c.abs_tol)] {
            if tol.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
                return Err(format!(
                    "`compare.{name}` must be a finite number of at least 0"
                ));
            }
        }
        Ok(Compare {
            rel_tol: c.rel_tol,
            abs_tol: c.abs_tol,
            mode: c.mode,
            case_insensitive: c.case_insensitive,
            unordered: c.unordered,
            unwrap_single: c.unwrap_single,
            strict_keys: c.strict_keys,
        })
    }
}

impl Compare {
    /// This rule, with the fields it leaves unset taken from `fallback`.
    pub fn or(self, fallback: Compare) -> Compare {
        Compare {
            rel_tol: self.rel_tol.or(fallback.rel_tol),
            abs_tol: self.abs_tol.or(fallback.abs_tol),
            mode: self.mode.or(fallback.mode),
            case_insensitive: self.case_insensitive.or(fallback.case_insensitive),
            unordered: self.unordered.or(fallback.unordered),
            unwrap_single: self.unwrap_single.or(fallback.unwrap_single),
            strict_keys: self.strict_keys.or(fallback.strict_keys),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Which problem a rollout answers: the one rule every grouping of rollouts uses (groupwise
/// verifiers, dual agreement on generated tests, `verdict tests eval`/`generate`, the timing
/// reference's seed). Its `problem_id`, else its prompt: the rollouts of one GRPO group share
/// their prompt even where a trainer sets no `problem_id`. An id and a prompt never collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKey {
    /// The rollout's `problem_id`.
    Id(String),
    /// The rollout's prompt (it has no `problem_id`).
    Prompt(String),
}

impl std::fmt::Display for ProblemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProblemKey::Id(id) => write!(f, "problem_id {id}"),
            ProblemKey::Prompt(prompt) => write!(f, "prompt {prompt:?}"),
        }
    }
}

impl Rollout {
    /// The problem this rollout answers ([`ProblemKey`]); `None` when it has neither a
    /// `problem_id` nor a prompt, so nothing tells which rollouts belong with it.
    pub fn problem_key(&self) -> Option<ProblemKey> {
        match (&self.problem_id, self.prompt.is_empty()) {
            (Some(id), _) => Some(ProblemKey::Id(id.clone())),
            (None, false) => Some(ProblemKey::Prompt(self.prompt.clone())),
            (None, true) => None,
        }
    }

    /// The problem's name for people and caches: its `problem_id`, else this rollout's `id`.
    pub fn problem_name(&self) -> &str {
        self.problem_id.as_deref().unwrap_or(&self.id)
    }
}

impl TestCase {
    /// The test's kind as written in JSON (`assert`, `stdio`, `call`).
    pub fn kind(&self) -> &'static str {
        match self {
            TestCase::Assert { .. } => "assert",
            TestCase::Stdio { .. } => "stdio",
            TestCase::Call { .. } => "call",
            TestCase::Suite { style, .. } => style.name(),
        }
    }

    /// Puts the rollout's rule `outer` under the test's own `compare` (assert tests have none).
    pub fn inherit_compare(&mut self, outer: Option<Compare>) {
        let Some(outer) = outer else { return };
        match self {
            TestCase::Stdio { compare, .. } | TestCase::Call { compare, .. } => {
                *compare = Some(compare.unwrap_or_default().or(outer));
            }
            TestCase::Assert { .. } | TestCase::Suite { .. } => {}
        }
    }

    /// Whether the test is marked as a timing test.
    pub fn is_timing(&self) -> bool {
        match self {
            TestCase::Assert { timing, .. }
            | TestCase::Stdio { timing, .. }
            | TestCase::Call { timing, .. } => *timing,
            TestCase::Suite { .. } => false,
        }
    }
}

/// Resource limits a rollout may ask for. Each is capped by the configured maximum.
///
/// In JSON each is a whole number of at least 1, also when written as a float (`1000.0`, as
/// JSON libraries and Arrow may write an integer); `null` means absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget for the whole sandbox run, in milliseconds.
    #[serde(
        default,
        deserialize_with = "limit",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_ms: Option<u64>,
    /// Linear-memory cap for the interpreter, in MiB.
    #[serde(
        default,
        deserialize_with = "limit",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_mb: Option<u64>,
    /// Cap on captured stdout + stderr, in KiB.
    #[serde(
        default,
        deserialize_with = "limit",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_kb: Option<u64>,
}

/// One of [`Limits`]' fields: `null` is absent, otherwise [`whole_at_least_one`].
fn limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(|n| {
            whole_at_least_one(&n).ok_or_else(|| {
                de::Error::custom(format_args!(
                    "must be a whole number of at least 1, got {n}"
                ))
            })
        })
        .transpose()
}

/// `n` as a whole number of at least 1: an integer, or a float with no fractional part
/// (`1000.0`) within `u64`'s range.
fn whole_at_least_one(n: &serde_json::Number) -> Option<u64> {
    if let Some(u) = n.as_u64() {
        return (u >= 1).then_some(u);
    }
    let f = n.as_f64()?;
    // 2^64 is the first float past u64::MAX.
    (f.fract() == 0.0 && (1.0..18_446_744_073_709_551_616.0).contains(&f)).then_some(f as u64)
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
        let ok = call_test_line(&nested(crate::depth::MAX_ROLLOUT_DEPTH - 3));
        let r = Rollout::from_json(&ok).expect("at the limit");
        assert!(
            matches!(&r.tests[0], TestCase::Call { expected, .. } if expected.text().starts_with('['))
        );

        for depth in [crate::depth::MAX_ROLLOUT_DEPTH - 2, 200, 100_000] {
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
        assert!(
            matches!(&r.tests[0], TestCase::Call { expected, .. } if expected.text().starts_with('"'))
        );
        let check = |text: &[u8]| crate::depth::check_depth(text, 2, "a test");
        assert_eq!(check(b"[[]]"), Ok(()));
        assert!(check(b"[[[]]]").is_err());
        // Not JSON: left to the decoder.
        assert_eq!(check(b"]]]]"), Ok(()));
    }

    #[test]
    fn call_values_are_exact_at_any_size_and_rules_are_read() {
        let digits = format!("7{}", "3".repeat(5735));
        let line = format!(
            r#"{{"id": "big", "completion": "x", "limits": {{"time_ms": 500}}, "note": 1.5,
               "compare": {{"rel_tol": 1e-9}},
               "tests": [{{"kind": "call", "fn": "f", "args": [{digits}, 2.50], "expected": {digits},
                           "compare": {{"mode": "exact"}}}},
                         {{"kind": "call", "fn": "g", "expected": null}},
                         {{"kind": "stdio", "stdout": "YES", "compare": {{"case_insensitive": true}},
                           "checker": "def check(i, o, e): return True"}}]}}"#
        );
        let r = Rollout::from_json(&line).unwrap();
        let TestCase::Call {
            args,
            expected,
            compare,
            ..
        } = &r.tests[0]
        else {
            panic!()
        };
        assert_eq!(expected.text(), digits);
        assert_eq!(args[0].text(), digits);
        assert_eq!(args[1].text(), "2.50");
        assert_eq!(compare.unwrap().mode, Some(CompareMode::Exact));
        assert_eq!(r.compare.unwrap().rel_tol, Some(1e-9));
        assert_eq!(r.limits.unwrap().time_ms, Some(500));
        assert_eq!(r.extra["note"], 1.5);
        assert!(
            matches!(&r.tests[1], TestCase::Call { expected, .. } if expected.text() == "null")
        );
        assert!(
            matches!(&r.tests[2], TestCase::Stdio { checker: Some(_), compare: Some(c), .. } if c.case_insensitive == Some(true))
        );
        // What the worker processes receive round-trips, digits included.
        let again: Rollout = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
        // A million-digit integer is read (linearly) too.
        let huge = "9".repeat(1_000_000);
        assert!(Rollout::from_json(&call_test_line(&huge)).is_ok());
    }

    #[test]
    fn rules_and_fields_are_checked_against_the_test_kind() {
        let bad = |test: &str| {
            Rollout::from_json(&format!(
                r#"{{"id": "a", "completion": "x", "tests": [{test}]}}"#
            ))
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            bad(r#"{"kind": "call", "fn": "f"}"#),
            "tests[0].expected: is required"
        );
        assert!(bad(r#"{"kind": "assert", "code": "x", "stdin": ""}"#).contains("`stdin`"));
        assert!(bad(r#"{"kind": "assert", "code": "x", "compare": {}}"#).contains("compare"));
        assert!(
            bad(r#"{"kind": "stdio", "stdout": "", "compare": {"rel_tol": -1}}"#)
                .contains("rel_tol")
        );
        assert!(
            bad(r#"{"kind": "stdio", "stdout": "", "compare": {"mode": "fuzzy"}}"#)
                .contains("fuzzy")
        );
        assert!(
            bad(r#"{"kind": "stdio", "stdout": "", "compare": {"tolerance": 1}}"#)
                .contains("tolerance")
        );
        assert!(
            bad(r#"{"kind": "call", "fn": "f", "expected": 1, "checker": "x"}"#)
                .contains("checker")
        );
    }

    #[test]
    fn a_problem_is_its_id_else_its_prompt() {
        let r = |problem_id: Option<&str>, prompt: &str| Rollout {
            id: "r".into(),
            problem_id: problem_id.map(str::to_string),
            prompt: prompt.into(),
            ..Rollout::default()
        };
        assert_eq!(
            r(Some("p1"), "x").problem_key(),
            Some(ProblemKey::Id("p1".into()))
        );
        assert_eq!(
            r(None, "x").problem_key(),
            Some(ProblemKey::Prompt("x".into()))
        );
        assert_eq!(r(None, "").problem_key(), None);
        // A prompt that spells another rollout's problem_id is another problem.
        assert_ne!(r(Some("x"), "").problem_key(), r(None, "x").problem_key());
        assert_eq!(r(Some("p1"), "x").problem_name(), "p1");
        assert_eq!(r(None, "x").problem_name(), "r");
    }

    #[test]
    fn the_id_of_an_unreadable_line_is_still_read() {
        let big = "9".repeat(5736);
        // Fields before the id may be anything JSON, those after need not even parse.
        let line = format!(r#"{{"prompt": {big}, "deep": [[[1]]], "id": "r-9", "tests": [oops"#);
        assert_eq!(readable_id(&line).as_deref(), Some("r-9"));
        assert_eq!(readable_id(r#"{"id": 5}"#), None);
        assert_eq!(readable_id(r#"{"id": ""}"#), None);
        assert_eq!(readable_id("not json"), None);
        // serde_json skips ignored values with a loop, not recursion: any depth is fine.
        let n = 1_000_000;
        let deep = format!(
            r#"{{"x": {}1{}, "id": "after-deep"}}"#,
            "[".repeat(n),
            "]".repeat(n)
        );
        assert_eq!(readable_id(&deep).as_deref(), Some("after-deep"));
    }

    #[test]
    fn null_is_absent_except_for_a_call_tests_expected_value() {
        // As `datasets.Dataset.from_list` writes a column of mixed tests: every test has every
        // field that any test has, `null` where it has none.
        let line = r#"{"id": "n", "completion": "x", "prompt": null, "problem_id": null,
            "setup": null, "entry_point": null, "reference": null, "answer": null,
            "compare": null, "limits": {"time_ms": null, "memory_mb": 64, "output_kb": null},
            "tests": [
              {"kind": "assert", "code": "assert f() is None", "stdin": null, "stdout": null,
               "fn": null, "args": null, "expected": null, "timing": null, "compare": null,
               "checker": null},
              {"kind": "stdio", "code": null, "stdin": null, "stdout": "1\n", "fn": null,
               "args": null, "expected": null, "timing": null, "compare": {"mode": null,
               "rel_tol": null, "unordered": true}, "checker": null},
              {"kind": "call", "code": null, "stdin": null, "stdout": null, "fn": "f",
               "args": null, "expected": null, "timing": true, "compare": null,
               "checker": null}]}"#;
        let r = Rollout::from_json(line).unwrap();
        assert_eq!(r.prompt, "");
        assert_eq!(r.compare, None);
        assert_eq!(
            r.limits,
            Some(Limits {
                time_ms: None,
                memory_mb: Some(64),
                output_kb: None
            })
        );
        assert!(r.extra.is_empty(), "{:?}", r.extra);
        assert_eq!(
            r.tests[0],
            TestCase::Assert {
                code: "assert f() is None".into(),
                timing: false
            }
        );
        let TestCase::Stdio {
            stdin,
            timing,
            compare,
            checker,
            ..
        } = &r.tests[1]
        else {
            panic!("{:?}", r.tests[1])
        };
        assert_eq!((stdin.as_str(), *timing, checker), ("", false, &None));
        assert_eq!(
            *compare,
            Some(Compare {
                unordered: Some(true),
                ..Compare::default()
            })
        );
        // A call test's `expected: null` is the value `None`, not a missing `expected`.
        let TestCase::Call {
            expected,
            args,
            timing,
            ..
        } = &r.tests[2]
        else {
            panic!("{:?}", r.tests[2])
        };
        assert!(expected.is_null() && args.is_empty() && *timing);

        let null_tests = Rollout::from_json(r#"{"id": "t", "completion": "x", "tests": null}"#);
        assert!(null_tests.unwrap().tests.is_empty());
        // A required field that is null is missing, as serde says it.
        for (line, field) in [
            (r#"{"id": null, "completion": "x"}"#, "id"),
            (r#"{"id": "a", "completion": null}"#, "completion"),
            (
                r#"{"id": "a", "completion": "x", "tests": [{"kind": null, "code": "x"}]}"#,
                "kind",
            ),
            (
                r#"{"id": "a", "completion": "x", "tests": [{"kind": "stdio", "stdout": null}]}"#,
                "stdout",
            ),
        ] {
            let err = Rollout::from_json(line).unwrap_err();
            assert!(err.field.ends_with(field), "{err}");
            assert_eq!(err.reason, "is required", "{err}");
        }
        // A value that is not null still has to belong to the test's kind.
        let err = Rollout::from_json(
            r#"{"id": "a", "completion": "x", "tests": [{"kind": "assert", "code": "x", "expected": 0}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`expected`"), "{err}");
    }

    #[test]
    fn limits_are_whole_numbers_of_at_least_one_written_either_way() {
        let limits = |text: &str| {
            Rollout::from_json(&format!(
                r#"{{"id": "l", "completion": "x", "limits": {text}}}"#
            ))
            .map(|r| r.limits.unwrap())
            .map_err(|e| e.to_string())
        };
        let read = limits(r#"{"time_ms": 1000.0, "memory_mb": 64, "output_kb": 2e3}"#).unwrap();
        assert_eq!(
            read,
            Limits {
                time_ms: Some(1000),
                memory_mb: Some(64),
                output_kb: Some(2000)
            }
        );
        for bad in [
            r#"{"time_ms": 0}"#,
            r#"{"memory_mb": 0.0}"#,
            r#"{"output_kb": -3}"#,
            r#"{"time_ms": 1.5}"#,
            r#"{"time_ms": 1e300}"#,
            r#"{"time_ms": "1000"}"#,
        ] {
            let err = limits(bad).unwrap_err();
            assert!(
                err.contains("whole number of at least 1") || err.contains("invalid type"),
                "{bad}: {err}"
            );
        }
        assert!(limits(r#"{"time_ms": 0}"#).unwrap_err().contains("got 0"));
        // What is serialized reads back.
        let text = serde_json::to_string(&read).unwrap();
        assert_eq!(serde_json::from_str::<Limits>(&text).unwrap(), read);
    }

    #[test]
    fn unknown_test_kind_is_an_error() {
        let err = serde_json::from_str::<Rollout>(
            r#"{"id": "a", "completion": "x", "tests": [{"kind": "fuzz"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("fuzz"), "{err}");
    }

    #[test]
    fn strict_keys_is_a_compare_field_layered_like_the_others() {
        let r = Rollout::from_json(
            r#"{"id": "k", "completion": "x", "compare": {"strict_keys": true},
                "tests": [{"kind": "call", "fn": "f", "expected": {"1": 1}},
                          {"kind": "call", "fn": "f", "expected": {"1": 1}, "compare": {"strict_keys": false}}]}"#,
        )
        .unwrap();
        let rule = r.compare.unwrap();
        assert_eq!(rule.strict_keys, Some(true));
        let own = |t: &TestCase| match t {
            TestCase::Call { compare, .. } => compare.unwrap_or_default(),
            _ => unreachable!(),
        };
        assert_eq!(own(&r.tests[0]).or(rule).strict_keys, Some(true));
        assert_eq!(own(&r.tests[1]).or(rule).strict_keys, Some(false));
        assert_eq!(Compare::default().or(Compare::default()).strict_keys, None);
        let text = serde_json::to_string(&rule).unwrap();
        assert_eq!(text, r#"{"strict_keys":true}"#);
        assert_eq!(serde_json::from_str::<Compare>(&text).unwrap(), rule);
        assert!(serde_json::from_str::<Compare>(r#"{"strict_keys": 1}"#).is_err());
    }
}
