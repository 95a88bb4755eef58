//! Property tests over everything that reads untrusted input on the host before the sandbox:
//! extraction, the parse classifier, JSONL rollout decoding and protobuf decoding with its
//! conversion. Arbitrary and adversarial inputs (deep brackets, unclosed fences, many think
//! tags, one huge line) must never panic, overflow the stack or take long.
//!
//! Case counts are kept small so that the module runs in well under a minute in a debug build;
//! raise them for a longer local run with `PROPTEST_CASES=N cargo test --test it props::`.

use std::time::{Duration, Instant};
use verdict::batch::Line;

use proptest::prelude::*;
use prost::Message;

use verdict::extract::{extract, Answer, CodeSource, ThinkTags};
use verdict::pb;
use verdict::pysource::{classify, parses_as_python, Classification};
use verdict::{Outcome, Rollout};

/// `cases` cases (or `PROPTEST_CASES`), and no regression file written: a failure prints its
/// input, and a case worth keeping becomes a named test. The inputs come from a fixed seed, so
/// CI runs the same cases every time; set `PROPTEST_RNG_SEED` (a number) to explore others.
pub(crate) fn config(cases: u32) -> ProptestConfig {
    let env = |k: &str| std::env::var(k).ok().and_then(|n| n.parse::<u64>().ok());
    ProptestConfig {
        cases: env("PROPTEST_CASES").map_or(cases, |n| n as u32),
        rng_seed: proptest::test_runner::RngSeed::Fixed(env("PROPTEST_RNG_SEED").unwrap_or(0x5eed)),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A stack far smaller than a tokio worker's (2 MiB): a walk that recursed per nesting level
/// of its input would overflow it on the deep cases.
const SMALL_STACK: usize = 512 * 1024;

/// The most one adversarial case may take in a debug build (each is at most a few hundred KB;
/// the quadratic parse this guards against took 14 s on 200 KB in a release build).
const SLOW: Duration = Duration::from_secs(10);

/// Runs `f` on a thread with [`SMALL_STACK`] and returns its result and how long it took.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let start = Instant::now();
            let out = f();
            (out, start.elapsed())
        })
        .expect("spawn a thread")
        .join()
        .expect("no panic, no stack overflow")
}

/// What holds for every answer, whatever the completion.
fn check_answer(completion: &str, a: &Answer) {
    if a.skipped.is_some() {
        assert!(completion.len() > verdict::extract::MAX_COMPLETION_BYTES);
        assert!(a.code.is_none() && a.text.is_empty());
        return;
    }
    assert_eq!(a.code.is_none(), a.source == CodeSource::None, "{a:?}");
    assert!(a.text.len() <= completion.len());
    match a.source {
        CodeSource::Bare => {
            assert_eq!(a.blocks, 0);
            assert_eq!(a.code.as_deref(), Some(a.text.trim_matches('\n')));
        }
        CodeSource::PythonFence | CodeSource::UntaggedFence | CodeSource::OtherFence => {
            assert!(a.blocks > 0)
        }
        CodeSource::None => assert!(a.blocks == 0 && a.text.trim().is_empty(), "{a:?}"),
    }
    if a.think == ThinkTags::Absent {
        assert_eq!(a.text, completion);
        assert_eq!(a.thinking, None);
    }
}

/// What holds for every classification.
fn check_class(code: &str, class: &Classification) {
    if let Classification::SyntaxError {
        line,
        column,
        snippet,
        ..
    } = class
    {
        let lines = code.split('\n').count();
        assert!((1..=lines).contains(line), "line {line} of {lines}");
        assert!(*column >= 1);
        assert!(snippet.chars().count() <= 200);
    }
    if code.trim().is_empty() {
        assert!(matches!(class, Classification::NotCode { .. }));
    }
}

/// Tokens that matter to extraction and parsing, to build adversarial text from.
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "<think>",
        "</think>",
        "```",
        "```python\n",
        "~~~",
        "`",
        "\n",
        "    ",
        "\t",
        "[",
        "]",
        "(",
        ")",
        "{",
        "}",
        "\"",
        "'",
        "\"\"\"",
        "#",
        "> ",
        "- ",
        "def f(",
        "):",
        "x",
        " = ",
        "1",
        "print",
        "<div>",
        "\\",
        ",",
        ":",
        "é",
        "\r\n",
    ])
}

fn token_soup(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..max).prop_map(|t| t.concat())
}

/// Adversarial completions of a few hundred KB at most, in the shapes that used to hurt.
fn adversarial() -> impl Strategy<Value = String> {
    prop_oneof![
        // Brackets nested deep, in a fence or bare.
        (
            1usize..30_000,
            prop::sample::select(vec!["[]", "()", "{}"]),
            any::<bool>()
        )
            .prop_map(|(n, pair, fenced)| {
                let (open, close) = pair.split_at(1);
                let deep = format!("{}{}", open.repeat(n), close.repeat(n));
                if fenced {
                    format!("<think>r</think>\n```\n{deep}\n```\n")
                } else {
                    deep
                }
            }),
        // One long line of tags (quadratic in the parse gate once).
        (1usize..40_000).prop_map(|n| format!("```python\n{}\n```", "<div>".repeat(n))),
        // Many think tags, some inside code.
        (1usize..20_000, any::<bool>()).prop_map(|(n, in_code)| {
            let tags = "<think>a</think>".repeat(n);
            if in_code {
                format!("<think>r</think>\n```python\ns = \"{tags}\"\n```")
            } else {
                format!("{tags}\nprint(1)")
            }
        }),
        // Unclosed fences and deep block quotes or lists.
        (1usize..20_000).prop_map(|n| "```python\nx = (\n".repeat(n)),
        (1usize..20_000).prop_map(|n| format!("{}print(1)\n", "> ".repeat(n))),
        (1usize..300).prop_map(|n| (0..n).map(|i| format!("{}- x\n", "  ".repeat(i))).collect()),
    ]
}

/// Python's keywords and soft keywords that `[a-z_]{1,8}` can spell.
const PYTHON_KEYWORDS: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn extraction_of_any_string_holds_its_invariants(s in any::<String>()) {
        let a = extract(&s, parses_as_python);
        check_answer(&s, &a);
    }

    #[test]
    fn extraction_of_token_soup_holds_its_invariants(s in token_soup(200)) {
        let a = extract(&s, parses_as_python);
        check_answer(&s, &a);
    }

    #[test]
    fn classification_of_token_soup_holds_its_invariants(
        s in token_soup(200),
        fence in prop::option::of(prop::sample::select(vec!["python", "js", "rust", "", "bash"])),
    ) {
        let class = classify(&s, fence);
        check_class(&s, &class);
        prop_assert_eq!(&class, &classify(&s, fence), "classification is deterministic");
    }

    #[test]
    fn a_close_tag_in_the_answer_code_never_changes_the_code(
        body in "[a-z_]{1,8}".prop_filter("a Python keyword is not a name", |b| !PYTHON_KEYWORDS.contains(&b.as_str())),
        quote in prop::sample::select(vec!["</think>", "<think>", "<think></think>"]),
    ) {
        let code = format!("def {body}():\n    return \"{quote}\"\n");
        let a = extract(&format!("<think>\nplan\n</think>\n```python\n{code}```\n"), parses_as_python);
        prop_assert_eq!(a.think, ThinkTags::WellFormed);
        prop_assert_eq!(a.code.as_deref(), Some(code.as_str()));
        prop_assert_eq!(classify(&code, Some("python")), Classification::Python);
    }

    #[test]
    fn jsonl_decoding_of_any_line_never_panics_and_names_the_line(
        line in prop_oneof![any::<String>(), token_soup(100)],
        n in 1usize..1_000_000,
    ) {
        if let Err(score) = verdict::batch::parse_line(&Line { number: n, text: line.clone(), not_utf8: None }) {
            prop_assert_eq!(score.outcome, Outcome::InvalidInput);
            let error = score.error.unwrap_or_default();
            let named = format!("line {n}:");
            prop_assert!(error.starts_with(&named), "{}", error);
        }
    }

    #[test]
    fn jsonl_decoding_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            let _ = verdict::batch::parse_line(&Line { number: i + 1, text: line.to_string(), not_utf8: None });
        }
    }

    #[test]
    fn proto_decoding_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(req) = pb::ScoreRequest::decode(bytes.as_slice()) {
            if let Some(r) = req.rollout {
                convert_round_trip(r);
            }
        }
        if let Ok(req) = pb::ScoreBatchRequest::decode(bytes.as_slice()) {
            for r in req.rollouts {
                convert_round_trip(r);
            }
        }
        let _ = pb::Score::decode(bytes.as_slice()).map(verdict::Score::try_from);
    }

    #[test]
    fn proto_decoding_of_mutated_requests_never_panics(
        rollout in pb_rollout(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let mut bytes = pb::ScoreRequest { rollout: Some(rollout) }.encode_to_vec();
        for (at, byte) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        if let Ok(pb::ScoreRequest { rollout: Some(r) }) = pb::ScoreRequest::decode(bytes.as_slice()) {
            convert_round_trip(r);
        }
    }
}

proptest! {
    // Each case is up to a few hundred KB: few cases, and each timed.
    #![proptest_config(config(24))]

    #[test]
    fn adversarial_completions_are_fast_and_never_overflow(c in adversarial()) {
        let len = c.len();
        let ((), took) = on_small_stack(move || {
            let a = extract(&c, parses_as_python);
            check_answer(&c, &a);
            if let Some(code) = &a.code {
                let class = classify(code, a.fence_lang.as_deref());
                check_class(code, &class);
            }
        });
        prop_assert!(took < SLOW, "{} bytes took {:?}", len, took);
    }

    #[test]
    fn deep_json_lines_are_invalid_input_not_a_crash(depth in 90usize..50_000) {
        let value = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let line = format!(
            r#"{{"id": "deep", "completion": "x", "tests": [{{"kind": "call", "fn": "f", "expected": {value}}}]}}"#
        );
        let (res, _) = on_small_stack(move || verdict::batch::parse_line(&Line { number: 7, text: line, not_utf8: None }).map(|r| r.id));
        // The value sits at level 4 of the line.
        if depth + 3 <= verdict::depth::MAX_ROLLOUT_DEPTH {
            prop_assert_eq!(res.ok(), Some("deep".to_string()));
        } else {
            let score = res.expect_err("too deep");
            prop_assert_eq!(score.outcome, Outcome::InvalidInput);
            let error = score.error.unwrap_or_default();
            prop_assert!(error.starts_with("line 7: JSON nested deeper than"), "{}", error);
        }
    }
}

/// A wire rollout that converts (or fails with a named field) converts the same way again after
/// a round trip through [`pb::Rollout::from`].
fn convert_round_trip(r: pb::Rollout) {
    if let Ok(rollout) = Rollout::try_from(r) {
        let again = Rollout::try_from(pb::Rollout::from(&rollout))
            .expect("a converted rollout converts back");
        assert_eq!(again, rollout);
    }
}

/// JSON text for `args` and `expected`: valid, invalid, and nested past the depth limits.
fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1".to_string()),
        Just("[1, [2, {\"a\": null}]]".to_string()),
        "[\\[\\]{}0-9,\" ]{0,40}",
        (1usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
    ]
}

/// Wire rollouts with plausible and implausible fields.
fn pb_rollout() -> impl Strategy<Value = pb::Rollout> {
    let test = (
        json_text(),
        prop::collection::vec(json_text(), 0..3),
        "[a-z]{0,6}",
    )
        .prop_map(|(expected, args, function)| pb::TestCase {
            kind: Some(pb::test_case::Kind::Call(pb::CallTest {
                r#fn: function,
                args,
                expected,
                timing: false,
                compare: String::new(),
            })),
        });
    (
        "[a-z0-9-]{0,8}",
        token_soup(40),
        prop::collection::vec(test, 0..3),
    )
        .prop_map(|(id, completion, tests)| pb::Rollout {
            id,
            completion,
            tests,
            ..Default::default()
        })
}

/// The bound the adversarial cases are held to means something: the one long line of tags that
/// took 13.9 s is now within a small multiple of the same tags one per line.
#[test]
fn one_long_line_costs_about_what_many_short_lines_cost() {
    let tags = 40_000;
    let time = |code: String| {
        let start = Instant::now();
        let class = classify(&code, Some("python"));
        (start.elapsed(), class)
    };
    let (short, short_class) = time("<div>\n".repeat(tags));
    let (long, class) = time("<div>".repeat(tags));
    for c in [&short_class, &class] {
        assert!(
            matches!(c, Classification::NotPython { language, .. } if language == "html"),
            "{c:?}"
        );
    }
    // Inside a function, where no other language is guessed: a syntax error at that line.
    let code = format!("def f():\n    x = 1\n    {}\n", "<a>".repeat(tags));
    let (in_def, class) = time(code);
    assert!(
        matches!(&class, Classification::SyntaxError { line: 3, .. }),
        "{class:?}"
    );
    assert!(
        in_def < short * 5 + Duration::from_millis(500),
        "{in_def:?}"
    );
    assert!(
        long < short * 5 + Duration::from_millis(200),
        "one line {long:?}, one tag per line {short:?}"
    );
}
