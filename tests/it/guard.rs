//! The host-side assertion guard parses to the same Python AST as the harness's own rewrite, on
//! every assert test of the fixtures and on a set of awkward constructs (checked with the host's
//! `python3`, which `scripts/test.sh` already requires).

use std::process::Command;

use verdict::sandbox::guard::guard;
use verdict::TestCase;

/// Constructs where a textual rewrite could go wrong: precedence, chains, parentheses, line
/// continuations, comments, f-strings, lambdas, comprehensions, nested conditions.
const AWKWARD: &[&str] = &[
    "assert f(1) == 2\n",
    "assert f(1) == 2, 'message'\n",
    "assert (f(1) ==\n        2), \\\n    'm'\n",
    "assert a < b <= c != d\n",
    "assert x not in y and z is not None\n",
    "assert not a == b\n",
    "assert -x ** 2 == -(x ** 2)\n",
    "assert 2 ** -1 == 0.5\n",
    "assert a + b * c - d / e // f % g @ h == 0\n",
    "assert (a | b) ^ (c & d) << 1 >> 2 == ~e\n",
    "assert a and b and c or d and e\n",
    "assert a and (b and c) and d\n",
    "assert (a or b) and not c\n",
    "x = 1 if a == b else 2 if c else 3\n",
    "if a == 1:\n    pass\nelif b:\n    pass\nelse:\n    pass\n",
    "while i < 10:\n    i = i + 1\nelse:\n    pass\n",
    "assert f'{a + b}' == \"3\"\n",
    "assert [x * 2 for x in xs if x > 1] == [4]\n",
    "assert all(x == y for x, y in zip(a, b))\n",
    "check = lambda c: c(1) == 2\nassert check(f)\n",
    "def check(candidate):\n    assert candidate([1, 2]) == [2, 1]  # comment\n    \
     assert abs(candidate([4])[0] - 8) < 1e-9, 'close'\n\ncheck(f)\n",
    "assert (\n    f(1)  # first\n    == [\n        1,  # one\n    ]\n)\n",
    "assert x == 1; assert y != 2\n",
    "assert (y := f(3)) == 4 and y > 0\n",
    "assert {1: a == b}[1] is True\n",
    "assert d[k] in (1, 2) or d.get(k) is None\n",
    "x += 1\nassert x - 1 == 0\n",
    "assert f(*args, **kw) == g(x=1 + 2)\n",
    "for i in range(3):\n    assert f(i) == i if i else True\n",
    "try:\n    assert f(0) == 0\nexcept AssertionError:\n    raise\n",
    "class T:\n    def test(self):\n        assert self.f() == 1\n",
];

#[test]
fn code_tree_sitter_cannot_parse_is_left_to_the_guest() {
    // A backslash continuation before an operator trips tree-sitter-python; the guest guards
    // such code with `ast` instead.
    assert_eq!(guard("assert a \\\n    == b\n"), None);
}

#[test]
fn host_guard_matches_the_harness_guard() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut sources: Vec<String> = AWKWARD.iter().map(|s| s.to_string()).collect();
    let problems = std::fs::read_to_string(format!("{root}/fixtures/problems/problems.jsonl"))
        .expect("fixtures/problems/problems.jsonl");
    for line in problems.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let tests: Vec<TestCase> = serde_json::from_value(value["tests"].clone()).unwrap();
        for test in tests {
            if let TestCase::Assert { code, .. } = test {
                sources.push(code);
            }
        }
    }
    assert!(sources.len() > 200, "the corpus has assert tests");
    let pairs: Vec<(String, String)> = sources
        .iter()
        .map(|s| {
            let rewritten = guard(s).unwrap_or_else(|| panic!("tree-sitter parses {s:?}"));
            (s.clone(), rewritten)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairs.json");
    std::fs::write(&path, serde_json::to_vec(&pairs).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(format!("{root}/tests/python/guard_equivalence.py"))
        .arg(&path)
        .output()
        .expect("python3 runs (scripts/test.sh needs it too)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{0}/{0} equivalent", pairs.len())),
        "{stdout}"
    );
}
