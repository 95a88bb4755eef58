//! The candidate's report of its top-level names, checked before the judge sees it.
//!
//! The report is the candidate's claim (its harness may be patched): only well-formed entries
//! cross — a Python identifier mapped to `"f"` (callable), `"d"` (data) or `"m"` (a module) —
//! and whether a module name is bound to the judge's own stdlib module is not the candidate's
//! word: the judge reads the program's source for a plain top-level import of it that is never
//! rebound (`_plain_imports` in `harness.py`). So the judge gets the program's source too.

use serde_json::{Map, Value};

/// A report longer than this is not read (no names are bound: each use fails as unknown).
pub(crate) const MAX_REPORT_BYTES: usize = 1 << 20;

/// Longest name kept.
const MAX_NAME_CHARS: usize = 200;

/// Whether `name` is a Python identifier (ASCII or Unicode letters, digits, `_`; no leading
/// digit).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && name.chars().count() <= MAX_NAME_CHARS
}

/// The kind a report entry may have, normalised: `"m:<anything>"` is `"m"`.
fn kind(value: &Value) -> Option<&'static str> {
    match value.as_str()? {
        "f" => Some("f"),
        "d" => Some("d"),
        k if k.starts_with("m:") => Some("m"),
        _ => None,
    }
}

/// The judge's `names` argument: `{"names": {name: kind}, "program": source, "judge_setup":
/// source}`, keeping only the report's well-formed entries. The judge-only setup travels here,
/// apart from the shared setup, so that only the shared setup's classes cross by value.
pub(crate) fn for_judge(reported: &str, program: &str, judge_setup: Option<&str>) -> String {
    let mut kept = Map::new();
    if reported.len() <= MAX_REPORT_BYTES {
        // A flat object; serde_json's own recursion limit bounds anything deeper.
        if let Ok(Value::Object(entries)) = serde_json::from_str::<Value>(reported) {
            for (name, value) in entries {
                if let (true, Some(k)) = (is_identifier(&name), kind(&value)) {
                    kept.insert(name, Value::String(k.into()));
                }
            }
        }
    }
    serde_json::json!({
        "names": kept,
        "program": program,
        "judge_setup": judge_setup.unwrap_or(""),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(reported: &str) -> Value {
        let v: Value = serde_json::from_str(&for_judge(reported, "x = 1", None)).unwrap();
        assert_eq!(v["program"], "x = 1");
        v["names"].clone()
    }

    #[test]
    fn only_well_formed_entries_cross() {
        assert_eq!(
            names(r#"{"add": "f", "xs": "d", "math": "m:math", "np": "m:numpy"}"#),
            serde_json::json!({"add": "f", "xs": "d", "math": "m", "np": "m"})
        );
        assert_eq!(
            names(r#"{"a b": "f", "1x": "f", "ok": "x", "deep": {"f": 1}, "n": 3, "été": "d"}"#),
            serde_json::json!({"été": "d"})
        );
        for bad in ["[]", "\"f\"", "{", "", &"[".repeat(100_000)] {
            assert_eq!(names(bad), serde_json::json!({}), "{bad:.20}");
        }
        let long = format!(r#"{{"{}": "f"}}"#, "a".repeat(MAX_NAME_CHARS + 1));
        assert_eq!(names(&long), serde_json::json!({}));
        let huge = format!(r#"{{"a": "f", "pad": "{}"}}"#, "x".repeat(MAX_REPORT_BYTES));
        assert_eq!(names(&huge), serde_json::json!({}));
    }

    proptest::proptest! {
        /// Whatever the candidate reports, the judge gets a JSON object whose names are
        /// identifiers and whose kinds are f, d or m.
        #[test]
        fn any_report_becomes_a_well_formed_one(report in "\\PC{0,200}", program in "\\PC{0,50}") {
            let v: Value = serde_json::from_str(&for_judge(&report, &program, None)).unwrap();
            proptest::prop_assert_eq!(v["program"].as_str(), Some(program.as_str()));
            for (name, kind) in v["names"].as_object().unwrap() {
                proptest::prop_assert!(is_identifier(name));
                proptest::prop_assert!(matches!(kind.as_str(), Some("f" | "d" | "m")));
            }
        }
    }
}
