//! The adapters on records as each dataset ships them.

use base64::Engine as _;
use serde_json::{json, Map};

use super::*;
use crate::json::Json;
use crate::rollout::Compare;

fn rollout(extra: Value) -> Rollout {
    let mut r: Rollout = serde_json::from_value(json!({"id": "r", "completion": ""})).unwrap();
    r.extra = extra.as_object().unwrap().clone();
    r
}

fn call(a: &Adapted, i: usize) -> (&str, Vec<&str>, &str, Option<Compare>) {
    match &a.tests[i] {
        TestCase::Call {
            function,
            args,
            expected,
            compare,
            ..
        } => (
            function.as_str(),
            args.iter().map(Json::text).collect(),
            expected.text(),
            *compare,
        ),
        other => panic!("not a call test: {other:?}"),
    }
}

#[test]
fn humaneval_record_becomes_one_check_call() {
    // openai_humaneval, HumanEval/53 (abridged).
    let r = rollout(json!({
        "task_id": "HumanEval/53",
        "prompt": "\n\ndef add(x: int, y: int):\n    \"\"\"Add two numbers x and y\n    >>> add(2, 3)\n    5\n    \"\"\"\n",
        "canonical_solution": "    return x + y\n",
        "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    import random\n\n    assert candidate(0, 1) == 1\n    assert candidate(1, 0) == 1\n    assert candidate(2, 3) == 5\n",
        "entry_point": "add"
    }));
    let a = tests_for(&r).unwrap();
    assert_eq!(a.source, "humaneval");
    let TestCase::Assert { code, .. } = &a.tests[0] else {
        panic!()
    };
    assert!(code.contains("def check(candidate):"));
    assert!(code.ends_with("check(add)\n"));
    let err = tests_for(&rollout(json!({"test": "x", "entry_point": "a b"}))).unwrap_err();
    assert_eq!(err.field, "entry_point");
}

#[test]
fn mbpp_records_original_and_sanitized() {
    // mbpp (full), task 11 (abridged), and mbpp/sanitized with its `test_imports`.
    let a = tests_for(&rollout(json!({
        "task_id": 11,
        "text": "Write a python function to remove first and last occurrence of a given character from the string.",
        "code": "def remove_Occ(s,ch): ...",
        "test_list": ["assert remove_Occ(\"hello\",\"l\") == \"heo\"", "assert remove_Occ(\"abcda\",\"a\") == \"bcd\""],
        "test_setup_code": "",
        "challenge_test_list": []
    })))
    .unwrap();
    assert_eq!(a.source, "mbpp");
    assert_eq!(a.tests.len(), 2);
    assert!(
        matches!(&a.tests[1], TestCase::Assert { code, .. } if code == "assert remove_Occ(\"abcda\",\"a\") == \"bcd\"\n")
    );
    let a = tests_for(&rollout(json!({
        "source_file": "Benchmark Questions Verification V2.ipynb",
        "task_id": 4,
        "prompt": "Write a function to find the n largest integers from a given list of numbers, returned in descending order.",
        "code": "import heapq as hq\ndef heap_queue_largest(nums,n): ...",
        "test_imports": ["import math"],
        "test_list": ["assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],3)==[85, 75, 65]"]
    })))
    .unwrap();
    assert!(
        matches!(&a.tests[0], TestCase::Assert { code, .. } if code.starts_with("import math\nassert heap_queue_largest("))
    );
    let a = tests_for(&rollout(
        json!({"test_list": ["assert f(1) == 1"], "test_setup_code": "import math"}),
    ))
    .unwrap();
    assert!(
        matches!(&a.tests[0], TestCase::Assert { code, .. } if code.starts_with("import math\n"))
    );
}

#[test]
fn verl_prime_functional_inputs_are_newline_separated_json_arguments() {
    // PRIME / verl `input_output` (a JSON string) with `fn_name`: each input is one JSON
    // value per line, one per argument; each output the JSON of the return value.
    let io = r#"{"fn_name": "maxSubarraySum", "inputs": ["[1, -2, 3]\n2", "[5]\n1"], "outputs": ["3", "5"]}"#;
    let a = tests_for(&rollout(json!({ "input_output": io }))).unwrap();
    assert_eq!(a.source, "apps");
    let (f, args, expected, compare) = call(&a, 0);
    assert_eq!(
        (f, args, expected),
        ("maxSubarraySum", vec!["[1, -2, 3]", "2"], "3")
    );
    assert_eq!(compare.and_then(|c| c.unwrap_single), Some(true));
    // verl's own layout: `reward_model.ground_truth`.
    let a = tests_for(&rollout(json!({
        "data_source": "codecontests",
        "reward_model": {"style": "rule", "ground_truth": io}
    })))
    .unwrap();
    assert_eq!(call(&a, 1).1, vec!["[5]", "1"]);
    // Integers of any size stay exact on both sides.
    let big = format!("1{}", "0".repeat(5735));
    let io = format!(r#"{{"fn_name": "f", "inputs": ["{big}\n7"], "outputs": ["{big}1"]}}"#);
    let a = tests_for(&rollout(json!({ "input_output": io }))).unwrap();
    let (_, args, expected, _) = call(&a, 0);
    assert_eq!(args, vec![big.as_str(), "7"]);
    assert_eq!(expected, format!("{big}1"));
}

#[test]
fn apps_and_taco_records_functional_and_stdio() {
    // APPS / TACO call-based: `inputs[i]` is the argument list, `outputs[i]` the value
    // wrapped in a list.
    let io =
        r#"{"fn_name": "solve", "inputs": [[1, 2], [[3, 4], "x"]], "outputs": [[3], [[7, "x"]]]}"#;
    let a = tests_for(&rollout(json!({
        "problem_id": 2345, "question": "…", "solutions": "[]", "difficulty": "introductory",
        "input_output": io, "starter_code": "def solve(a, b):\n    "
    })))
    .unwrap();
    let (f, args, expected, compare) = call(&a, 1);
    assert_eq!(
        (f, args, expected),
        ("solve", vec!["[3,4]", "\"x\""], "[[7,\"x\"]]")
    );
    assert_eq!(compare.and_then(|c| c.unwrap_single), Some(true));
    // Standard input: strings, or lists of lines.
    let io = r#"{"inputs": ["3\n1 2 3\n", ["2", "5 5"]], "outputs": ["6\n", ["10"]]}"#;
    let a = tests_for(&rollout(json!({ "input_output": io }))).unwrap();
    assert!(
        matches!(&a.tests[1], TestCase::Stdio { stdin, stdout, .. } if stdin == "2\n5 5" && stdout == "10")
    );
    // Top-level inputs/outputs, as an object.
    let a = tests_for(&rollout(json!({"inputs": ["1 2\n"], "outputs": ["3\n"]}))).unwrap();
    assert!(matches!(&a.tests[0], TestCase::Stdio { stdin, .. } if stdin == "1 2\n"));
    assert!(tests_for(&rollout(json!({"inputs": ["1"], "outputs": []}))).is_err());
    let err = tests_for(&rollout(
        json!({"input_output": r#"{"fn_name": "f", "inputs": ["[1,"], "outputs": ["1"]}"#}),
    ))
    .unwrap_err();
    assert!(err.reason.contains("an argument is not JSON"), "{err}");
}

#[test]
fn open_r1_verification_info_record() {
    // open-r1/verifiable-coding-problems-python.
    let a = tests_for(&rollout(json!({
        "source": "codeforces", "task_type": "verifiable_code", "in_source_id": "1234_A",
        "problem": "…",
        "gold_standard_solution": "```python\nprint(2 * int(input()))\n```",
        "verification_info": {"language": "python", "test_cases": [
            {"fn_name": null, "input": "2\n", "output": "4\n", "type": "stdin_stdout"},
            {"fn_name": null, "input": "10\n", "output": "20\n", "type": "stdin_stdout"}
        ]}
    })))
    .unwrap();
    assert_eq!(a.source, "open-r1");
    assert!(
        matches!(&a.tests[1], TestCase::Stdio { stdin, stdout, .. } if stdin == "10\n" && stdout == "20\n")
    );
    let a = tests_for(&rollout(json!({"verification_info": "{\"test_cases\": [{\"fn_name\": \"f\", \"input\": \"[1, 123456789012345678901234567890]\", \"output\": \"2\", \"type\": \"function_call\"}]}"}))).unwrap();
    assert_eq!(call(&a, 0).1, vec!["1", "123456789012345678901234567890"]);
}

/// `base64(zlib(pickle.dumps(json.dumps(cases))))` as LiveCodeBench ships private tests,
/// made by CPython 3 with protocol 4 (the default) and protocol 2, of
/// `[{"input": "[1, 2]\n3", "output": "[4, 5]", "testtype": "functional"},
///   {"input": "123456789012345678901234567890\n1", "output": "123456789012345678901234567891", "testtype": "functional"}]`.
const LCB_PRIVATE_P4: &str = "eJxrYJl6gAECevZEVytl5hWUlihZKShFG+ooGMXG5Bkr6Sgo5ZeWwIRNdBRMY0FiJanFJSWVBakg0bTSvOSSzPy8xBylWh0FJFMMjYxNTM3MLSwNsLFi8gxRTcer3BCfrbFT9AAPSjeb";
const LCB_PRIVATE_P2: &str = "eJxrYIrYw8DAEF2tlJlXUFqiZKWgFG2oo2AUG5NnrKSjoJRfWgITNtFRMI0FiZWkFpeUVBakgkTTSvOSSzLz8xJzlGp1FJBMMTQyNjE1M7ewNMDGiskzRDUdr3JDfLbGFjLoAQARTTXt";
/// The same cases pickled as a list (not a string): must be refused.
const LCB_PICKLED_LIST: &str = "eJxrYJk6jQECYqdo1E7R6GHNzCsoLZnSwxFtqKNgFMtlPKWHLb+0BCzGFm2io2AaC5QsSS0uKaksSJ3Sw5VWmpdckpmfl5gzpRRoQAZTj4KhkbGJqZm5haUBNhaX4ZQMlh45vIqAStgy2EtT9QCLji4F";

#[test]
fn livecodebench_record_with_public_and_compressed_private_tests() {
    let record = |private: &str| {
        rollout(json!({
            "question_title": "Add all",
            "question_content": "…",
            "platform": "leetcode",
            "question_id": "3000",
            "contest_id": "weekly-contest-1",
            "contest_date": "2023-08-01T00:00:00",
            "starter_code": "class Solution:\n    def addAll(self, nums: List[int], k: int) -> List[int]:\n        ",
            "difficulty": "easy",
            "public_test_cases": "[{\"input\": \"[1, 2]\\n3\", \"output\": \"[4, 5]\", \"testtype\": \"functional\"}]",
            "private_test_cases": private,
            "metadata": "{\"func_name\": \"addAll\"}"
        }))
    };
    for private in [LCB_PRIVATE_P4, LCB_PRIVATE_P2] {
        let a = tests_for(&record(private)).unwrap();
        assert_eq!(a.source, "livecodebench");
        assert_eq!(a.tests.len(), 3);
        let (f, args, expected, _) = call(&a, 0);
        assert_eq!(
            (f, args, expected),
            (LCB_SHIM, vec!["[1, 2]", "3"], "[4, 5]")
        );
        let (_, args, expected, _) = call(&a, 2);
        assert_eq!(args, vec!["123456789012345678901234567890", "1"]);
        assert_eq!(expected, "123456789012345678901234567891");
        assert!(a
            .setup
            .as_deref()
            .unwrap()
            .contains("Solution().addAll(*args)"));
    }
    let err = tests_for(&record(LCB_PICKLED_LIST)).unwrap_err();
    assert!(err.reason.contains("not of one string"), "{err}");
    let err = tests_for(&record("not base64 at all!")).unwrap_err();
    assert!(err.reason.contains("neither JSON nor base64"), "{err}");
    // A stdin problem (AtCoder / Codeforces in LiveCodeBench).
    let a = tests_for(&rollout(json!({
        "platform": "atcoder",
        "public_test_cases": [{"input": "3\n", "output": "6\n", "testtype": "stdin"}],
        "metadata": "{}"
    })))
    .unwrap();
    assert!(matches!(&a.tests[0], TestCase::Stdio { stdout, .. } if stdout == "6\n"));
}

#[test]
fn pickles_other_than_one_string_are_refused_without_running_anything() {
    // pickle.dumps("hi", protocol=0..5) shapes.
    assert_eq!(
        pickled_string(b"\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00\x8c\x02hi\x94.").unwrap(),
        "hi"
    );
    assert_eq!(
        pickled_string(b"\x80\x03X\x02\x00\x00\x00hiq\x00.").unwrap(),
        "hi"
    );
    assert_eq!(pickled_string(b"\x80\x03C\x02hiq\x00.").unwrap(), "hi");
    // os.system("id") via REDUCE, protocol 4 (STACK_GLOBAL of two strings) and 0 (GLOBAL).
    let evil = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
    assert!(pickled_string(evil)
        .unwrap_err()
        .contains("more than one string"));
    let evil0 = b"cposix\nsystem\n(S'id'\ntR.";
    assert!(pickled_string(evil0)
        .unwrap_err()
        .contains("not of one string"));
    // Cut short, lengths past the end, trailing opcodes.
    assert!(pickled_string(b"\x80\x04\x8c\x05hi").is_err());
    assert!(pickled_string(b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xffhi.").is_err());
    assert!(pickled_string(b"\x80\x04\x8c\x02hi\x8c\x02hi.")
        .unwrap_err()
        .contains("more than one"));
    assert!(pickled_string(b"").is_err());
    assert!(pickled_string(b"\x80\x04\x8c\x02\xff\xfe.")
        .unwrap_err()
        .contains("UTF-8"));
}

#[test]
fn a_zlib_bomb_is_refused_at_the_cap() {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(MAX_INFLATED >> 20) + 2 {
        z.write_all(&zeros).unwrap();
    }
    let packed = base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap());
    assert!(decompress_lcb(&packed)
        .unwrap_err()
        .contains("more than 256 MiB"));
}

#[test]
fn null_dataset_fields_are_absent() {
    // A mixed HumanEval + MBPP + APPS dataset as Arrow stores it: each row has every column.
    let columns = |row: Value| {
        let mut all = json!({
            "test": null, "entry_point": null, "test_list": null, "test_setup_code": null,
            "test_imports": null, "input_output": null, "inputs": null, "outputs": null,
            "fn_name": null, "verification_info": null, "public_test_cases": null,
            "private_test_cases": null, "metadata": null,
        });
        all.as_object_mut()
            .unwrap()
            .extend(row.as_object().unwrap().clone());
        tests_for(&rollout(all)).unwrap()
    };
    let a = columns(json!({"test_list": ["assert f() == 1"]}));
    assert_eq!((a.source, a.tests.len()), ("mbpp", 1));
    let a = columns(json!({"test": "def check(c): assert c() == 1", "entry_point": "f"}));
    assert_eq!(a.source, "humaneval");
    let a = columns(json!({"inputs": ["1\n"], "outputs": ["1\n"]}));
    assert_eq!((a.source, a.tests.len()), ("apps", 1));
    let a = columns(
        json!({"public_test_cases": [{"input": "1\n", "output": "1\n", "testtype": "stdin"}]}),
    );
    assert_eq!(a.source, "livecodebench");
    let a = columns(json!({}));
    assert_eq!(a.source, "none");
}

#[test]
fn time_limits_of_taco_and_codecontests_records() {
    let limit = |v: Value| time_limit_ms(&rollout(json!({ "time_limit": v })).extra);
    // TACO: text with a unit.
    assert_eq!(limit(json!("1 second")), Some(1000));
    assert_eq!(limit(json!("2 seconds")), Some(2000));
    assert_eq!(limit(json!("0.5 seconds")), Some(500));
    assert_eq!(limit(json!(" 1.5 s ")), Some(1500));
    assert_eq!(limit(json!("1000 ms")), Some(1000));
    assert_eq!(limit(json!("2")), Some(2000));
    // CodeContests: a protobuf Duration.
    assert_eq!(limit(json!({"seconds": 2, "nanos": 0})), Some(2000));
    assert_eq!(limit(json!({"seconds": 1, "nanos": 500000000})), Some(1500));
    assert_eq!(
        limit(json!({"seconds": null, "nanos": 250000000})),
        Some(250)
    );
    // A number of seconds.
    assert_eq!(limit(json!(3)), Some(3000));
    assert_eq!(limit(json!(0.0001)), Some(1));
    // No limit.
    for none in [
        json!(null),
        json!("None"),
        json!("-"),
        json!("1 minute"),
        json!(0),
        json!(-1),
        json!({"seconds": 0, "nanos": 0}),
        json!({"seconds": "x"}),
        json!([1]),
    ] {
        assert_eq!(limit(none.clone()), None, "{none}");
    }
    assert_eq!(time_limit_ms(&Map::new()), None);
}

#[test]
fn own_tests_win_and_nothing_is_none() {
    let a = tests_for(&rollout(json!({}))).unwrap();
    assert_eq!(a.source, "none");
    assert!(a.tests.is_empty());
}
