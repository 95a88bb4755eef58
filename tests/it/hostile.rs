//! Hostile programs (`fixtures/hostile/`): none may earn a pass, each gets the outcome its
//! header names, and the sandbox serves a healthy run right after each.
//!
//! Each fixture starts with comment lines; among them
//! - `# case: <tests> -> <outcome>`: run against the named test set (see [`test_set`]) and
//!   expect this outcome (snake_case, as in score records), with no test passed;
//! - `# limits: short`: run with a 1 s wall-clock budget;
//! - `# message: <text>`: the report's message contains it; `# never: <text>`: it does not.
//!
//! The same corpus goes through `verdict score` and through `verdict serve` (`--remote`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use verdict::{Limits, Outcome};

use crate::sandbox::{run, run_with, tests};

/// One fixture and what its header asks.
struct Fixture {
    name: String,
    source: String,
    cases: Vec<(String, Outcome)>,
    short: bool,
    message: Option<String>,
    never: Option<String>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hostile")
}

fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir())
        .expect("fixtures/hostile")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        let mut f = Fixture {
            name: name.clone(),
            source: source.clone(),
            cases: Vec::new(),
            short: false,
            message: None,
            never: None,
        };
        for line in source.lines().take_while(|l| l.starts_with('#')) {
            if let Some(case) = line.strip_prefix("# case: ") {
                let (tests, outcome) = case
                    .split_once(" -> ")
                    .unwrap_or_else(|| panic!("{name}: malformed case {case:?}"));
                let outcome: Outcome = serde_json::from_value(json!(outcome))
                    .unwrap_or_else(|e| panic!("{name}: outcome {outcome:?}: {e}"));
                f.cases.push((tests.to_string(), outcome));
            } else if line == "# limits: short" {
                f.short = true;
            } else if let Some(m) = line.strip_prefix("# message: ") {
                f.message = Some(m.to_string());
            } else if let Some(m) = line.strip_prefix("# never: ") {
                f.never = Some(m.to_string());
            }
        }
        assert!(!f.cases.is_empty(), "{name} has no `# case:` line");
        out.push(f);
    }
    assert!(out.len() >= 40, "the hostile corpus shrank: {}", out.len());
    out
}

/// The test sets a fixture's cases name. Every one would pass for an honest `add(a, b)` that
/// returns `a + b` (and `hypot`, printing the expected output for the stdio sets, and `pairs(a,
/// b)` returning `{"a": a, "b": b}`, `items()` returning `[1, 2, 3]`, `max(xs)` returning the
/// largest item, and printing the sum of the two input numbers for `stdio_checker_no_expected`).
fn test_set(name: &str) -> Value {
    let assert = |code: &str| json!([{"kind": "assert", "code": code}]);
    match name {
        "assert_add" => json!([
            {"kind": "assert", "code": "assert add(1, 2) == 3"},
            {"kind": "assert", "code": "assert add(2, 2) == 4"}
        ]),
        "call_add" => json!([{"kind": "call", "fn": "add", "args": [1, 2], "expected": 3}]),
        "call_add2" => json!([
            {"kind": "call", "fn": "add", "args": [1, 2], "expected": 3},
            {"kind": "call", "fn": "add", "args": [20, 22], "expected": 42}
        ]),
        "mixed_add" => json!([
            {"kind": "assert", "code": "assert add(1, 2) == 3"},
            {"kind": "assert", "code": "assert add(2, 2) == 4 and add(0, 0) == 0"},
            {"kind": "call", "fn": "add", "args": [1, 2], "expected": 3},
            {"kind": "call", "fn": "missing", "args": [], "expected": 3}
        ]),
        "humaneval_add" => assert(
            "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert not (candidate(1, 2) != 3)\n\ncheck(add)\n",
        ),
        "humaneval_const" => assert(
            "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(20, 22) == 42\n\ncheck(add)\n",
        ),
        "approx_add" => assert("assert abs(add(1, 2) - 3) < 1e-9"),
        "builtins_add" => assert("assert abs(add(1, 2) - 3) < 1e-9 and len([1]) == 1"),
        "hypot" => assert("assert abs(hypot(3, 4) - 5.0) < 1e-9"),
        "all_add" => assert("assert all(add(i, i) == 2 * i for i in range(5))"),
        "any_add" => assert("assert not any(add(i, i) != 2 * i for i in range(5))"),
        "isclose_add" => assert("import math\nassert math.isclose(add(1, 2), 3)"),
        "isclose_noimport" => assert("assert math.isclose(add(1, 2), 3)"),
        "map_add" => assert("assert all(map(lambda x: add(x, x) == 2 * x, range(3)))"),
        "match_add" => assert(
            "match add(1, 2):\n    case 3:\n        pass\n    case _:\n        assert False\n",
        ),
        "augassign_add" => assert("x = add(1, 2)\nx -= 3\nassert x == 0"),
        "helper_add" => json!([{"kind": "assert", "code": "assert near(add(1, 2), 3)"}]),
        "gen_list" => assert("assert list(add(1, 2)) == [3]"),
        "in_bag" => assert("assert 3 in add(1, 2) and 4 not in add(1, 2)"),
        "in_items" => assert("assert 2 in items() and 3 in items()"),
        "in_handles" => assert("b = add(1, 2)\nassert b in [b] and add(1, 2) in add(1, 2)"),
        "call_pairs" => json!([
            {"kind": "call", "fn": "pairs", "args": [1, 2], "expected": {"a": 1, "b": 2}}
        ]),
        "assert_pairs" => assert("assert pairs(1, 2) == {'a': 1, 'b': 2}"),
        "stdio3" => json!([{"kind": "stdio", "stdin": "", "stdout": "3\n"}]),
        "stdio_42" => json!([{"kind": "stdio", "stdin": "", "stdout": "42\n"}]),
        "stdio_123" => json!([{"kind": "stdio", "stdin": "", "stdout": "1\n2\n3\n"}]),
        "stdio_x" => json!([{"kind": "stdio", "stdin": "", "stdout": "x\n"}]),
        "stdio_root" => json!([{"kind": "stdio", "stdin": "", "stdout": "/root\n"}]),
        "class_sqrt" => assert("assert Solution.sqrt(16) == 4 and Solution.floor(2.5) == 2"),
        "call_items_any_order" => json!([{"kind": "call", "fn": "items", "args": [],
            "expected": [1, 2, 3], "compare": {"unordered": true}}]),
        "stdio_int_checker" => json!([{"kind": "stdio", "stdin": "2 2\n", "stdout": "4\n",
            "checker": "def check(i, o, e):\n    return int(o) == int(e)\n"}]),
        "stdio_costly_checker" => json!([{"kind": "stdio", "stdin": "", "stdout": "3\n",
            "checker": "def check(i, o, e):\n    t = 0\n    for k in range(int(o.split()[0])):\n        t += k\n    return t == sum(range(int(e)))\n"}]),
        // An honest `items()` returns the list `[1, 2, 3]`: the judge slices and sorts it.
        "slice_items" => assert("assert items()[:2] == [1, 2]"),
        "sort_key_items" => assert("xs = items()\nxs.sort(key=lambda v: -v)\nassert xs == [3, 2, 1]"),
        // Callbacks: the test hands the program a key function, a visitor, a checked
        // callback (honest: `sort_by` sorts by the key, `walk` visits each item, `apply(f, x)`
        // returns `f(x)` and `double(x)` is `2 * x`).
        "key_sort" => assert("assert sort_by([3, 1, 2], lambda v: -v) == [3, 2, 1]"),
        "visit" => assert(
            "class V:\n    def __init__(self):\n        self.seen = []\n        self.secret = [3, 2, 1]\n    def visit(self, x):\n        assert x > 0, 'visited a non-positive item'\n        self.seen.append(x)\nv = V()\nwalk([1, 2, 3], v)\nassert v.seen == [1, 2, 3]",
        ),
        "apply_double" => assert("assert apply(lambda y: double(y) + 1, 3) == 7"),
        // A test's enum class handed to the program (honest: `pick(E, v)` returns `E(v)`),
        // then a test that trusts the judge's `math` (honest: `area(r)` is `math.pi * r * r`).
        "enum_pick" => assert(
            "from enum import Enum\nclass Color(Enum):\n    RED = 1\n    GREEN = 2\nassert pick(Color, 2) == Color.GREEN",
        ),
        "enum_then_isclose" => json!([
            {"kind": "assert", "code": "from enum import Enum\nclass Color(Enum):\n    RED = 1\n    GREEN = 2\nassert pick(Color, 2) == Color.GREEN"},
            {"kind": "assert", "code": "import math\nassert math.isclose(area(2), 12.566370614359172)"}
        ]),
        // Test modules (honest: `add(a, b)` is `a + b`; `max` the builtin's meaning; the module
        // reads `statistics` from the stdlib). The JSON is the fixtures' own header.
        "suite_bcb_max" => serde_json::from_str(r#"[{"kind": "unittest", "code": "import unittest\n\nclass TestMax(unittest.TestCase):\n    def test_max(self):\n        self.assertEqual(max([3, 1, 2]), 3)\n        self.assertEqual(max([-5]), -5)\n"}]"#).unwrap(),
        "suite_add3_pytest" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import add\n\ndef test_a():\n    assert add(1, 2) == 3\n\ndef test_b():\n    assert add(2, 2) == 4\n\ndef test_c():\n    assert add(3, 3) == 6\n"}]"#).unwrap(),
        "suite_expected_failure" => serde_json::from_str(r#"[{"kind": "unittest", "code": "import unittest\nfrom solution import add\n\nclass TestAdd(unittest.TestCase):\n    @unittest.expectedFailure\n    def test_not_four(self):\n        self.assertEqual(add(1, 2), 4)\n"}]"#).unwrap(),
        "suite_fixture_cases" => serde_json::from_str(r#"[{"kind": "pytest", "code": "import pytest\nfrom solution import add\n\n@pytest.fixture\ndef cases():\n    return [(1, 2, 3), (20, 22, 42)]\n\ndef test_add(cases):\n    for a, b, c in cases:\n        assert add(a, b) == c\n"}]"#).unwrap(),
        "suite_add_pytest" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import add\n\ndef test_add():\n    assert add(1, 2) == 3\n\ndef test_add_more():\n    assert add(20, 22) == 42\n"}]"#).unwrap(),
        "suite_capsys_add" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import add\n\ndef test_quiet(capsys):\n    assert add(1, 2) == 3\n    assert capsys.readouterr().out == ''\n"}]"#).unwrap(),
        "suite_star_add" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import *\n\ndef test_add():\n    assert add(1, 2) == 3\n"}]"#).unwrap(),
        "suite_add_unittest" => serde_json::from_str(r#"[{"kind": "unittest", "code": "import unittest\nfrom solution import add\n\nclass TestAdd(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n\n    def test_add_more(self):\n        self.assertEqual(add(20, 22), 42)\n"}]"#).unwrap(),
        "suite_setupclass_add" => serde_json::from_str(r#"[{"kind": "unittest", "code": "import unittest\nfrom solution import add\n\nclass TestAdd(unittest.TestCase):\n    @classmethod\n    def setUpClass(cls):\n        cls.zero = add(0, 0)\n\n    def test_add(self):\n        self.assertEqual(add(1, 2), 3 + self.zero)\n\n    def test_add_more(self):\n        self.assertEqual(add(20, 22), 42 + self.zero)\n"}]"#).unwrap(),
        "suite_star_approx" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from pytest import approx\nfrom solution import *\n\ndef test_add():\n    assert add(0.1, 0.2) == approx(0.3)\n"}]"#).unwrap(),
        "suite_star_builtins" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import *\n\ndef test_close():\n    assert abs(add(0.1, 0.2) - 0.3) < 1e-9\n\ndef test_many():\n    assert all(add(i, i) == 2 * i for i in range(5))\n"}]"#).unwrap(),
        "suite_star_param" => serde_json::from_str(r#"[{"kind": "pytest", "code": "import pytest\nfrom solution import *\n\n@pytest.mark.parametrize('a, b, c', [(1, 2, 3), (20, 22, 42)])\ndef test_add(a, b, c):\n    assert add(a, b) == c\n"}]"#).unwrap(),
        "suite_star_isclose" => serde_json::from_str(r#"[{"kind": "pytest", "code": "import math\nfrom solution import *\n\ndef test_add():\n    assert math.isclose(add(0.1, 0.2), 0.3)\n"}]"#).unwrap(),
        "suite_bcb_statistics" => serde_json::from_str(r#"[{"kind": "unittest", "code": "import unittest\n\nclass TestMean(unittest.TestCase):\n    def test_mean(self):\n        self.assertEqual(statistics.mean([1, 2, 3]), 2)\n"}]"#).unwrap(),
        "suite_subtest_skip" => serde_json::from_str(r#"[{"kind": "unittest", "code": "import unittest\nfrom solution import add\n\nclass TestAdd(unittest.TestCase):\n    def test_cases(self):\n        for a, b, c in [(1, 2, 3), (20, 22, 42)]:\n            with self.subTest(a=a, b=b):\n                try:\n                    got = add(a, b)\n                except NotImplementedError:\n                    self.skipTest('add is not implemented')\n                self.assertEqual(got, c)\n"}]"#).unwrap(),
        // Second round on test modules (honest: `add(a, b)` is `a + b`).
        "suite_erase_pytest" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import add\n\ndef test_add():\n    assert add(1, 2) == 3\n\ndef test_add_more():\n    assert add(20, 22) == 42\n\nZERO = add(0, 0)\n"}]"#).unwrap(),
        "suite_erase_unittest" => serde_json::from_str(r#"[{"kind": "unittest", "code": "import unittest\nfrom solution import add\n\nclass TestAdd(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n\n    def test_add_more(self):\n        self.assertEqual(add(20, 22), 42)\n\nZERO = add(0, 0)\n"}]"#).unwrap(),
        "suite_expected_global" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import add\n\nEXPECTED = 3\n\ndef test_add():\n    got = add(1, 2)\n    assert got == EXPECTED\n"}]"#).unwrap(),
        "assert_expected_global" => serde_json::from_str(r#"[{"kind": "assert", "code": "EXPECTED = 3\nassert add(1, 2) == EXPECTED\n"}]"#).unwrap(),
        "suite_fixture_zero_cases" => serde_json::from_str(r#"[{"kind": "pytest", "code": "import pytest\nfrom solution import add\n\n@pytest.fixture\ndef zero():\n    return add(0, 0)\n\n@pytest.fixture\ndef cases():\n    return [(1, 2, 3), (20, 22, 42)]\n\ndef test_add(zero, cases):\n    for a, b, c in cases:\n        assert add(a, b) == c + zero\n"}]"#).unwrap(),
        "suite_star_table" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import *\n\ndef test_table():\n    for a, b, c in CASES:\n        assert add(a, b) == c\n"}]"#).unwrap(),
        "suite_param_table" => serde_json::from_str(r#"[{"kind": "pytest", "code": "import pytest\nfrom solution import add\n\nCASES = [(1, 2, 3), (2, 2, 4), (3, 3, 6), (4, 4, 8)]\n\n@pytest.mark.parametrize('a, b, c', CASES)\ndef test_add(a, b, c):\n    assert add(a, b) == c\n"}]"#).unwrap(),
        // The final round (honest: `BASE = 0`, `add` is `a + b`, `sub` is `a - b`).
        "suite_from_import_base" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import add, BASE\n\ndef test_add():\n    assert add(1, 2) - BASE == 3\n"}]"#).unwrap(),
        "suite_star_import_base" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import *\n\ndef test_add():\n    assert add(1, 2) - BASE == 3\n"}]"#).unwrap(),
        "suite_star_table_match" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import *\n\ndef test_table():\n    for a, b, c in CASES:\n        assert add(a, b) == c\n"}]"#).unwrap(),
        "suite_star_table_globals" => serde_json::from_str(r#"[{"kind": "pytest", "code": "from solution import *\n\ndef test_table():\n    for a, b, c in CASES:\n        assert add(a, b) == c\n"}]"#).unwrap(),
        "suite_param_annotated" => serde_json::from_str(r#"[{"kind": "pytest", "code": "import pytest\nfrom solution import add\n\nCASES: list = [(1, 2, 3), (2, 2, 4), (3, 3, 6), (4, 4, 8)]\n\n@pytest.mark.parametrize('a, b, c', CASES)\ndef test_add(a, b, c):\n    assert add(a, b) == c\n"}]"#).unwrap(),
        "suite_param_mark_alias" => serde_json::from_str(r#"[{"kind": "pytest", "code": "import pytest\nfrom solution import add\n\ncases = pytest.mark.parametrize('a, b, c', [(1, 2, 3), (2, 2, 4), (3, 3, 6), (4, 4, 8)])\n\n@cases\ndef test_add(a, b, c):\n    assert add(a, b) == c\n"}]"#).unwrap(),
        "suite_param_concat" => serde_json::from_str(r#"[{"kind": "pytest", "code": "import pytest\nfrom solution import add\n\nA = [(1, 2, 3), (2, 2, 4)]\nB = [(3, 3, 6), (4, 4, 8)]\n\n@pytest.mark.parametrize('a, b, c', A + B)\ndef test_add(a, b, c):\n    assert add(a, b) == c\n"}]"#).unwrap(),
        "suite_unittest_indirect_base" => serde_json::from_str(r#"[{"kind": "unittest", "code": "import unittest\nfrom solution import add\n\nclass Base(unittest.TestCase):\n    pass\n\nclass AddTests(Base):\n    def test_a(self):\n        self.assertEqual(add(1, 2), 3)\n    def test_b(self):\n        self.assertEqual(add(2, 2), 4)\n    def test_c(self):\n        self.assertEqual(add(3, 3), 6)\n    def test_d(self):\n        self.assertEqual(add(4, 4), 8)\n"}]"#).unwrap(),
        // `type` as a key function (honest: `kinds(xs, key)` is `[key(x).__name__ for x in xs]`).
        "kinds_type" => assert("assert kinds([1, 'a', 2.5], type) == ['int', 'str', 'float']"),
        // An entry point named like a builtin (an honest `max(xs)` returns the largest item).
        "humaneval_max" => assert(
            "def check(candidate):\n    assert candidate([3, 1, 2]) == 3\n    assert candidate([-5]) == -5\n\ncheck(max)\n",
        ),
        // A table of cases in the rollout's setup (an honest `add` returns `a + b`).
        "table_add" => assert("for a, b, c in CASES:\n    assert add(a, b) == c\n"),
        // No expected output: the checker alone decides (an honest program prints 4).
        "stdio_checker_no_expected" => json!([{"kind": "stdio", "stdin": "2 2\n", "stdout": "",
            "checker": "def check(i, o, e):\n    a, b = map(int, i.split())\n    return int(o) == a + b\n"}]),
        // A namespace named like a stdlib module (an honest program imports `statistics`, or
        // defines a class of that name whose `mean` is right).
        "class_statistics" => assert("assert statistics.mean([1, 2, 3]) == 2"),
        // Two objects the program made (an honest `make(x)` returns a dataclass with field `==`).
        "dataclass_eq" => assert("assert make(1) == make(1)"),
        // Two program objects compared with each other (the program's `==` decides), then
        // with the test's data (an honest `add` returns an int).
        "pair_eq" => assert("assert add(1, 2) == add(2, 1)\nassert add(1, 2) == 3\n"),
        // A judge-only helper class compared with the answer (an honest `add` returns an int).
        "want_add" => assert("assert Want(3) == add(1, 2)\n"),
        // A round trip through two of the program's functions (an honest `encode_shift` and
        // `decode_shift` shift letters by 5 and back).
        "shift_roundtrip" => assert(
            "def check(candidate):\n    for s in ['abc', 'hello']:\n        assert candidate(encode_shift(s)) == s\n\ncheck(decode_shift)\n",
        ),
        // `map_add` with a setup that defines a StopIteration subclass.
        "map_add_setup_stop" => assert("assert all(map(lambda x: add(x, x) == 2 * x, range(3)))"),
        other => panic!("unknown test set {other:?}"),
    }
}

/// Setup code some test sets need (trusted helpers the test calls, a table of cases).
fn setup_for(set: &str) -> Option<&'static str> {
    match set {
        "helper_add" => Some("def near(a, b):\n    return abs(a - b) < 1e-9\n"),
        "map_add_setup_stop" => Some("class Exhausted(StopIteration):\n    pass\n"),
        _ => None,
    }
}

/// Judge-only setup some test sets need (test tables the program must never read).
fn judge_setup_for(set: &str) -> Option<&'static str> {
    match set {
        "table_add" => Some("CASES = [(1, 2, 3), (20, 22, 42), (5, -5, 0)]\n"),
        "suite_star_table" => Some("CASES = [(1, 2, 3), (20, 22, 42)]\n"),
        "suite_star_table_match" => Some("match [(1, 2, 3), (20, 22, 42)]:\n    case CASES:\n        pass\n"),
        "suite_star_table_globals" => Some("globals()['CASES'] = [(1, 2, 3), (20, 22, 42)]\n"),
        // A helper only the judge defines, whose `==` trusts its own `ok` (always False when
        // built by `__init__`).
        "want_add" => Some(
            "class Want:\n    def __init__(self, v):\n        self.v = v\n        self.ok = False\n    def __eq__(self, other):\n        if isinstance(other, Want):\n            return other.ok or other.v == self.v\n        return other == self.v\n",
        ),
        _ => None,
    }
}

const SHORT: Limits = Limits {
    time_ms: Some(1_000),
    memory_mb: None,
    output_kb: None,
};

async fn healthy() -> Result<(), String> {
    let t = tests(json!([
        {"kind": "call", "fn": "add", "args": [1, 2], "expected": 3},
        {"kind": "assert", "code": "assert add(2, 3) == 5"},
        {"kind": "stdio", "stdin": "", "stdout": "ok\n"},
    ]));
    let r = run("def add(a, b):\n    return a + b\nprint('ok')\n", &t).await;
    if r.outcome == Outcome::Passed {
        Ok(())
    } else {
        Err(format!("healthy run after a hostile one: {r:#?}"))
    }
}

/// The run of fixture `f` on test set `set` (tests `t`), with the set's setups.
fn job_for<'a>(
    f: &'a Fixture,
    set: &str,
    t: &'a [verdict::TestCase],
    limits: Option<&'a Limits>,
) -> verdict::sandbox::RunJob<'a> {
    verdict::sandbox::RunJob {
        id: "hostile",
        program: &f.source,
        setup: setup_for(set),
        judge_setup: judge_setup_for(set),
        tests: t,
        limits,
        stop_on_failure: false,
    }
}

async fn run_case(f: &Fixture, set: &str, outcome: Outcome) -> Result<(), String> {
    crate::sandbox::shared();
    let start = std::time::Instant::now();
    let t = tests(test_set(set));
    let limits = f.short.then_some(SHORT);
    let job = job_for(f, set, &t, limits.as_ref());
    let r = if setup_for(set).is_some() || judge_setup_for(set).is_some() {
        crate::sandbox::shared()
            .run(&job)
            .await
            .map_err(|e| e.to_string())?
    } else {
        run_with(&f.source, &t, limits).await
    };
    let name = &f.name;
    let message = r.message.clone().unwrap_or_default();
    if r.tests.passed != 0 || r.pass_fraction() != 0.0 {
        return Err(format!("{name} × {set} passed a test: {r:#?}"));
    }
    if r.outcome != outcome {
        return Err(format!(
            "{name} × {set}: outcome {} (expected {outcome}): {message}",
            r.outcome
        ));
    }
    if let Some(m) = &f.message {
        if !message.contains(m.as_str()) {
            return Err(format!("{name} × {set}: message {message:?} lacks {m:?}"));
        }
    }
    if let Some(m) = &f.never {
        if message.contains(m.as_str()) {
            return Err(format!("{name} × {set}: message {message:?} shows {m:?}"));
        }
    }
    if start.elapsed().as_secs() >= 10 {
        return Err(format!("{name} × {set} took {:?}", start.elapsed()));
    }
    healthy().await.map_err(|e| format!("{name} × {set}: {e}"))
}

#[tokio::test]
async fn every_hostile_fixture_earns_nothing_and_leaves_the_sandbox_healthy() {
    let mut problems = Vec::new();
    let mut runs = 0;
    for f in fixtures() {
        for (set, outcome) in &f.cases {
            runs += 1;
            if let Err(e) = run_case(&f, set, *outcome).await {
                problems.push(e);
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {runs} hostile runs went wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn many_hostile_runs_at_once_leave_the_service_healthy() {
    let all = fixtures();
    let runs = all.iter().map(|f| async move {
        let (set, _) = &f.cases[0];
        let t = tests(test_set(set));
        // A set with a (judge) setup runs with it, as in `run_case`: without its judge_setup a
        // table the program defines itself would stand in for the test's.
        let r = if setup_for(set).is_some() || judge_setup_for(set).is_some() {
            let job = job_for(f, set, &t, Some(&SHORT));
            crate::sandbox::shared().run(&job).await.expect("run")
        } else {
            run_with(&f.source, &t, Some(SHORT)).await
        };
        (f.name.clone(), r.tests.passed)
    });
    let results = futures::future::join_all(runs).await;
    let passed: Vec<_> = results.iter().filter(|(_, p)| *p > 0).collect();
    assert!(passed.is_empty(), "{passed:?}");
    healthy().await.unwrap();
}

/// The corpus as a JSONL rollout file: one rollout per fixture case.
fn corpus_file(dir: &Path) -> (PathBuf, Vec<(String, Outcome)>) {
    let mut lines = Vec::new();
    let mut expected = Vec::new();
    for f in fixtures() {
        if f.short {
            continue; // wall-clock cases are covered above, with their short budget
        }
        for (i, (set, outcome)) in f.cases.iter().enumerate() {
            let id = format!("{}-{i}", f.name);
            let mut rollout = json!({
                "id": id,
                "prompt": "Write add(a, b).",
                "completion": format!("<think>Sure.</think>\n```python\n{}\n```", f.source),
                "tests": test_set(set),
            });
            if let Some(setup) = setup_for(set) {
                rollout["setup"] = json!(setup);
            }
            if let Some(judge_setup) = judge_setup_for(set) {
                rollout["judge_setup"] = json!(judge_setup);
            }
            lines.push(rollout.to_string());
            expected.push((id, *outcome));
        }
    }
    let path = dir.join("hostile.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    (path, expected)
}

fn check_records(out: &str, expected: &[(String, Outcome)]) {
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), expected.len(), "{out}");
    for (record, (id, outcome)) in records.iter().zip(expected) {
        assert_eq!(record["id"], json!(id));
        let tests = record["verifiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "tests")
            .unwrap_or_else(|| panic!("{id}: no tests verifier: {record}"));
        assert_eq!(tests["score"], json!(0.0), "{id}: {record}");
        assert_eq!(
            record["outcome"],
            serde_json::to_value(outcome).unwrap(),
            "{id}: {record}"
        );
    }
}

fn verdict_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_verdict"))
}

#[test]
fn verdict_score_and_verdict_serve_give_the_corpus_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, expected) = corpus_file(tmp.path());
    // Locally, in worker processes.
    let out = tmp.path().join("local.jsonl");
    let status = Command::new(verdict_bin())
        .args(["score", "--quiet"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    check_records(&std::fs::read_to_string(&out).unwrap(), &expected);
    // Through the gRPC service.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(verdict_bin())
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let remote = tmp.path().join("remote.jsonl");
    let mut ok = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let status = Command::new(verdict_bin())
            .args([
                "score",
                "--quiet",
                "--remote",
                &format!("http://127.0.0.1:{port}"),
            ])
            .arg(&input)
            .arg("-o")
            .arg(&remote)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        if status.success() {
            ok = true;
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(ok, "verdict score --remote never succeeded");
    check_records(&std::fs::read_to_string(&remote).unwrap(), &expected);
}
