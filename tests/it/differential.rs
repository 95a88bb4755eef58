//! A differential property test of the host's judgement of call-test values: on generated
//! plain values (None, bools, ints of any size, floats, strings, lists, tuples, sets, dicts
//! with str and int keys), `value_matches` under the `exact` rule decides exactly what
//! CPython's `==` decides, with the host's `python3` as the oracle. The documented exceptions
//! (README, "Comparison rules") are applied to both sides of the oracle's comparison: a tuple
//! compares as a list, and a bool never equals an int. (Float tolerance is another; the
//! `exact` rule has none.) The last, an `int` dict key matching its decimal spelling (JSON's
//! only way to write it), is judged both ways: with `strict_keys`, against `==` as it is; by
//! default, against `==` with int keys spelled as `str(k)`, a dict whose keys then collide
//! equal to nothing.
//!
//! Cases come from the fixed seed of [`config`], all judged by one `python3` process.

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use verdict::json::Exact;
use verdict::sandbox::compare::{parse_answer, value_matches};
use verdict::sandbox::Rule;
use verdict::{Compare, CompareMode};

use crate::props::config;

/// A plain Python value.
#[derive(Debug, Clone)]
enum Py {
    None,
    Bool(bool),
    /// Decimal digits, `-` first when negative.
    Int(String),
    Float(f64),
    Str(String),
    List(Vec<Py>),
    Tuple(Vec<Py>),
    /// Distinct ints and strings (no bools, no floats: `{True, 1}` would collapse).
    Set(Vec<Py>),
    /// Keys are ints or strings, distinct.
    Dict(Vec<(Py, Py)>),
}

fn int() -> impl Strategy<Value = Py> {
    prop_oneof![
        (-3i64..4).prop_map(|i| i.to_string()),
        prop::sample::select(vec![
            "9007199254740992",
            "9007199254740993",
            "-9007199254740993",
            "100000000000000000000",
            "18446744073709551616",
            "717897987691852588770249",
        ])
        .prop_map(str::to_string),
        "-?[1-9][0-9]{15,40}",
    ]
    .prop_map(Py::Int)
}

fn float() -> impl Strategy<Value = Py> {
    prop_oneof![
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            2.0,
            -3.0,
            0.1,
            0.30000000000000004,
            1e20,
            9007199254740992.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ]),
        (-1e6f64..1e6),
    ]
    .prop_map(Py::Float)
}

fn text() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "a", "b", "1", "ab", "é", "\"q\""]).prop_map(str::to_string)
}

fn value() -> impl Strategy<Value = Py> {
    let leaf = prop_oneof![
        Just(Py::None),
        any::<bool>().prop_map(Py::Bool),
        int(),
        float(),
        text().prop_map(Py::Str),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Py::List),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Py::Tuple),
            prop::collection::btree_set(-3i64..4, 0..4)
                .prop_map(|s| Py::Set(s.into_iter().map(|i| Py::Int(i.to_string())).collect())),
            prop::collection::btree_set(text(), 0..3)
                .prop_map(|s| Py::Set(s.into_iter().map(Py::Str).collect())),
            prop::collection::btree_map(
                prop_oneof![
                    text().prop_map(|s| format!("s{s}")),
                    (0i64..3).prop_map(|i| format!("i{i}"))
                ],
                inner,
                0..4
            )
            .prop_map(|m| Py::Dict(
                m.into_iter()
                    .map(|(k, v)| {
                        let key = match k.split_at(1) {
                            ("s", s) => Py::Str(s.to_string()),
                            (_, i) => Py::Int(i.to_string()),
                        };
                        (key, v)
                    })
                    .collect()
            )),
        ]
    })
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The value as Python source (the oracle evaluates it).
fn python(v: &Py, out: &mut String) {
    let seq = |items: &[Py], out: &mut String| {
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            python(x, out);
        }
    };
    match v {
        Py::None => out.push_str("None"),
        Py::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Py::Int(d) => out.push_str(d),
        Py::Float(f) if f.is_nan() => out.push_str("float('nan')"),
        Py::Float(f) if f.is_infinite() => out.push_str(if *f > 0.0 {
            "float('inf')"
        } else {
            "float('-inf')"
        }),
        Py::Float(f) => out.push_str(&format!("{f:?}")),
        Py::Str(s) => out.push_str(&quote(s)),
        Py::List(items) => {
            out.push('[');
            seq(items, out);
            out.push(']');
        }
        Py::Tuple(items) => {
            out.push('(');
            seq(items, out);
            out.push_str(if items.len() == 1 { ",)" } else { ")" });
        }
        Py::Set(items) if items.is_empty() => out.push_str("set()"),
        Py::Set(items) => {
            out.push('{');
            seq(items, out);
            out.push('}');
        }
        Py::Dict(pairs) => {
            out.push('{');
            for (i, (k, x)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python(k, out);
                out.push_str(": ");
                python(x, out);
            }
            out.push('}');
        }
    }
}

/// The value as the candidate's harness sends it (`sandbox/PROTOCOL.md`, "What crosses").
fn tagged(v: &Py, out: &mut String) {
    let seq = |items: &[Py], out: &mut String| {
        out.push('[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            tagged(x, out);
        }
        out.push(']');
    };
    match v {
        Py::None => out.push_str("null"),
        Py::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Py::Int(d) if d.trim_start_matches('-').len() < 16 => out.push_str(d),
        Py::Int(d) => out.push_str(&format!("{{\"int\":\"{d}\"}}")),
        Py::Float(f) if f.is_nan() => out.push_str("{\"float\":\"nan\"}"),
        Py::Float(f) if f.is_infinite() => out.push_str(if *f > 0.0 {
            "{\"float\":\"inf\"}"
        } else {
            "{\"float\":\"-inf\"}"
        }),
        Py::Float(f) => out.push_str(&format!("{f:?}")),
        Py::Str(s) => out.push_str(&quote(s)),
        Py::List(items) => seq(items, out),
        Py::Tuple(items) => {
            out.push_str("{\"tuple\":");
            seq(items, out);
            out.push('}');
        }
        Py::Set(items) => {
            out.push_str("{\"set\":");
            seq(items, out);
            out.push('}');
        }
        Py::Dict(pairs) => {
            out.push_str("{\"dict\":[");
            for (i, (k, x)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('[');
                tagged(k, out);
                out.push(',');
                tagged(x, out);
                out.push(']');
            }
            out.push_str("]}");
        }
    }
}

/// The expected JSON a dataset would hold for `v` (tuples and sets as arrays, keys as strings,
/// NaN as null), with the `mutate`-th leaf (in order) changed slightly when `mutate` is set.
fn expected(v: &Py, mutate: &mut Option<usize>, out: &mut String) {
    let hit = |mutate: &mut Option<usize>| match mutate {
        Some(0) => {
            *mutate = None;
            true
        }
        Some(n) => {
            *n -= 1;
            false
        }
        None => false,
    };
    let seq = |items: &[Py], mutate: &mut Option<usize>, out: &mut String| {
        out.push('[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            expected(x, mutate, out);
        }
        out.push(']');
    };
    match v {
        Py::None => out.push_str(if hit(mutate) { "0" } else { "null" }),
        Py::Bool(b) => out.push_str(match (hit(mutate), b) {
            (true, true) => "1",
            (true, false) => "0",
            (false, true) => "true",
            (false, false) => "false",
        }),
        Py::Int(d) => {
            if hit(mutate) {
                out.push_str(&format!("{d}.0"));
            } else {
                out.push_str(d);
            }
        }
        Py::Float(f) if f.is_nan() => out.push_str("null"),
        Py::Float(f) if f.is_infinite() => out.push_str(if *f > 0.0 { "1e999" } else { "-1e999" }),
        Py::Float(f) => {
            let f = if hit(mutate) {
                f * (1.0 + 1e-12) + 1e-300
            } else {
                *f
            };
            out.push_str(&format!("{f:?}"));
        }
        Py::Str(s) => {
            let s = if hit(mutate) {
                format!("{s}x")
            } else {
                s.clone()
            };
            out.push_str(&quote(&s));
        }
        Py::List(items) | Py::Tuple(items) | Py::Set(items) => seq(items, mutate, out),
        Py::Dict(pairs) => {
            out.push('{');
            for (i, (k, x)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let key = match k {
                    Py::Str(s) => s.clone(),
                    Py::Int(d) => d.clone(),
                    _ => unreachable!("keys are ints or strings"),
                };
                out.push_str(&quote(&key));
                out.push(':');
                expected(x, mutate, out);
            }
            out.push('}');
        }
    }
}

/// The oracle: CPython's `==` after the documented exceptions are applied to both sides.
const ORACLE: &str = r#"
import json, sys
def plain(v, spell_keys):
    if type(v) is bool:
        return ("BOOL", int(v))
    if type(v) in (list, tuple):
        return [plain(x, spell_keys) for x in v]
    if type(v) is dict:
        if not spell_keys:
            return {k: plain(x, spell_keys) for k, x in v.items()}
        keys = {str(k) if type(k) is int else k for k in v}
        if len(keys) < len(v):
            return object()
        return {str(k) if type(k) is int else k: plain(x, spell_keys) for k, x in v.items()}
    return v
for line in sys.stdin:
    case = json.loads(line)
    a = eval(case["a"])
    e = json.loads(case["e"])
    strict = plain(a, False) == plain(e, False)
    spelled = plain(a, True) == plain(e, True)
    print(int(strict), int(spelled))
"#;

#[test]
fn host_judgement_equals_cpython_equality_on_plain_values() {
    let strategy = (
        value(),
        prop_oneof![Just(None), (0usize..6).prop_map(Some)],
        value(),
    );
    let mut runner = TestRunner::new(config(400));
    let cases: Vec<(Py, String, String)> = (0..config(400).cases)
        .map(|i| {
            let (v, mutate, other) = strategy.new_tree(&mut runner).unwrap().current();
            let mut source = String::new();
            python(&v, &mut source);
            let mut e = String::new();
            // One case in five against an unrelated value.
            if i % 5 == 4 {
                expected(&other, &mut None, &mut e);
            } else {
                expected(&v, &mut mutate.clone(), &mut e);
            }
            (v, source, e)
        })
        .collect();
    let mut oracle = Command::new("python3")
        .args(["-c", ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (the oracle) runs");
    {
        let mut stdin = oracle.stdin.take().unwrap();
        for (_, a, e) in &cases {
            writeln!(stdin, "{}", serde_json::json!({"a": a, "e": e})).unwrap();
        }
    }
    let out = oracle.wait_with_output().unwrap();
    assert!(out.status.success(), "the oracle failed");
    let verdicts: Vec<(bool, bool)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| (l.starts_with('1'), l.ends_with('1')))
        .collect();
    assert_eq!(verdicts.len(), cases.len());
    let rule = |strict_keys| {
        Rule::from_compare(Compare {
            mode: Some(CompareMode::Exact),
            strict_keys: Some(strict_keys),
            ..Compare::default()
        })
    };
    let (strict, spelled) = (rule(true), rule(false));
    let (mut equal, mut only_spelled) = (0, 0);
    for ((v, source, e), (python_strict, python_spelled)) in cases.iter().zip(verdicts) {
        let mut answer = String::new();
        tagged(v, &mut answer);
        let actual = parse_answer(&answer).unwrap();
        let e_exact = Exact::parse(e).unwrap();
        let host_strict = value_matches(&actual, &e_exact, &strict).is_ok();
        assert_eq!(
            host_strict, python_strict,
            "strict_keys: python value {source}, expected JSON {e}: the host says {host_strict}, CPython {python_strict}"
        );
        let host_spelled = value_matches(&actual, &e_exact, &spelled).is_ok();
        assert_eq!(
            host_spelled, python_spelled,
            "int keys spelled: python value {source}, expected JSON {e}: the host says {host_spelled}, CPython {python_spelled}"
        );
        equal += usize::from(python_strict);
        only_spelled += usize::from(python_spelled && !python_strict);
    }
    // Both verdicts occur often enough for the comparison to mean something, and the int keys'
    // spelling decides some cases.
    let n = cases.len();
    assert!(equal > n / 5 && equal < n * 4 / 5, "{equal} of {n} equal");
    assert!(only_spelled > 0, "no case where int keys decided");
}
