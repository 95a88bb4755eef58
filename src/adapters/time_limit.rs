//! A problem's time limit per test from its data: TACO's text, CodeContests' `{seconds, nanos}`,
//! or a number of seconds.

use serde_json::{Map, Value};

use super::fields::dataset_field;

/// The most milliseconds a dataset's time limit is read as (a day): past it, it is no limit
/// verdict could honour anyway, and the configured cap applies.
const MAX_TIME_LIMIT_MS: f64 = 86_400_000.0;

/// A problem's time limit per test, in milliseconds, from the dataset field `time_limit`:
///
/// - TACO (and APPS-style scrapes): text, a number and a unit — `"1 second"`, `"2 seconds"`,
///   `"0.5 seconds"`, `"1.5 s"`, `"1000 ms"`, `"2 sec"`, `"3 milliseconds"`; a bare number in
///   text is seconds (`"2"`);
/// - CodeContests: `{"seconds": 2, "nanos": 500000000}` (either part may be absent or null);
/// - a JSON number: seconds.
///
/// Anything else (`null`, `"None"`, `"-"`, text in another shape, a limit of 0 or below) is no
/// time limit; a limit under a millisecond is one millisecond.
pub fn time_limit_ms(x: &Map<String, Value>) -> Option<u64> {
    let seconds = match dataset_field(x, "time_limit")? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => seconds_of_text(s)?,
        Value::Object(o) => {
            let part = |k: &str| match o.get(k) {
                None | Some(Value::Null) => Some(0.0),
                Some(v) => v.as_f64(),
            };
            part("seconds")? + part("nanos")? / 1e9
        }
        _ => return None,
    };
    let ms = seconds * 1000.0;
    (ms.is_finite() && ms > 0.0).then(|| ms.clamp(1.0, MAX_TIME_LIMIT_MS).ceil() as u64)
}

/// `"1 second"`, `"2.5 seconds"`, `"1000 ms"`, `"2"` as seconds.
fn seconds_of_text(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let per_unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" | "msec" | "millisecond" | "milliseconds" => 1e-3,
        _ => return None,
    };
    Some(value * per_unit)
}
