//! HumanEval: `test` defines `check(candidate)`; it becomes one assert test calling it.

use super::fields::{bad, is_identifier};
use super::Adapted;
use crate::field_error::FieldError;
use crate::rollout::TestCase;

pub(super) fn adapt(test: &str, entry: &str) -> Result<Adapted, FieldError> {
    if !is_identifier(entry) {
        return Err(bad(
            "entry_point",
            format!("{entry:?} is not a Python identifier"),
        ));
    }
    Ok(Adapted {
        tests: vec![TestCase::Assert {
            code: format!("{test}\n\ncheck({entry})\n"),
            timing: false,
        }],
        setup: None,
        source: "humaneval",
        ..Adapted::default()
    })
}
