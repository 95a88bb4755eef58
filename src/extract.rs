//! Completion → [`Answer`]: split the reasoning from the answer and find the code to run.
//!
//! The rules follow R1-style RL practice:
//! - text inside `<think>…</think>` is reasoning and is never executed. A completion that only
//!   closes the tag (`…</think>`, common when the prompt template opens it) treats everything before
//!   the close as reasoning; one that opens and never closes is all reasoning.
//! - code comes from fenced markdown blocks in the answer: the last block tagged `python`/`py`
//!   (`python3`, `py3` too), else the last untagged block that parses as Python, else the last block
//!   of any language (so the parse check can name the language);
//! - a `>>>` transcript block is never the code, and a trailing block that defines nothing
//!   never replaces the solution before it ([`with_solution`]): a stdio driver that calls the
//!   solution (`print(solve(input()))`) is joined to it, a usage example (`print(f(2))`) is
//!   left out;
//! - with no fences, the whole answer is the candidate (a bare-code completion);
//! - a tag inside the answer's code is code, not a tag: `s = "</think>"` in the answer's fenced
//!   block (or in an answer that is bare Python) does not end the reasoning again.
//!
//! Extraction is linear in the size of the completion (one pass for the tags, one markdown
//! parse, at most one Python parse to tell a bare-code answer), and a completion over
//! [`MAX_COMPLETION_BYTES`] is not read at all ([`Answer::skipped`] says so).

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use serde::Serialize;

/// What was found in a completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Answer {
    /// The reasoning (inside `<think>…</think>`), if any.
    pub thinking: Option<String>,
    /// The answer part: everything outside the reasoning.
    pub text: String,
    /// The code candidate to check and run, if any text could be one.
    pub code: Option<String>,
    /// Where the code came from.
    pub source: CodeSource,
    /// The fence's language tag, lower-cased (`python`, `js`, …), where the code came from a tagged fence.
    pub fence_lang: Option<String>,
    /// How many fenced blocks the answer holds.
    pub blocks: usize,
    /// The structure of the think tags.
    pub think: ThinkTags,
    /// Why the completion was not read (it is over the size limit); `None` when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Where the code candidate came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeSource {
    /// No candidate: the answer is empty.
    #[default]
    None,
    /// A fenced block tagged as Python.
    PythonFence,
    /// An untagged fenced block that parses as Python.
    UntaggedFence,
    /// A fenced block tagged with another language (or untagged and not Python).
    OtherFence,
    /// The whole answer, which has no fences.
    Bare,
}

/// The shape of the `<think>` tags in a completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThinkTags {
    /// No tags at all.
    #[default]
    Absent,
    /// Exactly one `<think>` and one `</think>`, in that order, at the start (only whitespace before).
    WellFormed,
    /// One `</think>` with no opening tag (the template opened it).
    CloseOnly,
    /// An opening tag that never closes.
    Unclosed,
    /// Anything else: several pairs, text before `<think>`, a close before the open.
    Malformed,
}

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// The longest completion [`extract`] reads, in bytes (4 MiB: a 128k-token completion is about
/// 0.5 MiB). A longer one gives an [`Answer`] with no code and [`Answer::skipped`] set, which
/// the parse gate reports as `not_code`.
pub const MAX_COMPLETION_BYTES: usize = 4 << 20;

/// Most untagged fences asked whether they are Python, from the last one back: each ask is a
/// parse, so a completion of many tiny fences costs at most this many (extraction stays linear
/// in the completion, whatever its shape).
pub const MAX_UNTAGGED_TRIED: usize = 64;

/// Split a completion into reasoning and answer and find the code candidate.
///
/// `parses_as_python` decides whether an untagged fence is Python; the chain passes [`crate::pysource::parses_as_python`]. This is [`extract_within`]
/// with [`MAX_COMPLETION_BYTES`].
pub fn extract(completion: &str, parses_as_python: impl Fn(&str) -> bool) -> Answer {
    extract_within(completion, MAX_COMPLETION_BYTES, parses_as_python)
}

/// [`extract`] with another size limit: a completion over `max_bytes` is not read.
pub fn extract_within(
    completion: &str,
    max_bytes: usize,
    parses_as_python: impl Fn(&str) -> bool,
) -> Answer {
    if completion.len() > max_bytes {
        return Answer {
            skipped: Some(format!(
                "too large to judge: a completion of {} bytes, over the limit of {max_bytes} bytes",
                completion.len()
            )),
            ..Answer::default()
        };
    }
    let (thinking, text, think) = split_think(completion);
    let blocks = fenced_blocks(&text);
    let mut answer = Answer {
        thinking,
        blocks: blocks.len(),
        think,
        ..Answer::default()
    };

    let blocks: Vec<Block> = blocks
        .into_iter()
        .filter(|b| !is_transcript(&b.code))
        .collect();
    let python = with_solution(blocks.iter().filter(|b| is_python_tag(&b.lang)));
    // Each try is a parse; a completion of 400,000 tiny untagged fences must not buy 400,000.
    let untagged = || {
        blocks
            .iter()
            .rev()
            .filter(|b| b.lang.is_empty() && !b.code.trim().is_empty())
            .take(MAX_UNTAGGED_TRIED)
            .find(|b| parses_as_python(&b.code))
    };
    if let Some((b, code)) = python {
        answer.code = Some(code);
        answer.fence_lang = Some(b.lang.clone());
        answer.source = CodeSource::PythonFence;
    } else if let Some(b) = untagged() {
        answer.code = Some(b.code.clone());
        answer.source = CodeSource::UntaggedFence;
    } else if let Some(b) = blocks.last() {
        answer.code = Some(b.code.clone());
        answer.fence_lang = (!b.lang.is_empty()).then(|| b.lang.clone());
        answer.source = CodeSource::OtherFence;
    } else if !text.trim().is_empty() {
        answer.code = Some(text.trim_matches('\n').to_string());
        answer.source = CodeSource::Bare;
    }
    answer.text = text;
    answer
}

fn is_python_tag(lang: &str) -> bool {
    matches!(lang, "python" | "py" | "python3" | "py3")
}

/// A `>>>` session transcript (a doctest or REPL paste): an illustration, never the program.
fn is_transcript(code: &str) -> bool {
    code.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with(">>>"))
}

/// The code of the last of `blocks`, unless it defines nothing and an earlier block defines
/// what it uses: then the solution is that earlier block, with the last one joined to it when
/// it reads stdin (a driver: `print(solve(input()))`) and left out otherwise (a usage
/// example: `print(f(2))`). The block whose tag and place are reported comes first.
fn with_solution<'b>(blocks: impl Iterator<Item = &'b Block>) -> Option<(&'b Block, String)> {
    let blocks: Vec<&Block> = blocks.collect();
    let last = *blocks.last()?;
    if !top_level_names(&last.code).is_empty() {
        return Some((last, last.code.clone()));
    }
    let solution = blocks[..blocks.len() - 1]
        .iter()
        .rev()
        .find(|b| !top_level_names(&b.code).is_empty());
    let Some(solution) = solution else {
        return Some((last, last.code.clone()));
    };
    let used = identifiers(&last.code);
    if !top_level_names(&solution.code)
        .iter()
        .any(|name| used.contains(name))
    {
        return Some((last, last.code.clone()));
    }
    if reads_stdin(&last.code) {
        let joined = format!("{}\n\n{}", solution.code.trim_end(), last.code);
        Some((solution, joined))
    } else {
        Some((solution, solution.code.clone()))
    }
}

/// The names a block defines at top level with `def`, `async def` or `class`.
fn top_level_names(code: &str) -> Vec<&str> {
    code.lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("async def ")
                .or_else(|| line.strip_prefix("def "))
                .or_else(|| line.strip_prefix("class "))?;
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
        .collect()
}

/// Every identifier-like word of `code`, in one pass (so asking about many names stays linear
/// in the size of the completion).
fn identifiers(code: &str) -> std::collections::HashSet<&str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether a block reads standard input: `input(`, `sys.stdin`, `open(0`.
fn reads_stdin(code: &str) -> bool {
    identifiers(code).contains("input") || code.contains("sys.stdin") || code.contains("open(0")
}

/// Returns (reasoning, answer text, tag structure).
fn split_think(completion: &str) -> (Option<String>, String, ThinkTags) {
    let (opens, closes) = tags(completion);
    match (opens.as_slice(), closes.as_slice()) {
        ([], []) => (None, completion.to_string(), ThinkTags::Absent),
        (&[o], &[c]) => {
            if o < c {
                let thinking = completion[o + OPEN.len()..c].to_string();
                let text = format!("{}{}", &completion[..o], &completion[c + CLOSE.len()..]);
                let shape = if completion[..o].trim().is_empty() {
                    ThinkTags::WellFormed
                } else {
                    ThinkTags::Malformed
                };
                (Some(thinking), text, shape)
            } else {
                // `</think>` before `<think>`: take the text after the last tag as the answer.
                let o_end = o + OPEN.len();
                (None, completion[o_end..].to_string(), ThinkTags::Malformed)
            }
        }
        ([], &[c]) => (
            Some(completion[..c].to_string()),
            completion[c + CLOSE.len()..].to_string(),
            ThinkTags::CloseOnly,
        ),
        (&[o], []) => (
            Some(completion[o + OPEN.len()..].to_string()),
            completion[..o].to_string(),
            ThinkTags::Unclosed,
        ),
        (_, closes) => {
            // Several tags: everything up to the last close is reasoning; what follows is the answer.
            match closes.last() {
                Some(&c) => {
                    let reasoning = completion[..c].replace(OPEN, "").replace(CLOSE, "");
                    (
                        Some(reasoning),
                        completion[c + CLOSE.len()..].to_string(),
                        ThinkTags::Malformed,
                    )
                }
                None => (None, completion.to_string(), ThinkTags::Malformed),
            }
        }
    }
}

/// Byte offsets of the `<think>` and `</think>` tags of a completion that are tags, not code.
///
/// The answer starts after the first `</think>` that follows the first `<think>` (or after the
/// first `</think>` when nothing opens one). A tag past that point inside the answer's markdown
/// code (a fenced or indented block, an inline code span) is code; so is every one when the
/// answer has no fenced block and is Python as a whole (`print("</think>")`: a tag outside a
/// string or comment never parses, so they are all in literals). That check always uses
/// [`crate::pysource::parses_as_python`], not the caller's classifier. Linear: one markdown
/// parse, and at most one Python parse, and only when such later tags exist.
fn tags(completion: &str) -> (Vec<usize>, Vec<usize>) {
    let mut opens: Vec<usize> = completion.match_indices(OPEN).map(|(i, _)| i).collect();
    let mut closes: Vec<usize> = completion.match_indices(CLOSE).map(|(i, _)| i).collect();
    let first_open = opens.first().copied().unwrap_or(0);
    let Some(&first_close) = closes.iter().find(|&&c| c >= first_open) else {
        return (opens, closes);
    };
    let base = first_close + CLOSE.len();
    if !opens.iter().chain(&closes).any(|&t| t >= base) {
        return (opens, closes);
    }
    let answer = &completion[base..];
    let (mut code, fenced) = code_ranges(answer);
    let tag_outside_code = |t: &usize| *t >= base && !inside(&code, *t - base);
    if !fenced
        && opens.iter().chain(&closes).any(tag_outside_code)
        && crate::pysource::parses_as_python(answer)
    {
        code.clear();
        code.push(0..answer.len());
    }
    let keep = |t: &usize| *t < base || !inside(&code, *t - base);
    opens.retain(keep);
    closes.retain(keep);
    (opens, closes)
}

/// The byte ranges of a markdown text's code (blocks and inline spans), in order and disjoint,
/// and whether it holds a fenced block.
fn code_ranges(text: &str) -> (Vec<Range<usize>>, bool) {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut fenced = false;
    for (event, range) in Parser::new(text).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                fenced |= matches!(kind, CodeBlockKind::Fenced(_));
                ranges.push(range);
            }
            Event::Code(_) => ranges.push(range),
            _ => {}
        }
    }
    // Events come in document order; a span never lies inside a block, but be safe.
    ranges.sort_by_key(|r| r.start);
    (ranges, fenced)
}

/// Whether `offset` lies in one of `ranges` (sorted by start, disjoint).
fn inside(ranges: &[Range<usize>], offset: usize) -> bool {
    let i = ranges.partition_point(|r| r.start <= offset);
    i > 0 && ranges[i - 1].contains(&offset)
}

struct Block {
    lang: String,
    code: String,
}

/// Fenced code blocks of a markdown text, in order (indented blocks are ignored).
fn fenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let lang = info
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                current = Some(Block {
                    lang,
                    code: String::new(),
                });
            }
            Event::Text(t) => {
                if let Some(b) = current.as_mut() {
                    b.code.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(b) = current.take() {
                    blocks.push(b);
                }
            }
            _ => {}
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> Answer {
        extract(s, |c| !c.contains("function") && !c.contains('{'))
    }

    #[test]
    fn well_formed_r1_completion() {
        let a = ex("<think>\nadd them\n</think>\nHere:\n```python\ndef add(a, b):\n    return a + b\n```\n");
        assert_eq!(a.think, ThinkTags::WellFormed);
        assert_eq!(a.thinking.as_deref(), Some("\nadd them\n"));
        assert_eq!(
            a.code.as_deref(),
            Some("def add(a, b):\n    return a + b\n")
        );
        assert_eq!(a.source, CodeSource::PythonFence);
        assert_eq!(a.fence_lang.as_deref(), Some("python"));
        assert_eq!(a.blocks, 1);
    }

    #[test]
    fn code_inside_reasoning_is_never_the_answer() {
        let a = ex("<think>```python\nimport os\n```</think>The answer is 4.");
        assert_eq!(a.blocks, 0);
        assert_eq!(a.source, CodeSource::Bare);
        assert_eq!(a.code.as_deref(), Some("The answer is 4."));
    }

    #[test]
    fn last_python_block_wins_over_later_other_language() {
        let a = ex("```py\nx = 1\n```\n```python\nx = 2\n```\n```bash\nls\n```");
        assert_eq!(a.code.as_deref(), Some("x = 2\n"));
        assert_eq!(a.blocks, 3);
    }

    #[test]
    fn untagged_block_that_parses_is_taken_else_other_language() {
        let a = ex("```\nfunction f() { return 1 }\n```\n```\nprint(1)\n```");
        assert_eq!(a.code.as_deref(), Some("print(1)\n"));
        assert_eq!(a.source, CodeSource::UntaggedFence);
        let b = ex("```js\nfunction f() { return 1 }\n```");
        assert_eq!(b.source, CodeSource::OtherFence);
        assert_eq!(b.fence_lang.as_deref(), Some("js"));
    }

    #[test]
    fn think_tag_shapes() {
        assert_eq!(ex("reasoning</think>print(1)").think, ThinkTags::CloseOnly);
        assert_eq!(
            ex("reasoning</think>print(1)").code.as_deref(),
            Some("print(1)")
        );
        let unclosed = ex("<think>still thinking");
        assert_eq!(unclosed.think, ThinkTags::Unclosed);
        assert_eq!(unclosed.code, None);
        assert_eq!(ex("hi <think>a</think> b").think, ThinkTags::Malformed);
        assert_eq!(
            ex("<think>a</think><think>b</think>x").think,
            ThinkTags::Malformed
        );
        assert_eq!(ex("x = 1").think, ThinkTags::Absent);
    }

    /// A real classifier for the cases where the answer's own Python decides.
    fn ex_py(s: &str) -> Answer {
        extract(s, crate::pysource::parses_as_python)
    }

    #[test]
    fn a_close_tag_inside_the_answer_code_is_code() {
        let code = "def tag():\n    return \"</think>\"\n";
        let c = format!("<think>\nreturn the tag\n</think>\n```python\n{code}```\n");
        let a = ex_py(&c);
        assert_eq!(a.think, ThinkTags::WellFormed);
        assert_eq!(a.thinking.as_deref(), Some("\nreturn the tag\n"));
        assert_eq!(a.code.as_deref(), Some(code));
        assert_eq!(a.source, CodeSource::PythonFence);

        // The template opened the tag; both tags inside code; an untagged and an unclosed fence.
        let a = ex_py(&format!("reasoning</think>\n```python\n{code}```"));
        assert_eq!(
            (a.think, a.code.as_deref()),
            (ThinkTags::CloseOnly, Some(code))
        );
        let both = "s = \"<think>\" + x + \"</think>\"\n";
        let a = ex_py(&format!("<think>r</think>\n```\n{both}```"));
        assert_eq!(
            (a.think, a.code.as_deref()),
            (ThinkTags::WellFormed, Some(both))
        );
        let a = ex_py(&format!("<think>r</think>\n```python\n{code}"));
        assert_eq!(
            (a.think, a.code.as_deref()),
            (ThinkTags::WellFormed, Some(code))
        );
        // An inline code span in the prose of the answer.
        let a = ex_py(&format!(
            "<think>r</think>It returns `\"</think>\"`:\n```python\n{code}```"
        ));
        assert_eq!(
            (a.think, a.code.as_deref()),
            (ThinkTags::WellFormed, Some(code))
        );
    }

    #[test]
    fn a_close_tag_inside_a_bare_python_answer_is_code() {
        let code = "def tag():\n    return \"</think>\"";
        let a = ex_py(&format!("<think>r</think>\n{code}\n"));
        assert_eq!(a.think, ThinkTags::WellFormed);
        assert_eq!(a.code.as_deref(), Some(code));
        assert_eq!(a.source, CodeSource::Bare);
    }

    #[test]
    fn a_second_reasoning_block_outside_code_still_counts_as_tags() {
        // Tags in prose, not code: the answer is after the last close, as before.
        let a = ex_py("<think>a</think> wait <think>b</think>\n```python\nx = 1\n```");
        assert_eq!(a.think, ThinkTags::Malformed);
        assert_eq!(a.code.as_deref(), Some("x = 1\n"));
        assert_eq!(a.thinking.as_deref(), Some("a wait b"));
        // A bare answer that is not Python: its tags are tags.
        let a = ex_py("<think>a</think>I think </think>print(1)");
        assert_eq!(a.think, ThinkTags::Malformed);
        assert_eq!(a.code.as_deref(), Some("print(1)"));
    }

    #[test]
    fn a_completion_over_the_size_limit_is_not_read() {
        let c = "x = 1\n".repeat(10);
        let a = extract_within(&c, 59, |_| panic!("not read, so not parsed"));
        assert_eq!(a.code, None);
        assert_eq!(a.text, "");
        let why = a.skipped.expect("a reason");
        assert!(
            why.contains("60 bytes") && why.contains("59 bytes"),
            "{why}"
        );
        assert_eq!(extract_within(&c, 60, |_| true).skipped, None);
    }

    #[test]
    fn deep_brackets_and_many_tags_extract_without_recursion() {
        // Run on a small stack: a walk that recursed per level would overflow it.
        let run = |c: String| {
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || ex_py(&c))
                .expect("spawn")
                .join()
                .expect("no stack overflow")
        };
        for depth in [12_000, 100_000] {
            let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let a = run(format!("<think>r</think>\n```\n{deep}\n```\n"));
            assert_eq!(a.code.as_deref(), Some(format!("{deep}\n").as_str()));
            let a = run(format!("{}x{}", "> ".repeat(depth), "\n"));
            assert_eq!(a.blocks, 0);
        }
        let a = run(format!(
            "{}\n```python\nx = 1\n```",
            "<think></think>".repeat(50_000)
        ));
        assert_eq!(
            (a.think, a.code.as_deref()),
            (ThinkTags::Malformed, Some("x = 1\n"))
        );
    }

    #[test]
    fn joining_trailing_blocks_is_linear_in_the_completion() {
        // Many names defined and a long last block that mentions none as a word: a scan per
        // name would be quadratic (hours at this size); one pass is milliseconds.
        let defs = "def q():\n    pass\n".repeat(60_000);
        let last = format!("x = '{}'\n", "q".repeat(1 << 20));
        let c = format!("```python\n{defs}```\n```python\n{last}```\n");
        let started = std::time::Instant::now();
        let a = ex(&c);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(a.code.as_deref(), Some(last.as_str()));
    }

    #[test]
    fn many_tiny_untagged_fences_cost_a_bounded_number_of_parses() {
        let completion = "```\nx\n```\n".repeat(300_000);
        let asked = std::cell::Cell::new(0usize);
        let a = extract(&completion, |_| {
            asked.set(asked.get() + 1);
            false
        });
        assert_eq!(a.blocks, 300_000);
        assert_eq!(asked.get(), MAX_UNTAGGED_TRIED);
        assert_eq!(a.source, CodeSource::OtherFence);
        // Blank fences are never asked; the last Python one among the tried is still found.
        let a = extract("```\nprint(1)\n```\n```\n\n```\n", |c| c.contains("print"));
        assert_eq!(a.source, CodeSource::UntaggedFence);
        assert_eq!(a.code.as_deref(), Some("print(1)\n"));
    }

    #[test]
    fn trailing_drivers_join_the_solution_and_examples_and_transcripts_never_replace_it() {
        let solution = "def solve(s):\n    return s[::-1]\n";
        // A stdio driver after the solution: one program.
        let a = ex(&format!(
            "```python\n{solution}```\nDriver:\n```python\nprint(solve(input()))\n```\n"
        ));
        assert_eq!(
            a.code.as_deref(),
            Some(format!("{}\n\nprint(solve(input()))\n", solution.trim_end()).as_str())
        );
        // A usage example after it: the solution alone.
        let a = ex(&format!(
            "```python\n{solution}```\nFor example:\n```python\nprint(solve('ab'))\n```\n"
        ));
        assert_eq!(a.code.as_deref(), Some(solution));
        // A `>>>` transcript: ignored.
        let a = ex(&format!(
            "```python\n{solution}```\n```python\n>>> solve('ab')\n'ba'\n```\n"
        ));
        assert_eq!(a.code.as_deref(), Some(solution));
        // A last block that defines things, or uses nothing of the earlier one, is the code.
        let later = "def solve(s):\n    return ''.join(reversed(s))\n";
        let a = ex(&format!(
            "```python\n{solution}```\n```python\n{later}```\n"
        ));
        assert_eq!(a.code.as_deref(), Some(later));
        let script = "import sys\nprint(sys.stdin.read()[::-1])\n";
        let a = ex(&format!(
            "```python\n{solution}```\n```python\n{script}```\n"
        ));
        assert_eq!(a.code.as_deref(), Some(script));
        // Names are whole words: `solver` is not `solve`.
        let a = ex(&format!(
            "```python\n{solution}```\n```python\nprint(solver(input()))\n```\n"
        ));
        assert_eq!(a.code.as_deref(), Some("print(solver(input()))\n"));
    }

    #[test]
    fn empty_completion_has_no_code() {
        let a = ex("   \n");
        assert_eq!(a.code, None);
        assert_eq!(a.source, CodeSource::None);
    }
}
