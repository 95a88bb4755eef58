//! LiveCodeBench: `public_test_cases` / `private_test_cases` (arrays, JSON text, or base64 of
//! zlib of the pickle of a JSON string), stdin or functional; the compressed tests are decoded
//! without running any pickle code ([`pickled_string`]).

use std::io::Read;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::fields::{bad, dataset_field, is_identifier, json_lines, json_or_string};
use super::Adapted;
use crate::field_error::FieldError;
use crate::json::Json;
use crate::rollout::TestCase;

/// The name of the call shim LiveCodeBench functional tests go through.
pub const LCB_SHIM: &str = "__verdict_lcb_call";

/// Most bytes a compressed LiveCodeBench test field may inflate to.
pub const MAX_INFLATED: u64 = 256 << 20;

/// A LiveCodeBench test-case field: an array, the JSON text of one, or LiveCodeBench's
/// compressed form `base64(zlib(pickle(json_text)))`.
fn lcb_cases(v: &Value, field: &str) -> Result<Vec<Value>, FieldError> {
    let text = match v {
        Value::Array(a) => return Ok(a.clone()),
        Value::String(s) => s,
        _ => return Err(bad(field, "expected an array of test cases")),
    };
    let trimmed = text.trim_start();
    let json = if trimmed.starts_with('[') || trimmed.is_empty() {
        text.clone()
    } else {
        decompress_lcb(text).map_err(|e| bad(field, e))?
    };
    match serde_json::from_str::<Value>(&json) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(_) => Err(bad(field, "expected an array of test cases")),
        Err(e) => Err(bad(field, format!("not JSON: {e}"))),
    }
}

/// `json_text` from `base64(zlib(pickle(json_text)))`, inflating at most [`MAX_INFLATED`]
/// bytes and running no pickle code.
pub fn decompress_lcb(text: &str) -> Result<String, String> {
    let packed = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("neither JSON nor base64 ({e})"))?;
    let mut pickle = Vec::new();
    flate2::read::ZlibDecoder::new(packed.as_slice())
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut pickle)
        .map_err(|e| format!("base64, but not zlib data ({e})"))?;
    if pickle.len() as u64 > MAX_INFLATED {
        return Err(format!("inflates to more than {} MiB", MAX_INFLATED >> 20));
    }
    pickled_string(&pickle)
}

/// The string a pickle holds, when it is the pickle of one `str` (or UTF-8 `bytes`), any
/// protocol from 1 to 5; any other pickle is refused. No opcode beyond these is interpreted,
/// so nothing can run: `PROTO`, `FRAME`, one string opcode (`SHORT_BINUNICODE`,
/// `BINUNICODE`, `BINUNICODE8`, `SHORT_BINBYTES`, `BINBYTES`, `BINBYTES8`), an optional
/// memo store (`MEMOIZE`, `BINPUT`, `LONG_BINPUT`), `STOP`, and nothing after it.
pub fn pickled_string(p: &[u8]) -> Result<String, String> {
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= p.len())
            .ok_or("the pickle is cut short")?;
        let s = &p[*at..end];
        *at = end;
        Ok(s)
    };
    let len = |b: &[u8]| -> Result<usize, String> {
        let mut v = 0u64;
        for (i, byte) in b.iter().enumerate() {
            v |= u64::from(*byte) << (8 * i);
        }
        usize::try_from(v).map_err(|_| "a length beyond this machine".to_string())
    };
    // Skips FRAME opcodes (protocol 4+) wherever they stand between opcodes.
    let skip_frames = |at: &mut usize| -> Result<(), String> {
        while p.get(*at) == Some(&0x95) {
            *at += 1;
            take(at, 8)?;
        }
        Ok(())
    };
    if p.first() == Some(&0x80) {
        let proto = take(&mut at, 2)?[1];
        if proto > 5 {
            return Err(format!("pickle protocol {proto} is not known"));
        }
    }
    skip_frames(&mut at)?;
    let op = *take(&mut at, 1)?.first().expect("one byte");
    let (n, text) = match op {
        0x8c => (len(take(&mut at, 1)?)?, true),
        b'X' => (len(take(&mut at, 4)?)?, true),
        0x8d => (len(take(&mut at, 8)?)?, true),
        b'C' => (len(take(&mut at, 1)?)?, false),
        b'B' => (len(take(&mut at, 4)?)?, false),
        0x8e => (len(take(&mut at, 8)?)?, false),
        other => {
            return Err(format!(
                "the pickle is not of one string (opcode 0x{other:02x}); only a pickled str is read"
            ))
        }
    };
    let body = take(&mut at, n)?;
    let s = std::str::from_utf8(body)
        .map_err(|_| {
            format!(
                "the pickled {} is not UTF-8",
                if text { "str" } else { "bytes" }
            )
        })?
        .to_string();
    skip_frames(&mut at)?;
    match p.get(at) {
        Some(0x94) => at += 1,
        Some(b'q') => at += 2,
        Some(b'r') => at += 5,
        _ => {}
    }
    skip_frames(&mut at)?;
    if p.get(at) != Some(&b'.') || at + 1 != p.len() {
        return Err("the pickle holds more than one string".into());
    }
    Ok(s)
}

pub(super) fn adapt(x: &Map<String, Value>) -> Result<Adapted, FieldError> {
    let metadata = match dataset_field(x, "metadata") {
        Some(m) => json_or_string(m, "metadata")?,
        None => Value::Null,
    };
    let func = metadata.get("func_name").and_then(Value::as_str);
    let mut tests = Vec::new();
    let mut functional = false;
    for field in ["public_test_cases", "private_test_cases"] {
        let Some(v) = dataset_field(x, field) else {
            continue;
        };
        for c in lcb_cases(v, field)? {
            let input = c
                .get("input")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(field, "`input` must be a string"))?;
            let output = c
                .get("output")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(field, "`output` must be a string"))?;
            match c.get("testtype").and_then(Value::as_str) {
                Some("stdin") | None => tests.push(TestCase::Stdio {
                    stdin: input.to_string(),
                    stdout: output.to_string(),
                    timing: false,
                    compare: None,
                    checker: None,
                }),
                Some("functional") => {
                    functional = true;
                    tests.push(TestCase::Call {
                        function: LCB_SHIM.to_string(),
                        args: json_lines(input, field)?,
                        expected: Json::from_text(output)
                            .map_err(|e| bad(field, format!("an output is {e}")))?,
                        timing: false,
                        compare: None,
                    });
                }
                Some(other) => return Err(bad(field, format!("unknown testtype {other:?}"))),
            }
        }
    }
    let setup = if functional {
        let f =
            func.ok_or_else(|| bad("metadata", "functional tests need `metadata.func_name`"))?;
        if !is_identifier(f) {
            return Err(bad("metadata", format!("{f:?} is not a Python identifier")));
        }
        Some(format!(
            "def {LCB_SHIM}(*args):\n    if 'Solution' in globals():\n        return Solution().{f}(*args)\n    return {f}(*args)\n"
        ))
    } else {
        None
    };
    Ok(Adapted {
        tests,
        setup,
        source: "livecodebench",
        ..Adapted::default()
    })
}
