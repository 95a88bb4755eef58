//! The one depth scanner, and every nesting limit verdict reads JSON under.
//!
//! JSON decoders recurse once per level of nesting, so text nested without bound would
//! overflow the stack. Every JSON text verdict reads from outside is scanned first by
//! [`deeper_than`] — one linear pass over the bytes, no recursion — against the limit of what
//! it is, and refused with an error naming that limit before any decoder sees it. The limits
//! nest: a message may wrap a rollout, a rollout wraps values.
//!
//! | limit | what it bounds |
//! |---|---|
//! | [`MAX_ROLLOUT_DEPTH`] | a rollout's JSON (a JSONL line, an HTTP rollout, a Python dict, a plug-in's `details`) |
//! | [`MAX_VALUE_DEPTH`] | one exact JSON value ([`crate::Json`]: a call test's `args`, `expected`) |
//! | [`MAX_MESSAGE_DEPTH`] | a message between verdict's own processes (a worker request wraps a rollout's tests) |
//! | [`MAX_ANSWER_DEPTH`] | a candidate's answer in the sandbox's value encoding |

use serde_json::Value;

use crate::field_error::FieldError;

/// The deepest JSON nesting a rollout may have, counting its own object as level 1 (a call
/// test's `expected` sits at level 4, so its value may nest 96 deep).
///
/// Below serde_json's own limit of 128 on purpose: a rollout accepted here can be re-encoded
/// inside a larger message (an HTTP batch, the sandbox's worker request) and still decode.
pub const MAX_ROLLOUT_DEPTH: usize = 100;

/// Most nesting one exact JSON value may have ([`crate::Json`]); above a rollout's own limit,
/// so every value of an accepted rollout reads, and JSON text from the gRPC service is checked
/// here.
pub const MAX_VALUE_DEPTH: u32 = 128;

/// Most nesting of a message between verdict's processes: a worker request wraps a rollout's
/// tests (at most [`MAX_ROLLOUT_DEPTH`]) in a few more levels.
pub const MAX_MESSAGE_DEPTH: usize = 256;

/// Most nesting of a candidate's answer: the harness's own cap (values are at most 200 levels
/// deep) times the three JSON levels of its deepest tag (`{"dict": [[k, v]]}`), with room.
pub const MAX_ANSWER_DEPTH: usize = 640;

/// Where the JSON text `json` first nests arrays and objects more than `max` deep: the byte
/// offset of the bracket that goes deeper, or `None`. One pass, no recursion; brackets inside
/// strings do not count. Text that is not JSON is scanned all the same (decoding it reports
/// the problem).
pub fn deeper_than(json: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Checks that the JSON text `json`, a `what` (`"a rollout"`), nests at most `max` deep; the
/// error (of the whole input) says where it went deeper.
pub fn check_depth(json: &[u8], max: usize, what: &str) -> Result<(), FieldError> {
    match deeper_than(json, max) {
        None => Ok(()),
        Some(i) => Err(FieldError::whole(format!(
            "JSON nested deeper than {max} levels (at byte {i}), the limit for {what}"
        ))),
    }
}

/// The nesting depth of an already decoded `value` (1 for a scalar), by an explicit stack: for
/// values built in memory (a trainer's dataset row) before they are written out as text.
pub fn value_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_counts_brackets_outside_strings() {
        assert_eq!(deeper_than(br#"[[1], {"a": [2]}]"#, 3), None);
        assert_eq!(deeper_than(br#"[[1], {"a": [2]}]"#, 2), Some(12));
        assert_eq!(deeper_than(br#"["[[[[", "\"[[["]"#, 1), None);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(deeper_than(deep.as_bytes(), MAX_ROLLOUT_DEPTH), Some(100));
        let e = check_depth(deep.as_bytes(), 5, "a rollout").unwrap_err();
        assert_eq!(e.field, "");
        assert!(e
            .reason
            .contains("deeper than 5 levels (at byte 5), the limit for a rollout"));
    }

    #[test]
    fn decoded_values_are_measured_without_recursion() {
        let mut v = Value::from(1);
        for _ in 0..2_000 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(value_depth(&v), 2_001);
        assert_eq!(value_depth(&serde_json::json!({"a": [1, {"b": 2}]})), 4);
    }
}
