//! The one definition of "a line" of a JSONL input: counting (the progress bar's total),
//! resume and scoring all read the input through [`records`].
//!
//! A record is a line that is not blank. `\n` and `\r\n` both end a line, a missing final
//! newline still ends the last one, and blank (or whitespace-only) lines carry no rollout:
//! they are skipped, but still count for the line numbers that name records in messages. A
//! byte-order mark at the start of the input is not part of the first line, and a line that is
//! not UTF-8 is a record of its own (its `invalid_input` names the line and the byte), never
//! the end of the run.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::rollout::Rollout;
use crate::score::Score;

/// One non-blank input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its 1-based line number in the input (blank lines counted).
    pub number: usize,
    /// Its text, without the line ending (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
    /// Where the line stops being UTF-8 (a byte offset), if it does.
    pub not_utf8: Option<usize>,
}

/// The records of `input`, in order (see the module docs).
pub fn records(input: impl Read) -> impl Iterator<Item = std::io::Result<Line>> {
    BufReader::new(input)
        .split(b'\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let mut bytes = match line {
                Ok(bytes) => bytes,
                Err(e) => return Some(Err(e)),
            };
            // `\n` and `\r\n` both end a line; a lone `\r` before EOF is an ending too.
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            if i == 0 && bytes.starts_with(BOM) {
                bytes.drain(..BOM.len());
            }
            let (text, not_utf8) = match String::from_utf8(bytes) {
                Ok(text) => (text, None),
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(at))
                }
            };
            if text.trim().is_empty() && not_utf8.is_none() {
                return None;
            }
            Some(Ok(Line {
                number: i + 1,
                text,
                not_utf8,
            }))
        })
}

/// The UTF-8 byte-order mark some editors write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

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
    if let Some(at) = line.not_utf8 {
        let id = crate::rollout::readable_id(&line.text);
        return Err(Box::new(Score::invalid(
            id.as_deref(),
            n,
            format!("line {n}: not UTF-8 (an invalid byte at byte {at} of the line)"),
        )));
    }
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
    fn a_line_that_is_not_utf8_is_its_own_record_and_a_bom_is_not_text() {
        let input = b"\xEF\xBB\xBF{\"id\": \"a\", \"completion\": \"x\"}\n{\"id\": \"b\", \"completion\": \"\xff\"}\n{\"id\": \"c\", \"completion\": \"y\"}\n";
        let lines: Vec<Line> = records(&input[..]).map(Result::unwrap).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(parse_line(&lines[0]).unwrap().id, "a");
        let bad = parse_line(&lines[1]).unwrap_err();
        assert_eq!(bad.id, "b");
        assert_eq!(
            bad.error.as_deref(),
            Some("line 2: not UTF-8 (an invalid byte at byte 27 of the line)")
        );
        assert_eq!(parse_line(&lines[2]).unwrap().id, "c");
    }

    #[test]
    fn malformed_lines_name_the_line_and_field() {
        let line = |number, text: &str| Line {
            number,
            text: text.into(),
            not_utf8: None,
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
