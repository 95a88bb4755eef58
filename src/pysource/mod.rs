//! Python source, as verdict reads it: one tree-sitter-python parser per thread and the
//! classifier that says whether a text is Python, prose, another language or broken Python.
//!
//! It sits below the verifiers and is shared by extraction (untagged fences), the `parse`
//! verifier (its gate) and the trainer's
//! parse-rate count.
//!
//! ## How it decides
//! tree-sitter accepts anything (with ERROR nodes), so the class comes from three kinds of
//! evidence, weighed in [`classify`]:
//! - **the tree** (`parse/syntax.rs`): the first ERROR or MISSING node, a Python score (definitions,
//!   imports, compound statements with a body, comprehensions, lambdas, outside error nodes),
//!   and constructs tree-sitter-python accepts but CPython rejects (Python 2 `print`/`exec`/
//!   `except A, B as e`, backticks, `<>`, `0777`, `10L`, missing or unexpected indentation);
//! - **prose** (`parse/prose.rs`): per line, sentences (only words and punctuation, or many stopwords,
//!   sentence case, a full stop, a list marker) against code marks (`=`, calls, brackets, `;`);
//!   lines in multi-line strings and comment lines are not judged;
//! - **other languages** (`parse/language.rs`): weighted per-line signatures (`console.log(`,
//!   `fn main(`, `#include`, `public class`, `package main`, `$ ` prompts, …) with string
//!   contents and trailing comments removed, plus the fence tag.
//!
//! A lone word or literal (`Hello`, `42`, a JSON object) parses, but is `not_code`. Python that
//! happens to contain `;` or `{}` stays Python: another language must outweigh the Python score
//! (and, for a clean parse, carry a strong signature). A block fenced as another language is that
//! language unless it parses cleanly with Python-only constructs and no foreign signature.
//!
//! **Pseudo-code** is `syntax_error` when written as code (`for each x in xs: if x > m then m = x`:
//! operators, Python keywords; the model tried to write a program, and the error points at the
//! first non-Python token) and `not_code` when written as sentences ("Set max to the first
//! element."). Python with a stray prose line is `syntax_error` at that line; text that is mostly
//! prose (≥ 60 % of judged lines, or ≥ 40 % with no Python construct) is `not_code`.
//!
//! **The error position** is the first ERROR or MISSING node in document order, refined where
//! tree-sitter wraps valid statements in an ERROR node (it then points inside, at the node that
//! holds the skipped tokens) and at the opening bracket of an unclosed one, as CPython does.
//! Columns count characters, 1-based.
//!
//! **Cost**: the parser is created once per thread. tree-sitter's error recovery is slow on
//! prose and other languages (1–15 ms per KB against ~0.2 ms for Python), so text with strong
//! foreign signatures or mostly prose, and no Python-looking line, is classified before parsing.
//! Whatever the text, a [`Budget`] bounds the work: code over `max_bytes` is not parsed, and a
//! parse still running after `max_parse_ms` is abandoned; both are `not_code` with a reason
//! saying which bound it was. Every walk over the tree is linear and none recurses over the
//! text's nesting (`syntax.rs`).

mod language;
mod prose;
pub(crate) mod syntax;

use std::time::{Duration, Instant};

use serde::Serialize;

use self::language::FenceTag;
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
///
/// The steps, in order (the module docs give the reasons):
/// 1. empty or whitespace → [`Classification::NotCode`];
/// 2. a fence tagged with another language → [`Classification::NotPython`] with that language,
///    unless the block parses as Python, has Python-only constructs and no foreign signature;
/// 3. foreign signatures outweighing the Python evidence → [`Classification::NotPython`];
/// 4. a clean parse → [`Classification::Python`], unless it holds no statements, is a lone word
///    or phrase ([`Classification::NotCode`]) or has a construct CPython rejects
///    ([`Classification::SyntaxError`]);
/// 5. a parse with errors → [`Classification::NotCode`] when most lines read as prose, else
///    [`Classification::SyntaxError`] at the first error.
///
/// This is [`classify_within`] with the default [`Budget`].
pub fn classify(code: &str, fence_lang: Option<&str>) -> Classification {
    classify_within(code, fence_lang, &Budget::default())
}

/// How much work one classification may cost. Text beyond either bound is
/// [`Classification::NotCode`] with a reason naming the bound: verdict does not judge it, and a
/// gate on it earns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The longest code classified, in bytes.
    pub max_bytes: usize,
    /// How long tree-sitter may parse, in milliseconds (0: no limit). Error recovery on text
    /// that is not Python can cost 1–15 ms per KB; this bounds it whatever the text.
    pub max_parse_ms: u64,
}

impl Budget {
    /// The default longest code classified: 1 MiB, about 100 times a long solution.
    pub const MAX_BYTES: usize = 1 << 20;
    /// The default parse time limit: 2 s, about ten times what 1 MiB of Python takes.
    pub const MAX_PARSE_MS: u64 = 2_000;
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_bytes: Budget::MAX_BYTES,
            max_parse_ms: Budget::MAX_PARSE_MS,
        }
    }
}

/// [`classify`] within `budget`.
pub fn classify_within(code: &str, fence_lang: Option<&str>, budget: &Budget) -> Classification {
    if code.trim().is_empty() {
        return Classification::NotCode {
            reason: "empty".into(),
        };
    }
    if code.len() > budget.max_bytes {
        return Classification::NotCode {
            reason: format!(
                "too large to judge: {} bytes of code, over the limit of {} bytes (parse.max_code_bytes)",
                code.len(),
                budget.max_bytes
            ),
        };
    }
    let lines: Vec<&str> = code
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if let Some(class) = without_parsing(code, &lines, fence_lang) {
        return class;
    }
    let deadline = (budget.max_parse_ms > 0)
        .then(|| Instant::now() + Duration::from_millis(budget.max_parse_ms));
    with_parse(code, &lines, fence_lang, deadline)
}

/// The full path: parse, then weigh the tree against prose and foreign signatures.
fn with_parse(
    code: &str,
    lines: &[&str],
    fence_lang: Option<&str>,
    deadline: Option<Instant>,
) -> Classification {
    let scan = syntax::scan(code, deadline);
    if scan.gave_up {
        return Classification::NotCode {
            reason: "too costly to judge: parsing passed the time limit (parse.max_parse_ms)"
                .into(),
        };
    }
    // Prose only matters where the parse failed (a clean parse holds prose only in comments and
    // strings), and judging it is the costliest per-line work: skip it otherwise.
    let prose = Prose::judge(lines, |row, _| !scan.tree_error || scan.neutral_rows[row]);
    let prose_rows = &prose.rows;
    // Comment rows stay in: `#include` and `#!/bin/sh` are comments to Python.
    let code_lines = lines.iter().enumerate().filter_map(|(row, line)| {
        let skip =
            prose_rows[row] || (scan.neutral_rows[row] && !line.trim_start().starts_with('#'));
        (!skip).then_some(*line)
    });
    let guess = language::guess(code_lines);

    if let FenceTag::Other(language) = language::fence_tag(fence_lang) {
        let python_anyway = !scan.tree_error
            && scan.first_error.is_none()
            && scan.py_score >= 2
            && guess.as_ref().is_none_or(|g| g.score < 3);
        if !python_anyway {
            let reason = fenced_reason(fence_lang, &language, guess.as_ref());
            return Classification::NotPython { language, reason };
        }
    }

    if let Some(g) = guess {
        let py = scan.py_score;
        let foreign = if scan.tree_error {
            g.score >= 3 && g.score > py
        } else {
            // A clean parse: one strong signature suffices only without Python-only constructs.
            g.score >= if py == 0 { 3 } else { 6 } && g.score > 2 * py
        };
        if foreign {
            return g.into();
        }
    }

    if !scan.tree_error {
        if scan.statements == 0 {
            return Classification::NotCode {
                reason: "only comments or string literals".into(),
            };
        }
        if scan.trivial {
            return Classification::NotCode {
                reason: "a lone word, phrase or literal, not a program".into(),
            };
        }
    } else if prose.share_at_least(3, 5) || (prose.share_at_least(2, 5) && scan.py_score == 0) {
        return prose.not_code();
    }
    match scan.first_error {
        None => Classification::Python,
        Some(site) => syntax_error(lines, prose_rows, site),
    }
}

/// Decide the clear cases from the lines alone, before parsing.
///
/// tree-sitter's error recovery is slow: about 0.2 ms per KB for Python, but 1–15 ms per KB for
/// prose or another language. Text that is mostly prose, or carries strong foreign signatures
/// and has no line that looks like Python, is classified here with the same thresholds as the
/// full path, so that a long non-Python answer does not cost a parse. Text with triple quotes
/// always takes the full path (docstring lines would otherwise count as prose).
fn without_parsing(code: &str, lines: &[&str], fence_lang: Option<&str>) -> Option<Classification> {
    if code.contains("\"\"\"") || code.contains("'''") {
        return None;
    }
    let python_like = lines.iter().any(|l| looks_like_python(l));
    let prose = Prose::judge(lines, |_, line| line.trim_start().starts_with('#'));
    let code_lines = lines
        .iter()
        .zip(&prose.rows)
        .filter_map(|(line, &is_prose)| (!is_prose).then_some(*line));
    let guess = language::guess(code_lines);
    let fence = language::fence_tag(fence_lang);
    match (fence, guess) {
        (FenceTag::Other(language), guess) if !python_like => {
            let reason = fenced_reason(fence_lang, &language, guess.as_ref());
            Some(Classification::NotPython { language, reason })
        }
        (FenceTag::Other(_), _) => None,
        (_, Some(g)) if g.score >= STRONG_WITHOUT_PARSING && !python_like => Some(g.into()),
        (_, Some(g)) if g.score >= 3 => None,
        // Mostly prose is not code on the full path too, Python-looking lines or not.
        _ if prose.share_at_least(3, 5) => Some(prose.not_code()),
        _ => None,
    }
}

/// Which lines read as prose, out of those judged.
struct Prose {
    /// Per line: judged and read as prose.
    rows: Vec<bool>,
    /// Lines judged (non-blank and not skipped).
    judged: usize,
    /// Lines read as prose.
    prose: usize,
}

impl Prose {
    /// Judge every non-blank line for which `skip(row, line)` is false. A line that looks like
    /// Python (`from .x import *  # noqa`) is never prose, whatever its words.
    fn judge(lines: &[&str], skip: impl Fn(usize, &str) -> bool) -> Prose {
        let mut p = Prose {
            rows: vec![false; lines.len()],
            judged: 0,
            prose: 0,
        };
        for (row, line) in lines.iter().enumerate() {
            if line.trim().is_empty() || skip(row, line) {
                continue;
            }
            p.judged += 1;
            if prose::is_prose_line(line) && !looks_like_python(line) {
                p.rows[row] = true;
                p.prose += 1;
            }
        }
        p
    }

    /// Whether at least `num/den` of the judged lines (and at least one) are prose.
    fn share_at_least(&self, num: usize, den: usize) -> bool {
        self.prose > 0 && self.prose * den >= self.judged * num
    }

    fn not_code(&self) -> Classification {
        Classification::NotCode {
            reason: format!("{} of {} lines read as prose", self.prose, self.judged),
        }
    }
}

impl From<language::Guess> for Classification {
    fn from(g: language::Guess) -> Self {
        Classification::NotPython {
            language: g.language.to_string(),
            reason: g.evidence.join(", "),
        }
    }
}

/// A foreign-signature score that decides without parsing (two strong signatures).
const STRONG_WITHOUT_PARSING: u32 = 8;

/// A line only Python writes: a `def`/`class` header, an import, a compound statement ending
/// with `:`, a comprehension or a lambda. Deliberately loose: a false hit only costs a parse.
fn looks_like_python(line: &str) -> bool {
    let t = line.trim();
    let header = [
        "if ", "for ", "while ", "with ", "try", "except", "else", "elif ", "finally",
    ]
    .iter()
    .any(|k| t.starts_with(k))
        && t.ends_with(':');
    header
        || (t.starts_with("def ") && t.contains('('))
        || (t.starts_with("class ") && t.ends_with(':'))
        || (t.starts_with("from ") && t.contains(" import "))
        || (t.starts_with("import ") && !t.contains(['\'', '"', '{', ';']))
        || t.starts_with('@')
        || t.contains("lambda")
        || (t.contains(" for ") && t.contains(" in ") && t.contains(['[', '(', '{']))
}

/// The reason given for a fence tagged with another language.
fn fenced_reason(
    fence_lang: Option<&str>,
    language: &str,
    guess: Option<&language::Guess>,
) -> String {
    let mut reason = format!("fenced as `{}`", fence_lang.unwrap_or_default());
    if let Some(g) = guess.filter(|g| g.language == language) {
        reason.push_str("; ");
        reason.push_str(&g.evidence.join(", "));
    }
    reason
}

/// Build the syntax error for `site`, naming the cause where the line shows it.
fn syntax_error(lines: &[&str], prose_rows: &[bool], site: syntax::ErrorSite) -> Classification {
    let line = lines.get(site.row).copied().unwrap_or("");
    let byte_col = site.byte_col.min(line.len());
    let column = line
        .char_indices()
        .take_while(|&(i, _)| i < byte_col)
        .count()
        + 1;
    let trimmed = line.trim_start();
    let message = if trimmed.starts_with("print ") && !trimmed[6..].trim_start().starts_with('(') {
        "Python 2 print statement (use `print(...)`)".to_string()
    } else if trimmed.starts_with(['!', '%']) {
        format!(
            "IPython shell escape or magic, not Python ({})",
            site.message
        )
    } else if trimmed.starts_with(">>>") {
        format!("interactive prompt `>>>` ({})", site.message)
    } else if prose_rows.get(site.row).copied().unwrap_or(false) {
        format!("a line of prose inside the code ({})", site.message)
    } else {
        site.message
    };
    Classification::SyntaxError {
        line: site.row + 1,
        column,
        snippet: line.trim_end().chars().take(SNIPPET_CHARS).collect(),
        message,
    }
}

/// The longest snippet reported, in characters.
const SNIPPET_CHARS: usize = 200;

/// What makes `code`, trusted Python that must define `function` for verdict to call (a stdio
/// test's checker and its `check`), unusable, as a sentence: a syntax error (line, column, what
/// is wrong and the line), or no top-level binding of `function` ([`syntax::binds_at_top_level`]).
/// `None` when it parses and binds it, and when `budget` does not allow deciding (the code is
/// larger than its `max_bytes`, the parse runs past its `max_parse_ms`): the sandbox then runs
/// it as before. Only a syntax error that tree-sitter or this module's CPython checks see
/// counts (`syntax.rs` lists the known gaps); what CPython finds beyond them still surfaces
/// when the code runs.
pub(crate) fn definition_problem(code: &str, function: &str, budget: &Budget) -> Option<String> {
    if code.len() > budget.max_bytes {
        return None;
    }
    let deadline = (budget.max_parse_ms > 0)
        .then(|| Instant::now() + Duration::from_millis(budget.max_parse_ms));
    let scan = syntax::scan(code, deadline);
    if scan.gave_up {
        return None;
    }
    if let Some(site) = scan.first_error {
        let lines: Vec<&str> = code
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let no_prose = vec![false; lines.len()];
        if let Classification::SyntaxError {
            line,
            column,
            snippet,
            message,
        } = syntax_error(&lines, &no_prose, site)
        {
            return Some(format!(
                "not valid Python: line {line}, column {column}: {message}: {snippet:?}"
            ));
        }
    }
    // No limit stands for one far beyond any parse.
    let tree = syntax::parse_until(
        code,
        deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
    )?;
    if syntax::binds_at_top_level(tree.root_node(), code.as_bytes(), function) {
        None
    } else {
        Some(format!(
            "it defines no `{function}` at top level (expected `def {function}(...)`)"
        ))
    }
}

/// Whether `code` parses as Python without errors (used by extraction for untagged fences).
pub fn parses_as_python(code: &str) -> bool {
    matches!(classify(code, None), Classification::Python)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn syntax_error(code: &str) -> (usize, usize, String, String) {
        match classify(code, None) {
            Classification::SyntaxError {
                line,
                column,
                snippet,
                message,
            } => (line, column, snippet, message),
            other => panic!("{code:?}: expected a syntax error, got {other:?}"),
        }
    }

    fn language(code: &str, fence: Option<&str>) -> String {
        match classify(code, fence) {
            Classification::NotPython { language, .. } => language,
            other => panic!("{code:?}: expected not_python, got {other:?}"),
        }
    }

    fn is_not_code(code: &str) -> bool {
        matches!(classify(code, None), Classification::NotCode { .. })
    }

    /// The class and detail a corpus file name promises (see `fixtures/parse/README.md`).
    fn expected(class: &str, stem: &str) -> (String, Option<String>, Option<String>) {
        let (stem, fence) = match stem.split_once('@') {
            Some((s, f)) => (s, Some(f.to_string())),
            None => (stem, None),
        };
        let detail = stem.split_once("__").map(|(d, _)| d.to_string());
        (class.to_string(), detail, fence)
    }

    fn class_name(c: &Classification) -> &'static str {
        match c {
            Classification::Python => "python",
            Classification::NotCode { .. } => "not_code",
            Classification::NotPython { .. } => "not_python",
            Classification::SyntaxError { .. } => "syntax_error",
        }
    }

    #[test]
    fn corpus_files_are_classified_as_their_directory() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parse");
        let mut failures = Vec::new();
        for class in ["python", "not_code", "not_python", "syntax_error"] {
            let mut files: Vec<_> = std::fs::read_dir(root.join(class))
                .unwrap_or_else(|e| panic!("{class}: {e}"))
                .map(|e| e.expect("directory entry").path())
                .collect();
            files.sort();
            assert!(
                files.len() >= 8,
                "{class}: only {} corpus files",
                files.len()
            );
            for path in files {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .expect("file name");
                let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
                let (want, detail, fence) = expected(class, stem);
                let code = std::fs::read_to_string(&path).expect("corpus file");
                let got = classify(&code, fence.as_deref());
                let ok = class_name(&got) == want
                    && match (&got, detail.as_deref()) {
                        (Classification::NotPython { language, .. }, Some(d)) => language == d,
                        (Classification::SyntaxError { line, .. }, Some(d)) => {
                            d.strip_prefix('L').and_then(|l| l.parse().ok()) == Some(*line)
                        }
                        (
                            Classification::NotPython { .. } | Classification::SyntaxError { .. },
                            None,
                        ) => false,
                        (_, d) => d.is_none(),
                    };
                if !ok {
                    failures.push(format!("{class}/{name}: got {got:?}"));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "misclassified:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn deciding_without_parsing_agrees_with_the_full_path() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parse");
        let mut decided = 0;
        for class in ["python", "not_code", "not_python", "syntax_error"] {
            for entry in std::fs::read_dir(root.join(class)).expect("corpus directory") {
                let path = entry.expect("directory entry").path();
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .expect("file name");
                let fence = stem.split_once('@').map(|(_, f)| f);
                let code = std::fs::read_to_string(&path).expect("corpus file");
                let lines: Vec<&str> = code.split('\n').collect();
                if let Some(quick) = without_parsing(&code, &lines, fence) {
                    decided += 1;
                    let full = with_parse(&code, &lines, fence, None);
                    assert_eq!(class_name(&quick), class_name(&full), "{}", path.display());
                    if let (
                        Classification::NotPython { language: a, .. },
                        Classification::NotPython { language: b, .. },
                    ) = (&quick, &full)
                    {
                        assert_eq!(a, b, "{}", path.display());
                    }
                }
            }
        }
        assert!(
            decided >= 10,
            "only {decided} corpus files decided without parsing"
        );
    }

    /// Runs `f` on a thread whose stack is far smaller than a tokio worker's 2 MiB.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(f)
            .expect("spawn")
            .join()
            .expect("no stack overflow")
    }

    #[test]
    fn deeply_nested_brackets_are_classified_without_recursion() {
        // `[` x 12,000 then `]` x 12,000 once overflowed the stack in `is_trivial_expr`.
        for depth in [12_000, 100_000] {
            let class = on_small_stack(move || {
                let code = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
                classify(&code, Some("python"))
            });
            assert!(
                matches!(&class, Classification::NotCode { reason } if reason.contains("lone word")),
                "{depth}: {class:?}"
            );
            let class = on_small_stack(move || {
                let code = format!("x = {}1{}\n", "(".repeat(depth), ")".repeat(depth));
                classify(&code, None)
            });
            assert_eq!(class, Classification::Python, "{depth}");
        }
    }

    #[test]
    fn one_long_erroneous_line_is_a_syntax_error_at_that_line_and_fast() {
        let tags = "<a>".repeat(40_000);
        let code = format!("def f():\n    x = 1\n    {tags}\n");
        let start = std::time::Instant::now();
        let (line, column, _, message) = syntax_error(&code);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert_eq!((line, column), (3, 5));
        assert!(message.contains("a line of 120004 bytes"), "{message}");
        // An error before the long line is still the first error.
        let code = format!("def f(:\n    {tags}\n");
        assert_eq!(syntax_error(&code).0, 1);
        // A long valid line is Python.
        let list = format!("x = [{}]\n", "1, ".repeat(40_000));
        assert_eq!(classify(&list, None), Classification::Python);
    }

    #[test]
    fn over_the_budget_is_not_code_with_the_limit_named() {
        let budget = Budget {
            max_bytes: 10,
            ..Budget::default()
        };
        match classify_within("print(12345)\n", None, &budget) {
            Classification::NotCode { reason } => {
                assert!(
                    reason.contains("13 bytes") && reason.contains("max_code_bytes"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify_within("print(1)\n", None, &budget),
            Classification::Python
        );
        // A parse that cannot finish in 1 ms (it takes over 100 ms).
        let budget = Budget {
            max_parse_ms: 1,
            ..Budget::default()
        };
        let slow = format!("def f():\n    {}\n", "<a>".repeat(40_000));
        match classify_within(&slow, None, &budget) {
            Classification::NotCode { reason } => {
                assert!(reason.contains("max_parse_ms"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_and_whitespace_are_not_code() {
        for code in ["", "  \n\t\n"] {
            assert_eq!(
                classify(code, Some("python")),
                Classification::NotCode {
                    reason: "empty".into()
                }
            );
        }
    }

    #[test]
    fn a_lone_word_or_sentence_is_not_code() {
        assert!(is_not_code("Hello"));
        assert!(is_not_code("answer is 42"));
        assert!(is_not_code("The answer is 42."));
        assert!(is_not_code("# just a comment\n"));
        assert!(is_not_code("{\"a\": 1, \"b\": [1, -2]}"));
        // Wordy Python is still Python.
        let wordy = "from .more import *  # noqa\nfrom .recipes import *  # noqa\n\n__version__ = '8.8.0'\n";
        assert_eq!(classify(wordy, None), Classification::Python);
        // A single call is a program, though.
        assert_eq!(classify("main()", None), Classification::Python);
    }

    #[test]
    fn python_with_semicolons_and_dicts_stays_python() {
        let code = "d = {'a': 1}; e = {1, 2}\nfor k in d: print(k, d[k]);\n";
        assert_eq!(classify(code, Some("python")), Classification::Python);
        assert!(parses_as_python(code));
    }

    #[test]
    fn javascript_labelled_python_is_javascript() {
        let code = "function f(a) {\n  return a * 2;\n}\nconsole.log(f(2));\n";
        assert_eq!(language(code, Some("python")), "javascript");
        assert!(!parses_as_python(code));
    }

    #[test]
    fn a_single_strong_signature_beats_a_clean_parse_without_python_constructs() {
        // Both parse as Python expressions.
        assert_eq!(language("console.log(x);", None), "javascript");
        assert_eq!(language("ls -la", None), "shell");
        // With Python-only constructs around it, `console.log` is just a method.
        let code = "import rich\ndef f(console):\n    console.log(1)\n";
        assert_eq!(classify(code, None), Classification::Python);
    }

    #[test]
    fn another_fence_tag_names_the_language_unless_the_block_is_clearly_python() {
        assert_eq!(language("x = 1", Some("js")), "javascript");
        assert_eq!(language("let v = vec![1];", Some("rs")), "rust");
        match classify("print(1)", Some("bash")) {
            Classification::NotPython { language, reason } => {
                assert_eq!(language, "shell");
                assert!(reason.contains("fenced as `bash`"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let python = "def f(x):\n    return [y for y in x]\n";
        assert_eq!(classify(python, Some("js")), Classification::Python);
    }

    #[test]
    fn python2_print_is_a_syntax_error_tree_sitter_accepts() {
        let (line, column, snippet, message) = syntax_error("x = 1\nprint \"x =\", x\n");
        assert_eq!((line, column), (2, 1));
        assert_eq!(snippet, "print \"x =\", x");
        assert!(message.contains("Python 2 print statement"), "{message}");
    }

    #[test]
    fn stray_prose_line_is_a_syntax_error_at_that_line() {
        let code = "def add(a, b):\n    return a + b\nThis adds two numbers.\n";
        let (line, column, snippet, message) = syntax_error(code);
        assert_eq!((line, column), (3, 1));
        assert_eq!(snippet, "This adds two numbers.");
        assert!(message.contains("prose"), "{message}");
    }

    /// Pseudo-code with operators and Python keywords is an attempt at code: a syntax error.
    /// Pseudo-code written as sentences is prose: not code.
    #[test]
    fn pseudo_code_is_a_syntax_error_unless_written_as_sentences() {
        let (line, column, ..) =
            syntax_error("for each item in list: if item > max then max = item");
        assert_eq!((line, column), (1, 1));
        assert!(is_not_code(
            "Set max to the first element.\nFor each element, if it is larger, it becomes max.\n"
        ));
    }

    #[test]
    fn messages_say_what_tree_sitter_knows() {
        assert_eq!(syntax_error("def f(:\n    pass\n").3, "missing `)`");
        assert_eq!(
            syntax_error("import math\nprint(math.sqrt(16)\n").3,
            "`(` was never closed"
        );
        assert_eq!(syntax_error("x = = 1").3, "unexpected `=`");
        let (line, _, _, message) = syntax_error("def area(r)\n    return r * r\n");
        assert_eq!(line, 1);
        assert_eq!(message, "expected `:` after the `def` header");
    }

    #[test]
    fn python_with_a_c_style_loop_is_broken_python() {
        let code = "def solve(n):\n    total = 0\n    for (i = 0; i < n; i++):\n        total += i\n    return total\n";
        assert_eq!(syntax_error(code).0, 3);
        let (line, _, _, message) = syntax_error("!pip install numpy\nimport numpy as np\n");
        assert_eq!(line, 1);
        assert!(message.contains("IPython"), "{message}");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // `é` is two bytes; the second `=` is the 8th character.
        let (line, column, ..) = syntax_error("café = = 1");
        assert_eq!((line, column), (1, 8));
    }

    #[test]
    fn pep_758_except_lists_are_python() {
        // Python 3.14 (the sandbox's) compiles both; only `as` needs the parentheses.
        for code in [
            "try:\n    f()\nexcept ValueError, TypeError:\n    pass\n",
            "try:\n    f()\nexcept E, e:\n    pass\n",
        ] {
            let got = classify(code, None);
            assert!(matches!(got, Classification::Python), "{code:?}: {got:?}");
        }
    }

    #[test]
    fn constructs_cpython_rejects_are_syntax_errors() {
        let cases = [
            ("exec \"x = 1\"\n", 1, "exec statement"),
            ("x = `y`\n", 1, "backtick"),
            ("if 1 <> 2:\n    pass\n", 1, "`<>`"),
            ("x = 0777\n", 1, "leading zeros"),
            ("x = 10L\n", 1, "`L`"),
            (
                "try:\n    f()\nexcept E, F as e:\n    pass\n",
                3,
                "needs parentheses",
            ),
            ("def f():\nreturn 1\n", 2, "expected an indented block"),
            (
                "def f():\n    a = 1\n        return a\n",
                3,
                "unexpected indent",
            ),
            ("  x = 1\ny = 2\n", 1, "unexpected indent"),
        ];
        for (code, want_line, want_message) in cases {
            let (line, _, _, message) = syntax_error(code);
            assert_eq!(line, want_line, "{code:?}");
            assert!(message.contains(want_message), "{code:?}: {message}");
        }
        // The valid spellings of the same things parse.
        for code in [
            "x = 0o777\ny = 0\nz = 00\n",
            "if 1 != 2:\n    pass\n",
            "print(\"x\")\n",
        ] {
            assert_eq!(classify(code, None), Classification::Python, "{code:?}");
        }
    }

    #[test]
    fn the_first_error_in_document_order_wins() {
        // The Python 2 print comes before the unclosed bracket.
        let (line, ..) = syntax_error("print 'a'\nx = (1,\n");
        assert_eq!(line, 1);
        let (line, ..) = syntax_error("x = (1,\nprint 'a'\n");
        assert_eq!(line, 1);
    }

    #[test]
    fn docstring_prose_does_not_count_as_prose() {
        let code = "def f():\n    \"\"\"Return one.\n\n    This is a sentence. So is this one.\n    And a third one here.\n    \"\"\"\n    return 1 +\n";
        let (line, ..) = syntax_error(code);
        assert_eq!(line, 7);
        // Also when tree-sitter wraps the whole `def` in an ERROR node.
        let wrapped = "def f(n):\n    \"\"\"Sum below n.\n\n    We loop once. This is the simple way.\n    It runs in linear time, which is fine.\n    Nothing else is needed here.\n    \"\"\"\n    for (i = 0; i < n; i++):\n        pass\n";
        assert_eq!(syntax_error(wrapped).0, 8);
    }

    #[test]
    fn a_checker_must_parse_and_define_check_at_top_level() {
        let problem = |code: &str| definition_problem(code, "check", &Budget::default());
        for good in [
            "def check(i, o, e):\n    return o == e\n",
            "import math\n\n@staticmethod\ndef check(i, o, e):\n    return True\n",
            "async def check(i, o, e):\n    return True\n",
            "try:\n    import numpy\nexcept ImportError:\n    def check(i, o, e):\n        return True\n",
            "check = lambda i, o, e: o.split() == e.split()\n",
            "from operator import eq as check\n",
            "class check:\n    def __init__(self, i, o, e):\n        pass\n",
        ] {
            assert_eq!(problem(good), None, "{good}");
        }
        let broken = problem("def check(:\n    return True\n").unwrap();
        assert!(broken.starts_with("not valid Python: line 1"), "{broken}");
        assert!(broken.contains("def check(:"), "{broken}");
        let py2 = problem("def check(i, o, e):\n    print 'x'\n    return True\n").unwrap();
        assert!(py2.contains("line 2") && py2.contains("print"), "{py2}");
        for missing in [
            "",
            "# no code\n",
            "def checker(i, o, e):\n    return True\n",
            "def outer():\n    def check(i, o, e):\n        return True\n",
            "class Judge:\n    def check(self, i, o, e):\n        return True\n",
            "f = lambda check: check\n",
            "import check\n",
        ] {
            let p = problem(missing).unwrap_or_else(|| panic!("{missing:?}"));
            assert!(
                p.contains("defines no `check` at top level"),
                "{missing:?}: {p}"
            );
        }
        // Too large to decide on the host: left to the sandbox.
        let tiny = Budget {
            max_bytes: 4,
            max_parse_ms: 0,
        };
        assert_eq!(definition_problem("def check(:", "check", &tiny), None);
    }
}
