//! Completion → [`Answer`]: split the reasoning from the answer and find the code to run.
//!
//! The rules follow R1-style RL practice:
//! - text inside `<think>…</think>` is reasoning and is never executed. A completion that only
//!   closes the tag (`…</think>`, common when the prompt template opens it) treats everything before
//!   the close as reasoning; one that opens and never closes is all reasoning.
//! - code comes from fenced markdown blocks in the answer: the last block tagged `python`/`py`
//!   (`python3`, `py3` too), else the last untagged block that parses as Python, else the last block
//!   of any language (so the parse check can name the language);
//! - with no fences, the whole answer is the candidate (a bare-code completion).

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

/// Split a completion into reasoning and answer and find the code candidate.
///
/// `parses_as_python` decides whether an untagged fence is Python; the chain passes the parse
/// verifier's classifier.
pub fn extract(completion: &str, parses_as_python: impl Fn(&str) -> bool) -> Answer {
    let (thinking, text, think) = split_think(completion);
    let blocks = fenced_blocks(&text);
    let mut answer = Answer {
        thinking,
        blocks: blocks.len(),
        think,
        ..Answer::default()
    };

    let python = blocks.iter().rev().find(|b| is_python_tag(&b.lang));
    let untagged = || {
        blocks
            .iter()
            .rev()
            .find(|b| b.lang.is_empty() && parses_as_python(&b.code))
    };
    if let Some(b) = python {
        answer.code = Some(b.code.clone());
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

/// Returns (reasoning, answer text, tag structure).
fn split_think(completion: &str) -> (Option<String>, String, ThinkTags) {
    let opens = completion.matches(OPEN).count();
    let closes = completion.matches(CLOSE).count();
    match (opens, closes) {
        (0, 0) => (None, completion.to_string(), ThinkTags::Absent),
        (1, 1) => {
            let o = completion.find(OPEN).unwrap_or(0);
            let c = completion.find(CLOSE).unwrap_or(0);
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
        (0, 1) => {
            let c = completion.find(CLOSE).unwrap_or(0);
            (
                Some(completion[..c].to_string()),
                completion[c + CLOSE.len()..].to_string(),
                ThinkTags::CloseOnly,
            )
        }
        (1, 0) => {
            let o = completion.find(OPEN).unwrap_or(0);
            (
                Some(completion[o + OPEN.len()..].to_string()),
                completion[..o].to_string(),
                ThinkTags::Unclosed,
            )
        }
        _ => {
            // Several tags: everything up to the last close is reasoning; what follows is the answer.
            match completion.rfind(CLOSE) {
                Some(c) => {
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

    #[test]
    fn empty_completion_has_no_code() {
        let a = ex("   \n");
        assert_eq!(a.code, None);
        assert_eq!(a.source, CodeSource::None);
    }
}
