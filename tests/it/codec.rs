//! Property tests of what crosses the sandbox boundary: the host's reading of answers (any
//! text, never a panic, bounded time) and the round trip of values through both instances (a
//! value handed to an identity function comes back equal, through a call test judged on the
//! host and through an assert test judged in the judge instance).

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};
use verdict::json::Exact;
use verdict::sandbox::compare::{parse_answer, value_matches, MAX_ANSWER_DEPTH};
use verdict::sandbox::{Rule, Tolerance};
use verdict::Outcome;

use crate::props::config;
use crate::sandbox::{run, tests};

const TOL: Tolerance = Tolerance {
    rel: 1e-6,
    abs: 1e-6,
};

fn rule() -> Rule {
    Rule::with_tolerance(TOL)
}

/// JSON values as rollouts carry them: finite numbers, strings with any characters, nesting.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z0-9_ ]{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text shaped like answers, tags and brackets included, often malformed.
fn answer_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"ok\"".to_string()),
        Just("\"set\"".to_string()),
        Just("\"dict\"".to_string()),
        Just("\"int\"".to_string()),
        Just("\"tuple\"".to_string()),
        Just("\"handle\"".to_string()),
        Just("\"fraction\"".to_string()),
        Just("\"99999999999999999999\"".to_string()),
        Just("1e308".to_string()),
        Just("-0.0".to_string()),
        Just("null".to_string()),
        Just("\"\\ud800\"".to_string()),
        "[0-9]{1,30}".prop_map(|s| s),
    ];
    prop::collection::vec(token, 0..200).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_answer_text_is_read_and_compared_without_panicking(
        text in prop_oneof![any::<String>(), answer_soup()],
        expected in json_value(),
    ) {
        let start = Instant::now();
        let expected = Exact::parse(&expected.to_string()).unwrap();
        if let Ok(v) = parse_answer(&text) {
            let _ = value_matches(&v, &expected, &rule());
            if let Some(ok) = v.get("ok") {
                let _ = value_matches(ok, &expected, &rule());
            }
        }
        prop_assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn deep_answers_are_refused_at_any_depth(depth in 600usize..200_000) {
        let text = format!("{{\"ok\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        let result = parse_answer(&text);
        // The value sits one level below the answer object.
        prop_assert_eq!(result.is_err(), depth + 1 > MAX_ANSWER_DEPTH);
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn values_cross_both_instances_and_come_back_equal(value in json_value()) {
        let text = value.to_string();
        let t = tests(json!([
            {"kind": "call", "fn": "echo", "args": [value.clone()], "expected": value.clone()},
            {"kind": "assert", "code": format!(
                "import json\nv = json.loads({})\nassert echo(v) == v and type(echo(v)) is type(v)",
                serde_json::to_string(&text).unwrap()
            )},
        ]));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let r = rt.block_on(run("def echo(x):\n    return x\n", &t));
        prop_assert_eq!(r.outcome, Outcome::Passed, "{:#?}", r);
    }
}
