//! The prompt that asks for tests, and which shape of test to ask for.
//!
//! A template is text with placeholders: `{problem}` (the rollout's prompt), `{n}`,
//! `{entry_point}` (empty for stdio problems) and `{format}` (the shape's instructions below).
//! The built-in template has version [`DEFAULT_VERSION`]; a template of one's own needs a
//! version of its own (`testgen.template_version`), because the version is part of the cache
//! key: changing the words must not reuse tests generated from the old ones.

use serde::{Deserialize, Serialize};

/// Version of the built-in template.
pub const DEFAULT_VERSION: &str = "v1";

/// The built-in template.
pub const DEFAULT_TEMPLATE: &str = "\
Write {n} independent unit tests for the programming problem below. Each test must be \
deterministic (no randomness, no time, no files, no network), check one concrete input \
against its exact expected result, and be correct for every correct solution.

{format}

Problem:
{problem}
";

/// The system message sent before the template.
pub const SYSTEM: &str = "You are a careful software tester. You write small, correct unit \
tests and nothing else.";

/// Which shape of test a problem gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// `assert f(…) == …` lines, for problems that ask for a function.
    Assert,
    /// `case(stdin=…, stdout=…)` calls, for problems that read stdin and print.
    Stdio,
}

impl Shape {
    /// `assert` or `stdio`.
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Assert => "assert",
            Shape::Stdio => "stdio",
        }
    }
}

/// The `testgen.shape` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShapeChoice {
    /// Infer from the problem ([`infer_shape`]).
    #[default]
    Auto,
    /// Always assert tests.
    Assert,
    /// Always stdin/stdout pairs.
    Stdio,
}

/// The shape for a problem: with an `entry_point`, asserts on that function; without one,
/// stdio when the prompt speaks of standard input or reading input, else asserts when it shows
/// a `def`, else stdio. Returns the shape and the function name for asserts.
pub fn infer_shape(prompt: &str, entry_point: Option<&str>) -> (Shape, Option<String>) {
    if let Some(ep) = entry_point.filter(|e| !e.is_empty()) {
        return (Shape::Assert, Some(ep.to_string()));
    }
    let lower = prompt.to_lowercase();
    let io_words = [
        "stdin",
        "standard input",
        "input format",
        "read from input",
        "reads from input",
        "first line of input",
        "the input contains",
    ];
    if io_words.iter().any(|w| lower.contains(w)) {
        return (Shape::Stdio, None);
    }
    match defined_function(prompt) {
        Some(name) => (Shape::Assert, Some(name)),
        None => (Shape::Stdio, None),
    }
}

/// The first `def NAME(` in the text.
fn defined_function(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("def ")?;
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty() && rest[name.len()..].trim_start().starts_with('(')).then_some(name)
    })
}

/// The shape's instructions (`{format}`).
pub fn format_instructions(shape: Shape, entry_point: Option<&str>) -> String {
    match shape {
        Shape::Assert => {
            let f = entry_point.unwrap_or("solution");
            format!(
                "Write each test as one line `assert {f}(...) == expected`, calling `{f}` \
                 directly with literal arguments. Put all the tests in a single ```python code \
                 block, one assert per line, with no imports, helpers or other code."
            )
        }
        Shape::Stdio => "The program reads standard input and writes standard output. Write \
             each test as one line `case(stdin=\"...\", stdout=\"...\")` with Python string \
             literals (use \\n for line breaks) giving the whole input and the exact expected \
             output. Put all the tests in a single ```python code block, one case per line."
            .to_string(),
    }
}

/// Fill `template` for one problem.
pub fn render(
    template: &str,
    problem: &str,
    n: usize,
    shape: Shape,
    entry_point: Option<&str>,
) -> String {
    // `{problem}` last, so braces inside the problem text are never taken for placeholders.
    template
        .replace("{n}", &n.to_string())
        .replace("{entry_point}", entry_point.unwrap_or(""))
        .replace("{format}", &format_instructions(shape, entry_point))
        .replace("{problem}", problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_follows_the_entry_point_then_the_words() {
        assert_eq!(
            infer_shape("anything", Some("add")),
            (Shape::Assert, Some("add".into()))
        );
        assert_eq!(
            infer_shape("Read two numbers from stdin and print their sum.", None).0,
            Shape::Stdio
        );
        assert_eq!(
            infer_shape("Complete:\ndef is_odd(n: int) -> bool:\n", None),
            (Shape::Assert, Some("is_odd".into()))
        );
        assert_eq!(infer_shape("Print hello.", None).0, Shape::Stdio);
    }

    #[test]
    fn rendering_fills_every_placeholder_and_leaves_the_problem_alone() {
        let text = render(
            DEFAULT_TEMPLATE,
            "Use {n} braces {}",
            5,
            Shape::Assert,
            Some("f"),
        );
        assert!(text.contains("Write 5 independent"), "{text}");
        assert!(text.contains("assert f(...) == expected"), "{text}");
        assert!(text.contains("Use {n} braces {}"), "{text}");
    }
}
