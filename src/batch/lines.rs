//! The one definition of "a line" of a JSONL input: counting (the progress bar's total),
//! resume and scoring all read the input through [`records`].
//!
//! A record is a line that is not blank. `\n` and `\r\n` both end a line, a missing final
//! newline still ends the last one, and blank (or whitespace-only) lines carry no rollout:
//! they are skipped, but still count for the line numbers that name records in messages.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::rollout::Rollout;
use crate::score::Score;

/// One non-blank input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its 1-based line number in the input (blank lines counted).
    pub number: usize,
    /// Its text, without the line ending.
    pub text: String,
}

/// The records of `input`, in order (see the module docs).
pub fn records(input: impl Read) -> impl Iterator<Item = std::io::Result<Line>> {
    BufReader::new(input)
        .lines()
        .enumerate()
        .filter_map(|(i, line)| match line {
            Ok(text) if text.trim().is_empty() => None,
            Ok(text) => Some(Ok(Line {
                number: i + 1,
                // `lines` strips `\n` and `\r\n`; a lone `\r` before EOF is an ending too.
                text: text.strip_suffix('\r').map(str::to_string).unwrap_or(text),
            })),
            Err(e) => Some(Err(e)),
        })
}

/// How many records the file at `path` has.
pub fn count_records(path: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    for line in records(std::fs::File::open(path)?) {
        line?;
        n += 1;
    }
    Ok(n)
}

/// Parse one record into a rollout, or the `invalid_input` record for it.
pub fn parse_line(line: &Line) -> Result<Rollout, Box<Score>> {
    let n = line.number;
    Rollout::from_json(&line.text).map_err(|e| {
        let id = crate::rollout::readable_id(&line.text);
        Box::new(Score::invalid(id.as_deref(), n, format!("line {n}: {e}")))
    })
}

/// The id a record is written under (for matching on resume).
pub fn recorded_id(line: &Line) -> String {
    match parse_line(line) {
        Ok(r) => r.id,
        Err(s) => s.id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::Outcome;

    fn texts(input: &str) -> Vec<(usize, String)> {
        records(input.as_bytes())
            .map(|l| l.map(|l| (l.number, l.text)).unwrap())
            .collect()
    }

    #[test]
    fn blank_lines_crlf_and_a_missing_final_newline_are_one_definition() {
        let expected = vec![(1, "a".to_string()), (3, "b".into()), (4, "c".into())];
        assert_eq!(texts("a\n\nb\nc\n"), expected);
        assert_eq!(texts("a\r\n\r\nb\r\nc\r\n"), expected);
        assert_eq!(texts("a\n  \nb\nc"), expected);
        assert_eq!(texts("a\r\n\nb\nc\r"), expected);
        assert_eq!(texts(""), vec![]);
    }

    #[test]
    fn malformed_lines_name_the_line_and_field() {
        let line = |number, text: &str| Line {
            number,
            text: text.into(),
        };
        let err = parse_line(&line(12, r#"{"id": "a", "prompt": "p"}"#)).unwrap_err();
        assert_eq!(err.id, "a");
        assert_eq!(err.outcome, Outcome::InvalidInput);
        let msg = err.error.unwrap();
        assert_eq!(msg, "line 12: completion: is required");

        let err = parse_line(&line(3, r#"{"id": "b", "completion": 5}"#)).unwrap_err();
        assert!(err
            .error
            .unwrap()
            .contains("invalid type: integer `5`, expected a string"));

        let err = parse_line(&line(7, "{not json")).unwrap_err();
        assert_eq!(err.id, "input-7");
        assert!(err.error.unwrap().starts_with("line 7: "));

        // The id is kept whenever it can be read: a later field out of every number's range,
        // a line cut short.
        let err = parse_line(&line(
            8,
            r#"{"id": "c", "completion": "x", "score": 1e999999}"#,
        ))
        .unwrap_err();
        assert_eq!(err.id, "c");
        assert!(err.error.unwrap().contains("field `score`"));
        let err =
            parse_line(&line(9, r#"{"id": "d", "completion": "x", "tests": [{"#)).unwrap_err();
        assert_eq!(err.id, "d");
        // A 5,736-digit expected integer is valid input now.
        let big = "9".repeat(5736);
        let ok = format!(
            r#"{{"id": "e", "completion": "x", "tests": [{{"kind": "call", "fn": "f", "expected": {big}}}]}}"#
        );
        assert_eq!(parse_line(&line(10, &ok)).unwrap().id, "e");
    }
}
