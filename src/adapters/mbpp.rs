//! MBPP (original and sanitized): `test_list` assert statements, with `test_setup_code` and
//! `test_imports` before each.

use serde_json::Value;

use super::fields::{bad, text};
use super::Adapted;
use crate::field_error::FieldError;
use crate::rollout::TestCase;

pub(super) fn adapt(
    list: &Value,
    setup: Option<&str>,
    imports: Option<&Value>,
) -> Result<Adapted, FieldError> {
    let items = list
        .as_array()
        .ok_or_else(|| bad("test_list", "expected an array of assert statements"))?;
    let imports = match imports {
        None | Some(Value::Null) => String::new(),
        Some(v) => text(v, "test_imports")?,
    };
    let prefix = [imports.as_str(), setup.unwrap_or("")]
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!("{s}\n"))
        .reduce(|a, b| a + &b);
    let tests = items
        .iter()
        .map(|t| {
            t.as_str()
                .map(|code| TestCase::Assert {
                    code: format!("{}{code}\n", prefix.as_deref().unwrap_or("")),
                    timing: false,
                })
                .ok_or_else(|| bad("test_list", "every entry must be a string"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Adapted {
        tests,
        setup: None,
        source: "mbpp",
        ..Adapted::default()
    })
}
