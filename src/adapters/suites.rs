//! Test modules in a dataset's `test` field, read as the dataset's harness runs them:
//! BigCodeBench's `unittest.TestCase` classes (appended to the solution, so the program's names
//! are globals) and KodCode's pytest modules (`from solution import …` and `def test_…`).

use super::Adapted;
use crate::rollout::{SuiteStyle, TestCase};

/// The suite style of a `test` field that is a test module and not HumanEval's `check`, or
/// `None`: a top-level class deriving from `unittest.TestCase` (or `TestCase`) is unittest; a
/// top-level `def test…` or `class Test…` is pytest.
pub(super) fn style_of(test: &str) -> Option<SuiteStyle> {
    let top = |prefix: &str| test.lines().any(|l| l.starts_with(prefix));
    if top("def check(") {
        return None;
    }
    let unittest = test.lines().any(|l| {
        l.starts_with("class ") && (l.contains("(unittest.TestCase)") || l.contains("(TestCase)"))
    });
    if unittest {
        return Some(SuiteStyle::Unittest);
    }
    (top("def test") || top("class Test")).then_some(SuiteStyle::Pytest)
}

/// One test module of that style, the program importable as `solution`.
pub(super) fn adapt(test: &str, style: SuiteStyle) -> Adapted {
    Adapted {
        tests: vec![TestCase::Suite {
            style,
            code: test.to_string(),
            module: None,
        }],
        setup: None,
        source: style.name(),
        ..Adapted::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_modules_are_told_from_humaneval_checks() {
        let bigcodebench = "import unittest\nclass TestCases(unittest.TestCase):\n    def test_case_1(self):\n        self.assertEqual(task_func(1), 2)\n";
        assert_eq!(style_of(bigcodebench), Some(SuiteStyle::Unittest));
        let kodcode = "from solution import add\n\ndef test_add():\n    assert add(1, 2) == 3\n";
        assert_eq!(style_of(kodcode), Some(SuiteStyle::Pytest));
        let humaneval = "def check(candidate):\n    assert candidate(1) == 2\n";
        assert_eq!(style_of(humaneval), None);
        assert_eq!(style_of("assert f(1) == 2\n"), None);
    }
}
