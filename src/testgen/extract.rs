//! Tests picked out of whatever the model wrote: prose, several fences, a reasoning block,
//! truncated output.
//!
//! The code is read from the answer's fenced blocks (`python`, `py` or untagged; any fence
//! when there is none of those; the whole text when there is no fence at all), after the last
//! `</think>`. Each block is parsed with tree-sitter-python and its top-level statements are
//! judged one by one:
//!
//! - **assert shape**: an `assert` statement that parses cleanly and calls the entry point is a
//!   test; the rest is dropped, counted by [`DropReason`].
//! - **stdio shape**: a call `case(stdin="…", stdout="…")` whose two arguments are plain
//!   string literals is a test.
//!
//! Duplicates and tests past N are dropped too. The answer is cut at [`MAX_ANSWER_BYTES`] and
//! each block's parse at [`PARSE_BUDGET`], so the work is bounded whatever the model sends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};
use tree_sitter::Node;

use super::prompt::Shape;
use crate::rollout::TestCase;

/// The most of an answer that is read; the rest is ignored (a test cut in two is then dropped).
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The longest one block's parse may take.
pub const PARSE_BUDGET: Duration = Duration::from_millis(500);

/// Why a candidate test was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// It does not parse (often: the answer was cut off mid-test).
    Syntax,
    /// A statement that is not a test (an import, a definition, a print, prose).
    NotATest,
    /// An assert that never calls the entry point.
    NoCall,
    /// A `case(...)` without exactly a `stdin` and a `stdout` argument.
    Malformed,
    /// A string that is not a plain literal (f-string, bytes, concatenation, unknown escape).
    UnsupportedLiteral,
    /// The same test again.
    Duplicate,
    /// More tests than were asked for.
    Surplus,
    /// The answer had no code at all.
    NoCode,
    /// The reference solution fails it (validation).
    ReferenceFails,
    /// It passed on one run and failed on another with a different seed (validation).
    Nondeterministic,
    /// Outside the largest agreeing cluster of the problem's rollouts (validation).
    Disagreement,
}

impl DropReason {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Syntax => "syntax",
            DropReason::NotATest => "not_a_test",
            DropReason::NoCall => "no_call",
            DropReason::Malformed => "malformed",
            DropReason::UnsupportedLiteral => "unsupported_literal",
            DropReason::Duplicate => "duplicate",
            DropReason::Surplus => "surplus",
            DropReason::NoCode => "no_code",
            DropReason::ReferenceFails => "reference_fails",
            DropReason::Nondeterministic => "nondeterministic",
            DropReason::Disagreement => "disagreement",
        }
    }
}

impl DropReason {
    /// Why a test with this reason was dropped, in a sentence (for `verdict tests show`).
    pub fn explain(self) -> &'static str {
        match self {
            DropReason::Syntax => "it does not parse (often: the answer was cut off mid-test)",
            DropReason::NotATest => "a statement that is not a test",
            DropReason::NoCall => "an assert that never calls the entry point",
            DropReason::Malformed => "a case(...) without exactly a stdin and a stdout argument",
            DropReason::UnsupportedLiteral => "a string that is not a plain literal",
            DropReason::Duplicate => "the same test again",
            DropReason::Surplus => "more tests than were asked for",
            DropReason::NoCode => "the answer had no code at all",
            DropReason::ReferenceFails => "the reference solution fails it",
            DropReason::Nondeterministic => {
                "its result changed between two runs under different seeds"
            }
            DropReason::Disagreement => "outside the largest agreeing cluster of rollouts",
        }
    }
}

/// The most dropped candidates an [`Extraction`] keeps the text of (the counts stay exact).
pub const MAX_REJECTED: usize = 64;

/// The most of a dropped candidate's text that is kept.
pub const MAX_REJECTED_TEXT: usize = 400;

/// A candidate dropped while reading the answer: its text (cut at [`MAX_REJECTED_TEXT`]
/// bytes) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The candidate's source, as the model wrote it (possibly cut).
    pub text: String,
    /// Why it was dropped.
    pub reason: DropReason,
}

/// The tests read from one answer, and the candidates dropped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extraction {
    /// The tests, in the answer's order.
    pub tests: Vec<TestCase>,
    /// Dropped candidates by reason.
    pub dropped: BTreeMap<DropReason, usize>,
    /// The first [`MAX_REJECTED`] dropped candidates themselves, in the answer's order.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

impl Extraction {
    fn drop(&mut self, reason: DropReason, text: &str) {
        *self.dropped.entry(reason).or_default() += 1;
        if self.rejected.len() < MAX_REJECTED {
            let cut_text = cut(text.trim(), MAX_REJECTED_TEXT);
            let text = if cut_text.len() < text.trim().len() {
                format!("{cut_text}…")
            } else {
                cut_text.to_string()
            };
            self.rejected.push(Rejected { text, reason });
        }
    }
}

/// Read at most `n` tests of `shape` for `entry_point` out of `answer`.
pub fn extract_tests(
    answer: &str,
    shape: Shape,
    entry_point: Option<&str>,
    n: usize,
) -> Extraction {
    let mut out = Extraction::default();
    let answer = cut(answer, MAX_ANSWER_BYTES);
    let answer = answer
        .rfind("</think>")
        .map_or(answer, |i| &answer[i + "</think>".len()..]);
    let blocks = code_blocks(answer);
    if blocks.iter().all(|b| b.trim().is_empty()) {
        out.drop(DropReason::NoCode, answer);
        return out;
    }
    let mut seen = std::collections::HashSet::new();
    for block in &blocks {
        let Some(tree) = crate::pysource::syntax::parse_until(block, Instant::now() + PARSE_BUDGET)
        else {
            out.drop(DropReason::Syntax, block);
            continue;
        };
        let src = block.as_bytes();
        let root = tree.root_node();
        let mut cursor = root.walk();
        for node in root.children(&mut cursor) {
            let test = match node.kind() {
                "comment" => continue,
                _ if node.is_error() || node.is_missing() || node.has_error() => {
                    Err(DropReason::Syntax)
                }
                "assert_statement" if shape == Shape::Assert => {
                    read_assert(node, src, entry_point.unwrap_or("solution"))
                }
                "expression_statement" if shape == Shape::Stdio => read_case(node, src),
                _ => Err(DropReason::NotATest),
            };
            match test {
                Ok(test) if seen.contains(&test_key(&test)) => {
                    out.drop(DropReason::Duplicate, text(node, src))
                }
                Ok(_) if out.tests.len() >= n => out.drop(DropReason::Surplus, text(node, src)),
                Ok(test) => {
                    seen.insert(test_key(&test));
                    out.tests.push(test);
                }
                Err(reason) => out.drop(reason, text(node, src)),
            }
        }
    }
    out
}

fn test_key(t: &TestCase) -> String {
    serde_json::to_string(t).unwrap_or_default()
}

/// The first `max` bytes of `s`, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The answer's code: its Python (or untagged) fences, else every fence, else the whole text.
/// An unclosed fence runs to the end (a truncated answer).
fn code_blocks(text: &str) -> Vec<String> {
    let mut python = Vec::new();
    let mut other = Vec::new();
    let mut current: Option<(bool, String)> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let is_python = match &kind {
                    CodeBlockKind::Fenced(lang) => {
                        let lang = lang.split_whitespace().next().unwrap_or("");
                        matches!(
                            lang.to_ascii_lowercase().as_str(),
                            "" | "python" | "py" | "python3"
                        )
                    }
                    CodeBlockKind::Indented => true,
                };
                current = Some((is_python, String::new()));
            }
            Event::Text(t) => {
                if let Some((_, buf)) = current.as_mut() {
                    buf.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((is_python, buf)) = current.take() {
                    if is_python {
                        python.push(buf);
                    } else {
                        other.push(buf);
                    }
                }
            }
            _ => {}
        }
    }
    if !python.is_empty() {
        python
    } else if !other.is_empty() {
        other
    } else {
        vec![text.to_string()]
    }
}

fn text<'a>(node: Node<'_>, src: &'a [u8]) -> &'a str {
    std::str::from_utf8(&src[node.byte_range()]).unwrap_or("")
}

/// An assert calling `entry_point` somewhere in its condition.
fn read_assert(node: Node<'_>, src: &[u8], entry_point: &str) -> Result<TestCase, DropReason> {
    // Iterative walk: the depth of the tree is the model's choice.
    let mut stack = vec![node];
    let mut calls = false;
    while let Some(n) = stack.pop() {
        if n.kind() == "call"
            && n.child_by_field_name("function")
                .is_some_and(|f| text(f, src) == entry_point)
        {
            calls = true;
            break;
        }
        let mut c = n.walk();
        stack.extend(n.children(&mut c));
    }
    if !calls {
        return Err(DropReason::NoCall);
    }
    Ok(TestCase::Assert {
        code: text(node, src).to_string(),
        timing: false,
    })
}

/// `case(stdin="…", stdout="…")`.
fn read_case(node: Node<'_>, src: &[u8]) -> Result<TestCase, DropReason> {
    let call = node
        .named_child(0)
        .filter(|c| c.kind() == "call" && node.named_child_count() == 1)
        .ok_or(DropReason::NotATest)?;
    if call
        .child_by_field_name("function")
        .is_none_or(|f| text(f, src) != "case")
    {
        return Err(DropReason::NotATest);
    }
    let args = call
        .child_by_field_name("arguments")
        .ok_or(DropReason::Malformed)?;
    let (mut stdin, mut stdout) = (None, None);
    let mut cursor = args.walk();
    for arg in args.named_children(&mut cursor) {
        if arg.kind() == "comment" {
            continue;
        }
        if arg.kind() != "keyword_argument" {
            return Err(DropReason::Malformed);
        }
        let name = arg.child_by_field_name("name").map(|n| text(n, src));
        let value = arg
            .child_by_field_name("value")
            .ok_or(DropReason::Malformed)?;
        let slot = match name {
            Some("stdin") => &mut stdin,
            Some("stdout") => &mut stdout,
            _ => return Err(DropReason::Malformed),
        };
        if slot.is_some() {
            return Err(DropReason::Malformed);
        }
        if value.kind() != "string" {
            return Err(DropReason::UnsupportedLiteral);
        }
        *slot = Some(string_literal(text(value, src)).ok_or(DropReason::UnsupportedLiteral)?);
    }
    match (stdin, stdout) {
        (Some(stdin), Some(stdout)) => Ok(TestCase::Stdio {
            stdin,
            stdout,
            timing: false,
            compare: None,
            checker: None,
        }),
        _ => Err(DropReason::Malformed),
    }
}

/// The value of a plain Python string literal (optional `r`/`u` prefix, any quotes, the common
/// escapes); `None` for f-strings, bytes and escapes it does not know.
pub fn string_literal(lit: &str) -> Option<String> {
    let quote_at = lit.find(['"', '\''])?;
    let prefix = lit[..quote_at].to_ascii_lowercase();
    let raw = match prefix.as_str() {
        "" | "u" => false,
        "r" => true,
        _ => return None,
    };
    let body = &lit[quote_at..];
    let q = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|q| body.len() >= 2 * q.len() && body.starts_with(q) && body.ends_with(q))?;
    let inner = &body[q.len()..body.len() - q.len()];
    if raw {
        return Some(inner.to_string());
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            '\n' => {}
            'x' => out.push(hex_char(&mut chars, 2)?),
            'u' => out.push(hex_char(&mut chars, 4)?),
            'U' => out.push(hex_char(&mut chars, 8)?),
            _ => return None,
        }
    }
    Some(out)
}

fn hex_char(chars: &mut std::str::Chars<'_>, digits: usize) -> Option<char> {
    let hex: String = chars.by_ref().take(digits).collect();
    if hex.len() != digits {
        return None;
    }
    char::from_u32(u32::from_str_radix(&hex, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(e: &Extraction) -> Vec<&str> {
        e.tests
            .iter()
            .map(|t| match t {
                TestCase::Assert { code, .. } => code.as_str(),
                _ => "",
            })
            .collect()
    }

    #[test]
    fn asserts_are_read_from_prose_and_several_fences() {
        let answer = "Here are tests:\n```python\nassert add(1, 2) == 3\nimport math\n```\n\
                      And more:\n```py\nassert add(0, 0) == 0  # zero\nassert True\n```\n\
                      ```text\nassert add(9, 9) == 18\n```\n";
        let e = extract_tests(answer, Shape::Assert, Some("add"), 8);
        assert_eq!(
            codes(&e),
            ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]
        );
        assert_eq!(e.dropped[&DropReason::NotATest], 1);
        assert_eq!(e.dropped[&DropReason::NoCall], 1);
    }

    #[test]
    fn a_truncated_answer_keeps_its_whole_tests() {
        let answer = "```python\nassert add(1, 2) == 3\nassert add(2, 2) == 4\nassert add(5, ";
        let e = extract_tests(answer, Shape::Assert, Some("add"), 8);
        assert_eq!(
            codes(&e),
            ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]
        );
        assert_eq!(e.dropped[&DropReason::Syntax], 1);
    }

    #[test]
    fn garbage_duplicates_and_surplus_are_counted() {
        let e = extract_tests("\u{0}\u{1} lorem ipsum ¿¿", Shape::Assert, Some("f"), 4);
        assert!(e.tests.is_empty());
        assert!(!e.dropped.is_empty());
        let e = extract_tests("", Shape::Assert, Some("f"), 4);
        assert_eq!(e.dropped[&DropReason::NoCode], 1);
        let many = "```python\nassert f(1) == 1\nassert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3\n```";
        let e = extract_tests(many, Shape::Assert, Some("f"), 2);
        assert_eq!(e.tests.len(), 2);
        assert_eq!(e.dropped[&DropReason::Duplicate], 1);
        assert_eq!(e.dropped[&DropReason::Surplus], 1);
        assert_eq!(
            e.rejected,
            [
                Rejected {
                    text: "assert f(1) == 1".into(),
                    reason: DropReason::Duplicate
                },
                Rejected {
                    text: "assert f(3) == 3".into(),
                    reason: DropReason::Surplus
                }
            ],
            "each dropped candidate is kept with its reason"
        );
        let long = format!("```python\nprint('{}')\n```", "x".repeat(5000));
        let e = extract_tests(&long, Shape::Assert, Some("f"), 2);
        assert_eq!(e.rejected[0].reason, DropReason::NotATest);
        assert!(e.rejected[0].text.len() <= MAX_REJECTED_TEXT + '…'.len_utf8());
        let spam = "```python\n".to_string() + &"print(1)\n".repeat(500) + "```";
        let e = extract_tests(&spam, Shape::Assert, Some("f"), 2);
        assert_eq!(e.dropped[&DropReason::NotATest], 500);
        assert_eq!(e.rejected.len(), MAX_REJECTED, "the texts kept are bounded");
    }

    #[test]
    fn stdio_cases_are_read_with_their_escapes() {
        let answer = "</think>\n```python\ncase(stdin=\"1 2\\n\", stdout='3\\n')\n\
                      case(stdout=\"x\", stdin=r\"a\\n\")\ncase(stdin=f\"{x}\", stdout=\"\")\n\
                      case(stdin=\"1\")\nprint(1)\n```";
        let e = extract_tests(answer, Shape::Stdio, None, 8);
        assert_eq!(
            e.tests,
            vec![
                TestCase::Stdio {
                    stdin: "1 2\n".into(),
                    stdout: "3\n".into(),
                    timing: false,
                    compare: None,
                    checker: None,
                },
                TestCase::Stdio {
                    stdin: "a\\n".into(),
                    stdout: "x".into(),
                    timing: false,
                    compare: None,
                    checker: None,
                },
            ]
        );
        assert_eq!(e.dropped[&DropReason::UnsupportedLiteral], 1);
        assert_eq!(e.dropped[&DropReason::Malformed], 1);
        assert_eq!(e.dropped[&DropReason::NotATest], 1);
    }

    #[test]
    fn string_literals() {
        assert_eq!(string_literal("'a\\tb'").as_deref(), Some("a\tb"));
        assert_eq!(string_literal("\"\"\"x\ny\"\"\"").as_deref(), Some("x\ny"));
        assert_eq!(string_literal("'\\x41\\u00e9'").as_deref(), Some("Aé"));
        assert_eq!(string_literal("b'x'"), None);
        assert_eq!(string_literal("'\\q'"), None);
        assert_eq!(string_literal("'"), None);
    }
}
