//! The parse check behind the evaluation's parse rate: verdict's own extraction
//! (`verdict::extract::extract`) and parse gate (`verdict::pysource`), so the trainer
//! counts exactly what the reward service would let through its parse gate.

use verdict::extract::extract;
use verdict::pysource::{classify, parses_as_python, Classification};

/// Whether `code` is Python that passes verdict's parse check.
pub fn parses(code: &str) -> bool {
    parses_as_python(code)
}

/// The code candidate of a completion, as verdict extracts it (reasoning is never code), when
/// it passes the parse check's classification as Python; `None` for prose, other languages and
/// broken Python.
pub fn answer_code(completion: &str) -> Option<String> {
    let answer = extract(completion, parses_as_python);
    let code = answer.code?;
    (classify(&code, answer.fence_lang.as_deref()) == Classification::Python).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_fenced_answer_after_the_reasoning() {
        let c = "<think>sort it</think>\n```python\ndef f(xs):\n    return sorted(xs)\n```";
        assert_eq!(
            answer_code(c).as_deref(),
            Some("def f(xs):\n    return sorted(xs)\n")
        );
        assert!(parses("def f(xs):\n    return sorted(xs)\n"));
    }

    #[test]
    fn prose_and_broken_code_do_not_count() {
        assert_eq!(answer_code("<think>hmm</think>I do not know."), None);
        assert_eq!(answer_code("```python\ndef f(:\n```"), None);
        assert!(!parses("def f(:"));
    }
}
