//! Does a line read as natural language rather than code?
//!
//! A line is prose when it is made only of words and sentence punctuation (two identifiers side
//! by side are never Python, unless the first is a keyword), or when it scores as prose: enough
//! words, many stopwords, sentence case, a full stop, a list marker, and no code operators
//! (`=`, a call `f(`, brackets, `;` at the end, `->`, …). Each code operator weighs against prose,
//! so pseudo-code such as `for each item in list: if item > max then max = item` is *not* prose.

/// Common English words that are not Python keywords (those are checked separately).
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "all", "also", "an", "any", "are", "be", "because", "been",
    "before", "below", "both", "but", "by", "can", "could", "do", "does", "each", "first", "from",
    "function", "given", "has", "have", "here", "how", "i", "if", "in", "into", "is", "it", "its",
    "just", "let", "me", "more", "need", "not", "of", "on", "once", "only", "or", "other", "our",
    "should", "so", "solution", "such", "than", "that", "the", "their", "them", "then", "there",
    "these", "this", "those", "through", "to", "until", "up", "us", "use", "uses", "using", "was",
    "we", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you",
    "your",
];

/// Python keywords (and the Python 2 `print`/`exec` statements) that may start a line of code.
const STATEMENT_KEYWORDS: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "exec", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "nonlocal", "not", "or", "pass", "print", "raise", "return", "try", "while", "with",
    "yield",
];

fn contains_word(list: &[&str], word: &str) -> bool {
    list.iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// Whether `line` reads as natural language.
pub(super) fn is_prose_line(line: &str) -> bool {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with(">>>") {
        return false;
    }
    let (body, listed) = strip_list_marker(line);
    // Words are runs of letters; a token with digits or `_` (`0x1f`, `max_len`) is not a word.
    let words: Vec<&str> = body
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '_'))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_alphabetic() || c == '\''))
        .collect();
    let Some(&first) = words.first() else {
        return false;
    };
    let first_is_keyword = body.starts_with(first) && contains_word(STATEMENT_KEYWORDS, first);
    let ends_sentence = body.ends_with(['.', '!', '?']) && !body.ends_with("...");

    // Only words and sentence punctuation.
    // A quoted line is a string literal, not a sentence.
    // A quoted line is a string literal, `!cmd`/`%magic` a notebook escape, not sentences.
    let wordy = !body.starts_with(['"', '\'', '!', '%'])
        && !body.split_whitespace().any(is_snake_or_dotted)
        && body
            .chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || ",.!?'\"-:;()".contains(c));
    // `ls -la`: a command-line flag is not a word.
    let flag = body
        .split_whitespace()
        .any(|t| t.len() > 1 && t.starts_with('-'));
    if wordy && !flag && !first_is_keyword && !has_call(body) && (words.len() >= 2 || ends_sentence)
    {
        return true;
    }

    let mut score: i32 = 0;
    if words.len() >= 3 {
        score += 1;
    }
    let stop = words.iter().filter(|w| contains_word(STOPWORDS, w)).count();
    if words.len() >= 4 && stop * 4 >= words.len() {
        score += 2;
    }
    if ends_sentence {
        score += 1;
    }
    let mut chars = body.chars();
    if chars.next().is_some_and(char::is_uppercase)
        && words
            .get(1)
            .is_some_and(|w| w.starts_with(char::is_lowercase))
    {
        score += 1;
    }
    if listed {
        score += 1;
    }
    if first_is_keyword && (body.ends_with(':') || words.len() <= 3) {
        score -= 2;
    }
    score -= 2 * code_marks(body);
    score >= 3
}

/// Strip a markdown list marker (`- `, `* `, `1. `, `2) `); says whether there was one.
fn strip_list_marker(line: &str) -> (&str, bool) {
    for marker in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return (rest.trim_start(), true);
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits <= 3 {
        let rest = &line[digits..];
        if let Some(rest) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return (rest.trim_start(), true);
        }
    }
    (line, false)
}

/// Whether an identifier is directly followed by `(`: a call, which prose does not write.
fn has_call(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2)
        .any(|w| w[1] == b'(' && (w[0].is_ascii_alphanumeric() || w[0] == b'_'))
}

/// How many distinct marks of code the line carries (capped at 3).
fn code_marks(s: &str) -> i32 {
    let marks = [
        s.contains('=') || s.contains(" < ") || s.contains(" > "),
        has_call(s),
        s.contains('[') || s.contains('{') || s.contains('}'),
        s.ends_with(';') || s.ends_with('{') || s.ends_with(')') || s.ends_with(']'),
        s.contains("->") || s.contains("::") || s.contains("&&") || s.contains("||"),
        s.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .any(is_snake_or_dotted),
    ];
    marks.iter().filter(|&&m| m).count().min(3) as i32
}

/// `snake_case` or `obj.attr` tokens: identifiers prose rarely writes.
fn is_snake_or_dotted(t: &str) -> bool {
    let inner = t.trim_matches(['_', '.']);
    let has_letter = |p: &str| p.starts_with(|c: char| c.is_ascii_alphabetic());
    (inner.contains('_') && inner.split('_').all(|p| !p.is_empty()))
        || (inner.contains('.')
            && inner.split('.').all(has_letter)
            && inner.len() > 3
            && !inner.contains(".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_prose() {
        for line in [
            "The answer is 42.",
            "This function adds two numbers.",
            "Hello world",
            "Sure!",
            "Here's the solution:",
            "1. Sort the list in ascending order.",
            "- We iterate over each element once, so the time is linear",
            "We use a dictionary to count occurrences (see below).",
        ] {
            assert!(is_prose_line(line), "{line:?} should be prose");
        }
    }

    #[test]
    fn code_is_not_prose() {
        for line in [
            "x = 1",
            "def add(a, b):",
            "return a + b",
            "for each item in list: if item > max then max = item",
            "print(\"The answer is 42.\")",
            "import os",
            "total = sum(values) / len(values)",
            "# This is a comment, written as a sentence.",
            "else:",
            "result.append(item)",
            "x",
            "print \"hello world\"",
            "ls -la",
            "python3 main.py",
            "!pip install numpy",
            "0x37000000374, 0x3750ee00378,",
            "\"The package tests.\"",
        ] {
            assert!(!is_prose_line(line), "{line:?} should not be prose");
        }
    }
}
