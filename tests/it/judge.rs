//! Judging that is exactly right, end to end on the real sandbox: every comparison rule from
//! both sides (a correct program passes, a subtly wrong one fails), exact integers of any
//! size, standard types by their plain meaning, checkers, and dataset records as their owners
//! mean them.

use serde_json::{json, Value};
use verdict::verifiers::tests::TestsConfig;
use verdict::{BuildContext, Context, Outcome, Rollout, Verifier};

use crate::sandbox::{run, shared, tests};

/// The outcome of `program` on `tests` (JSON), with the report for messages.
async fn outcome(program: &str, t: Value) -> (Outcome, String) {
    let r = run(program, &tests(t)).await;
    (r.outcome, format!("{r:#?}"))
}

async fn passes(program: &str, t: Value) {
    let (o, r) = outcome(program, t).await;
    assert_eq!(o, Outcome::Passed, "{program}\n{r}");
}

async fn fails(program: &str, t: Value) {
    let (o, r) = outcome(program, t).await;
    assert_eq!(o, Outcome::Failed, "{program}\n{r}");
}

/// The tests verifier on a rollout record (the adapters and the rollout's `compare` apply).
async fn verify(record: Value, code: &str) -> verdict::Verdict {
    let verifier = TestsConfig::default()
        .build(&BuildContext::new(Some(shared())))
        .unwrap();
    let rollout: Rollout = serde_json::from_str(&record.to_string()).unwrap();
    let mut ctx = Context::default();
    ctx.answer.code = Some(code.into());
    verifier.verify(&rollout, &mut ctx).await
}

/// A rollout record from JSON text, so integers beyond 64 bits are written as digits.
async fn verify_text(record: &str, code: &str) -> verdict::Verdict {
    let verifier = TestsConfig::default()
        .build(&BuildContext::new(Some(shared())))
        .unwrap();
    let rollout = Rollout::from_json(record).unwrap();
    let mut ctx = Context::default();
    ctx.answer.code = Some(code.into());
    verifier.verify(&rollout, &mut ctx).await
}

#[tokio::test]
async fn expected_integers_are_exact_at_any_size() {
    let line = |f: &str, args: &str, expected: &str| {
        format!(
            r#"{{"id": "{f}", "completion": "", "tests": [{{"kind": "call", "fn": "{f}", "args": {args}, "expected": {expected}}}]}}"#
        )
    };
    // 25! = 15511210043330985984000000, against int(math.gamma(26)).
    let f25 = line("fact", "[25]", "15511210043330985984000000");
    let exact = "import math\ndef fact(n):\n    return math.factorial(n)\n";
    let gamma = "import math\ndef fact(n):\n    return int(math.gamma(n + 1))\n";
    assert_eq!(verify_text(&f25, exact).await.outcome, Outcome::Passed);
    assert_eq!(verify_text(&f25, gamma).await.outcome, Outcome::Failed);
    // 3**50 exactly, against 3**50 through floats.
    let p = line("p", "[3, 50]", "717897987691852588770249");
    assert_eq!(
        verify_text(&p, "def p(b, e):\n    return b ** e\n")
            .await
            .outcome,
        Outcome::Passed
    );
    assert_eq!(
        verify_text(&p, "def p(b, e):\n    return int(float(b) ** e)\n")
            .await
            .outcome,
        Outcome::Failed
    );
    // A 5,736-digit argument and expected value: valid input, judged digit for digit.
    let big = format!("1{}", "0".repeat(5735));
    let big_plus_one = format!("1{}1", "0".repeat(5734));
    let inc = line("inc", &format!("[{big}]"), &big_plus_one);
    let v = verify_text(&inc, "def inc(x):\n    return x + 1\n").await;
    assert_eq!(v.outcome, Outcome::Passed, "{v:?}");
    let v = verify_text(&inc, "def inc(x):\n    return x + 2\n").await;
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
}

#[tokio::test]
async fn stdio_integers_are_matched_as_integers() {
    let t = json!([{"kind": "stdio", "stdin": "7620789376638470000000\n", "stdout": "7620789376638470000000\n"}]);
    passes("print(int(input()))\n", t.clone()).await;
    // (A float-formatted answer: 7.62078937663847e+21.)
    fails("print(float(input()))\n", t).await;
    let t = json!([{"kind": "stdio", "stdin": "", "stdout": "123456789008\n"}]);
    fails("print(123456789008.0)\n", t.clone()).await;
    passes("print(123456789008)\n", t).await;
}

#[tokio::test]
async fn tolerance_is_the_problems_per_test_and_per_rollout() {
    let tight = json!({"rel_tol": 1e-9, "abs_tol": 1e-9});
    let t =
        json!([{"kind": "stdio", "stdin": "", "stdout": "3.14159265358979\n", "compare": tight}]);
    passes("import math\nprint(math.pi)\n", t.clone()).await;
    fails("print(3.1415926)\n", t).await;
    // The default (1e-6) takes the coarser answer.
    passes(
        "print(3.1415926)\n",
        json!([{"kind": "stdio", "stdin": "", "stdout": "3.14159265358979\n"}]),
    )
    .await;
    let t = json!([{"kind": "call", "fn": "area", "args": [1], "expected": std::f64::consts::PI, "compare": tight}]);
    passes(
        "import math\ndef area(r):\n    return math.pi * r * r\n",
        t.clone(),
    )
    .await;
    fails("def area(r):\n    return 3.1415926 * r * r\n", t).await;
    // The rollout's rule covers every test; a test's own rule wins over it.
    let record = json!({"id": "tol", "completion": "", "compare": tight, "tests": [
        {"kind": "call", "fn": "area", "args": [1], "expected": std::f64::consts::PI}]});
    let coarse = "def area(r):\n    return 3.1415926 * r * r\n";
    assert_eq!(verify(record, coarse).await.outcome, Outcome::Failed);
    let record = json!({"id": "tol", "completion": "", "compare": tight, "tests": [
        {"kind": "call", "fn": "area", "args": [1], "expected": std::f64::consts::PI,
         "compare": {"rel_tol": 1e-3}}]});
    assert_eq!(verify(record, coarse).await.outcome, Outcome::Passed);
}

#[tokio::test]
async fn stdio_modes_exact_tokens_case_and_order() {
    let stdio = |stdout: &str, compare: Value| json!([{"kind": "stdio", "stdin": "", "stdout": stdout, "compare": compare}]);
    let exact = json!({"mode": "exact"});
    passes("print('a  b')\n", stdio("a  b\n", exact.clone())).await;
    fails("print('a b')\n", stdio("a  b\n", exact.clone())).await;
    fails("print(0.30000000000000004)\n", stdio("0.3\n", exact)).await;
    let tokens = json!({"mode": "tokens"});
    passes("print(1, 2)\nprint(3)\n", stdio("1\n2 3\n", tokens.clone())).await;
    fails("print(1, 2)\n", stdio("1\n2 3\n", tokens)).await;
    let ci = json!({"case_insensitive": true});
    passes("print('yes')\n", stdio("YES\n", ci.clone())).await;
    fails("print('yes')\n", stdio("YES\n", json!({}))).await;
    fails("print('yess')\n", stdio("YES\n", ci)).await;
    let any = json!({"unordered": true});
    passes(
        "print(3)\nprint(1)\nprint(2)\n",
        stdio("1\n2\n3\n", any.clone()),
    )
    .await;
    fails("print(3)\nprint(1)\nprint(1)\n", stdio("1\n2\n3\n", any)).await;
    fails(
        "print(3)\nprint(1)\nprint(2)\n",
        stdio("1\n2\n3\n", json!({})),
    )
    .await;
}

#[tokio::test]
async fn sets_lists_dict_keys_and_bools_on_both_paths() {
    // A set is not an ordered list: call tests and assert tests agree.
    let set = "def f():\n    return {3, 1, 2}\n";
    let list = "def f():\n    return [1, 2, 3]\n";
    let call = json!([{"kind": "call", "fn": "f", "expected": [1, 2, 3]}]);
    let assert = json!([{"kind": "assert", "code": "assert f() == [1, 2, 3]"}]);
    fails(set, call.clone()).await;
    fails(set, assert).await;
    passes(list, call).await;
    // Unless order is waived.
    let any =
        json!([{"kind": "call", "fn": "f", "expected": [3, 2, 1], "compare": {"unordered": true}}]);
    passes(set, any.clone()).await;
    fails("def f():\n    return {1, 2}\n", any).await;
    // Dict keys: exactly the expected keys. JSON spells an int key as its decimal string, so a
    // returned int key matches that spelling (and only it) unless `strict_keys` is set.
    let t = json!([{"kind": "call", "fn": "f", "expected": {"1": "a", "2": "b"}}]);
    passes("def f():\n    return {'1': 'a', '2': 'b'}\n", t.clone()).await;
    fails("def f():\n    return {'1': 'a'}\n", t.clone()).await;
    fails("def f():\n    return {'1': 'a', '2': 'b', '3': 'c'}\n", t).await;
    let squares = "def f(n):\n    return {i: i * i for i in range(1, n + 1)}\n";
    let t = |expected: Value, compare: Value| json!([{"kind": "call", "fn": "f", "args": [3], "expected": expected, "compare": compare}]);
    let json_keys = json!({"1": 1, "2": 4, "3": 9});
    passes(squares, t(json_keys.clone(), Value::Null)).await;
    passes(squares, t(json_keys.clone(), json!({"strict_keys": false}))).await;
    fails(squares, t(json_keys.clone(), json!({"strict_keys": true}))).await;
    fails(squares, t(json!({"01": 1, "2": 4, "3": 9}), Value::Null)).await;
    fails(squares, t(json!({"1": 1, "2": 4, "3": 10}), Value::Null)).await;
    fails(
        "def f(n):\n    return {True: 1, 2: 4, 3: 9}\n",
        t(json_keys.clone(), Value::Null),
    )
    .await;
    // One key is never counted twice: `1` and `'1'` are two keys of the answer.
    let twice = json!({"1": "a", "2": "a"});
    fails(
        "def f(n):\n    return {1: 'a', '1': 'a'}\n",
        t(twice, Value::Null),
    )
    .await;
    // The rollout's `compare` and `[sandbox.judge]` set it like every rule.
    let record = |compare: Value| {
        json!({"id": "squares", "completion": "", "compare": compare,
               "tests": [{"kind": "call", "fn": "f", "args": [3], "expected": json_keys}]})
    };
    assert_eq!(
        verify(record(Value::Null), squares).await.outcome,
        Outcome::Passed
    );
    assert_eq!(
        verify(record(json!({"strict_keys": true})), squares)
            .await
            .outcome,
        Outcome::Failed
    );
    // Literals in Python test code are Python's: `{1: 1} != {'1': 1}`.
    fails(
        squares,
        json!([{"kind": "assert", "code": "assert f(3) == {'1': 1, '2': 4, '3': 9}"}]),
    )
    .await;
    // bool is not int: a count of True fails.
    let t = json!([{"kind": "call", "fn": "count", "args": [[1, 0, 1]], "expected": 2}]);
    passes(
        "def count(xs):\n    return sum(1 for x in xs if x)\n",
        t.clone(),
    )
    .await;
    fails("def count(xs):\n    return True\n", t).await;
}

#[tokio::test]
async fn standard_types_compare_as_their_plain_meaning() {
    let cases = [
        (
            "from collections import Counter\ndef f(s):\n    return Counter(s)\n",
            "from collections import Counter\ndef f(s):\n    c = Counter(s)\n    c['a'] += 1\n    return c\n",
            json!(["abca"]),
            json!({"a": 2, "b": 1, "c": 1}),
        ),
        (
            "from collections import defaultdict\ndef f(s):\n    d = defaultdict(list)\n    for i, ch in enumerate(s):\n        d[ch].append(i)\n    return d\n",
            "from collections import defaultdict\ndef f(s):\n    d = defaultdict(list)\n    for i, ch in enumerate(s):\n        d[ch].append(i + 1)\n    return d\n",
            json!(["aba"]),
            json!({"a": [0, 2], "b": [1]}),
        ),
        (
            "from collections import OrderedDict\ndef f(s):\n    return OrderedDict((c, s.count(c)) for c in s)\n",
            "from collections import OrderedDict\ndef f(s):\n    return OrderedDict((c, 1) for c in s)\n",
            json!(["aab"]),
            json!({"a": 2, "b": 1}),
        ),
        (
            "from collections import namedtuple\nP = namedtuple('P', 'x y')\ndef f(a):\n    return P(a, a * 2)\n",
            "from collections import namedtuple\nP = namedtuple('P', 'x y')\ndef f(a):\n    return P(a * 2, a)\n",
            json!([3]),
            json!([3, 6]),
        ),
        (
            "from fractions import Fraction\ndef f(a, b):\n    return Fraction(a, b)\n",
            "from fractions import Fraction\ndef f(a, b):\n    return Fraction(a + 1, b)\n",
            json!([1, 4]),
            json!(0.25),
        ),
        (
            "from decimal import Decimal\ndef f(a):\n    return Decimal(a) * 100\n",
            "from decimal import Decimal\ndef f(a):\n    return Decimal(a) * 100 + Decimal('0.5')\n",
            json!(["1.5"]),
            json!(150),
        ),
        (
            "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: int\ndef f(a):\n    return P(a, -a)\n",
            "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: int\ndef f(a):\n    return P(a, a)\n",
            json!([2]),
            json!({"x": 2, "y": -2}),
        ),
    ];
    for (right, wrong, args, expected) in cases {
        let t = json!([{"kind": "call", "fn": "f", "args": args, "expected": expected}]);
        passes(right, t.clone()).await;
        fails(wrong, t).await;
    }
    // In assert tests the judge compares rebuilt genuine values with Python's own `==`.
    let t = json!([{"kind": "assert", "code": "from collections import Counter\nassert f('abca') == Counter({'a': 2, 'b': 1, 'c': 1})\nassert f('abca') == {'a': 2, 'b': 1, 'c': 1}"}]);
    passes(
        "from collections import Counter\ndef f(s):\n    return Counter(s)\n",
        t.clone(),
    )
    .await;
    fails(
        "from collections import Counter\ndef f(s):\n    return Counter(s + 'a')\n",
        t,
    )
    .await;
    // A user subclass that overrides comparison is not trusted on either path.
    let liar = "from collections import Counter\nclass C(Counter):\n    def __eq__(self, other):\n        return True\ndef f(s):\n    return C('zzz')\n";
    fails(liar, json!([{"kind": "call", "fn": "f", "args": ["abca"], "expected": {"a": 2, "b": 1, "c": 1}}])).await;
    fails(
        liar,
        json!([{"kind": "assert", "code": "assert f('abca') == {'a': 2, 'b': 1, 'c': 1}"}]),
    )
    .await;
}

#[tokio::test]
async fn checkers_judge_in_the_judge_and_their_failures_are_verdicts_own() {
    // A Codeforces-style checker: any valid answer (two numbers summing to n) passes.
    let checker = "def check(input, output, expected):\n    n = int(input)\n    parts = output.split()\n    assert len(parts) == 2, 'two numbers'\n    a, b = map(int, parts)\n    return a + b == n and a > 0 and b > 0\n";
    let t = |checker: &str| json!([{"kind": "stdio", "stdin": "10\n", "stdout": "5 5\n", "checker": checker}]);
    passes("n = int(input())\nprint(1, n - 1)\n", t(checker)).await;
    fails("n = int(input())\nprint(1, n)\n", t(checker)).await;
    let (o, r) = outcome("print(10)\n", t(checker)).await;
    assert_eq!(o, Outcome::Failed, "{r}");
    assert!(r.contains("two numbers"), "{r}");
    // A partial score is not a pass, but it is the test's credit in the pass fraction.
    let partial = "def check(i, o, e):\n    return 0.5\n";
    let two = json!([
        {"kind": "stdio", "stdin": "10\n", "stdout": "5 5\n", "checker": partial},
        {"kind": "stdio", "stdin": "10\n", "stdout": "5 5\n", "checker": checker},
    ]);
    let r = run("n = int(input())\nprint(1, n - 1)\n", &tests(two)).await;
    assert_eq!(r.outcome, Outcome::Failed, "{r:#?}");
    assert_eq!(r.tests.results[0].score, Some(0.5));
    assert!(r.tests.results[0]
        .message
        .as_deref()
        .unwrap()
        .contains("scored it 0.5"));
    assert_eq!(r.tests.results[1].score, None);
    assert!(
        (r.pass_fraction() - 0.75).abs() < 1e-12,
        "{}",
        r.pass_fraction()
    );
    // The output reaches the checker as data: quotes, backslashes, code-looking text.
    let nasty = "''' \\\"\"\" ) ; raise SystemExit(0) #\n";
    let echo = json!([{"kind": "stdio", "stdin": "", "stdout": nasty,
        "checker": "def check(i, o, e):\n    return o == e\n"}]);
    passes(
        &format!(
            "import sys\nsys.stdout.write({})\n",
            serde_json::to_string(nasty).unwrap()
        ),
        echo,
    )
    .await;
    // A checker that crashes, loops or answers nonsense is verdict's error, not the program's.
    for bad in [
        "def check(i, o, e):\n    return 1 / 0\n",
        "def check(i, o, e):\n    while True:\n        pass\n",
        "def check(i, o, e):\n    return 'yes'\n",
        "def check(i, o, e):\n    raise SystemExit(1)\n",
        "def check(:\n",
    ] {
        let (o, r) = outcome("n = int(input())\nprint(1, n - 1)\n", t(bad)).await;
        assert_eq!(o, Outcome::Error, "{bad}\n{r}");
        assert!(r.contains("the checker failed"), "{r}");
    }
    // The candidate's own failures are still its own.
    let (o, _) = outcome("raise ValueError('x')\n", t(checker)).await;
    assert_eq!(o, Outcome::RuntimeError);
}

#[tokio::test]
async fn a_checker_that_does_not_compile_or_defines_no_check_is_invalid_input() {
    let record = |checker: &str| {
        json!({"id": "halves", "completion": "", "tests": [
            {"kind": "stdio", "stdin": "10\n", "stdout": "5 5\n"},
            {"kind": "stdio", "stdin": "10\n", "stdout": "5 5\n", "checker": checker}]})
    };
    let program = "n = int(input())\nprint(n // 2, n - n // 2)\n";
    let sound = "def check(i, o, e):\n    return o.split() == e.split()\n";
    let v = verify(record(sound), program).await;
    assert_eq!(v.outcome, Outcome::Passed, "{v:?}");
    // A dataset bug, decided on decoding: named by its field and what is wrong, whatever the
    // program.
    for (checker, said) in [
        (
            "def check(i, o, e):\n    return o ==\n",
            "not valid Python: line 2",
        ),
        ("def check(:\n    return True\n", "not valid Python: line 1"),
        (
            "def check(i, o, e):\n    print 'checking'\n    return True\n",
            "Python 2 print",
        ),
        (
            "def judge(i, o, e):\n    return True\n",
            "defines no `check` at top level",
        ),
        ("", "defines no `check` at top level"),
    ] {
        for program in [program, "print(1, 9)\n", "raise ValueError('x')\n"] {
            let v = verify(record(checker), program).await;
            assert_eq!(v.outcome, Outcome::InvalidInput, "{checker}\n{v:?}");
            let error = v.details["error"].as_str().unwrap();
            assert!(
                error.starts_with("`tests[1].checker`: ") && error.contains(said),
                "{checker}: {error}"
            );
            assert_eq!(v.details["field"], "tests[1].checker");
        }
    }
    // The score names it too.
    let chain = verdict::chain::Chain::new(vec![verdict::chain::Step {
        name: "tests".into(),
        verifier: Box::new(
            TestsConfig::default()
                .build(&BuildContext::new(Some(shared())))
                .unwrap(),
        ),
        weight: 1.0,
        gate: false,
        min_score: 1.0,
    }]);
    let mut rollout: Rollout =
        serde_json::from_str(&record("def check(i, o, e)\n    return True\n").to_string()).unwrap();
    rollout.completion = format!("```python\n{program}```");
    let score = chain.score(&rollout).await;
    assert_eq!(score.outcome, Outcome::InvalidInput, "{score:?}");
    let error = score.error.unwrap_or_default();
    assert!(
        error.contains("tests[1].checker") && error.contains("line 1"),
        "{error}"
    );
}

#[tokio::test]
async fn dataset_records_score_as_their_harnesses_mean() {
    // verl / PRIME functional: arguments are newline-separated JSON.
    let record = json!({"id": "prime-1", "completion": "",
        "input_output": "{\"fn_name\": \"add\", \"inputs\": [\"[1, 2]\\n3\", \"[]\\n5\"], \"outputs\": [\"[4, 5]\", \"[]\"]}"});
    let right = "def add(xs, k):\n    return [x + k for x in xs]\n";
    let v = verify(record.clone(), right).await;
    assert_eq!((v.outcome, v.score), (Outcome::Passed, 1.0), "{v:?}");
    let v = verify(record, "def add(xs, k=0):\n    return xs\n").await;
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
    // APPS / TACO call-based: argument lists, expected values wrapped in a list.
    let record = json!({"id": "apps-1", "completion": "",
        "input_output": "{\"fn_name\": \"pair\", \"inputs\": [[1, 2], [5, 5]], \"outputs\": [[[1, 2]], [[5, 5]]]}"});
    let v = verify(record.clone(), "def pair(a, b):\n    return [a, b]\n").await;
    assert_eq!((v.outcome, v.score), (Outcome::Passed, 1.0), "{v:?}");
    let v = verify(record, "def pair(a, b):\n    return [b, a]\n").await;
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
    // LiveCodeBench private tests, compressed.
    let record = json!({"id": "lcb-2", "completion": "",
        "public_test_cases": "[]",
        "private_test_cases": "eJxrYJl6gAECevZEVytl5hWUlihZKShFG+ooGMXG5Bkr6Sgo5ZeWwIRNdBRMY0FiJanFJSWVBakg0bTSvOSSzPy8xBylWh0FJFMMjYxNTM3MLSwNsLFi8gxRTcer3BCfrbFT9AAPSjeb",
        "metadata": "{\"func_name\": \"addAll\"}"});
    let right = "class Solution:\n    def addAll(self, xs, k):\n        if isinstance(xs, list):\n            return [x + k for x in xs]\n        return xs + k\n";
    let v = verify(record.clone(), right).await;
    assert_eq!((v.outcome, v.score), (Outcome::Passed, 1.0), "{v:?}");
    let floats = "class Solution:\n    def addAll(self, xs, k):\n        if isinstance(xs, list):\n            return [x + k for x in xs]\n        return int(float(xs) + k)\n";
    let v = verify(record, floats).await;
    assert_eq!((v.outcome, v.score), (Outcome::Failed, 0.5), "{v:?}");
}

#[tokio::test]
async fn a_checker_that_passes_the_expected_output_and_breaks_on_the_programs_fails_it() {
    // The README's kind of checker: it parses numbers. Text it cannot parse is a wrong output.
    let ints = "def check(i, o, e):\n    return int(o) == int(e)\n";
    let t = |checker: &str, stdout: &str| json!([{"kind": "stdio", "stdin": "2 2\n", "stdout": stdout, "checker": checker}]);
    for program in ["print('2 and 2')\n", "pass\n", "print('4.5')\n"] {
        let (o, r) = outcome(program, t(ints, "4\n")).await;
        assert_eq!(o, Outcome::Failed, "{program}\n{r}");
        assert!(r.contains("checker_raised"), "{r}");
    }
    passes("print(4)\n", t(ints, "4\n")).await;
    // Its fuel on the program's output is bounded by ten times its cost on the expected one.
    let loops = "def check(i, o, e):\n    t = 0\n    for k in range(int(o)):\n        t += k\n    return t == sum(range(int(e)))\n";
    let (o, r) = outcome("print(10 ** 15)\n", t(loops, "3\n")).await;
    assert_eq!(o, Outcome::Failed, "{r}");
    assert!(r.contains("fuel"), "{r}");
    // A checker that cannot judge the expected output is the dataset's bug: `error`, named.
    let (o, r) = outcome("print(4)\n", t(ints, "four\n")).await;
    assert_eq!(o, Outcome::Error, "{r}");
    assert!(r.contains("expected output"), "{r}");
    let rejects = "def check(i, o, e):\n    return o.strip() == 'never'\n";
    let (o, r) = outcome("print(5)\n", t(rejects, "4\n")).await;
    assert_eq!(o, Outcome::Error, "{r}");
    assert!(r.contains("rejects the expected output"), "{r}");
}

#[tokio::test]
async fn names_like_stdlib_modules_are_the_programs_unless_it_plainly_imports_them() {
    let t = |code: &str| json!([{"kind": "assert", "code": code}]);
    // A class imported under a module's name is the program's class.
    passes(
        "from datetime import datetime\n\ndef day(s):\n    return datetime.strptime(s, '%Y-%m-%d').day\n",
        t("assert day('2020-01-05') == 5 and datetime(2020, 1, 5).day == 5"),
    )
    .await;
    // A function named like a stdlib module is the program's function.
    passes(
        "def trace(m):\n    return sum(m[i][i] for i in range(len(m)))\n",
        t("assert trace([[1, 2], [3, 4]]) == 5"),
    )
    .await;
    // A module the program plainly imports is the judge's own.
    passes(
        "import math\nimport collections.abc\n\ndef f(x):\n    return math.sqrt(x)\n",
        t("assert f(16) == math.sqrt(16) == 4 and collections.abc.Sized"),
    )
    .await;
    // A class named like a module loses to the module (stricter than native Python).
    fails("class math:\n    pi = 3\n", t("assert math.pi == 3")).await;
}

#[tokio::test]
async fn the_programs_exceptions_keep_their_hierarchy_and_args() {
    let t = |code: &str| json!([{"kind": "assert", "code": code}]);
    // A program's own subclass of ValueError is caught as a ValueError, under its own name.
    passes(
        "class BadInput(ValueError):\n    pass\n\ndef parse(s):\n    if not s.isdigit():\n        raise BadInput(s)\n    return int(s)\n",
        t("try:\n    parse('x')\n    assert False\nexcept ValueError as e:\n    assert type(e).__name__ == 'BadInput' and e.args == ('x',)"),
    )
    .await;
    // A stdlib subclass (json.JSONDecodeError) expected as ValueError.
    passes(
        "import json\n\ndef load(s):\n    return json.loads(s)\n",
        t("try:\n    load('{')\n    assert False\nexcept ValueError:\n    pass"),
    )
    .await;
    // args survive: KeyError('b').args, UnicodeDecodeError's five.
    passes(
        "def get(d, k):\n    return d[k]\n\ndef dec(b):\n    return b.decode('utf-8')\n",
        t("try:\n    get({'a': 1}, 'b')\n    assert False\nexcept KeyError as e:\n    assert e.args == ('b',)\ntry:\n    dec(b'\\xff')\n    assert False\nexcept UnicodeDecodeError as e:\n    assert e.start == 0 and e.encoding == 'utf-8'"),
    )
    .await;
    // A StopIteration from a call still never ends a map early: it is the program's error.
    let (o, r) = outcome(
        "def f(x):\n    raise StopIteration\n",
        t("assert all(map(f, [1, 2]))"),
    )
    .await;
    assert_eq!(o, Outcome::RuntimeError, "{r}");
}

#[tokio::test]
async fn the_setup_is_vocabulary_the_program_sees_in_assert_tests_too() {
    // LeetCode pre-imports heapq and defaultdict; a correct program relies on them.
    let program = "def k_smallest(xs, k):\n    return heapq.nsmallest(k, xs)\n\ndef counts(xs):\n    d = defaultdict(int)\n    for x in xs:\n        d[x] += 1\n    return dict(d)\n";
    let r = crate::sandbox::run_setup(
        program,
        "import heapq\nfrom collections import defaultdict\n",
        &tests(json!([
            {"kind": "assert", "code": "assert k_smallest([5, 1, 4], 2) == [1, 4]"},
            {"kind": "assert", "code": "assert counts('aab') == {'a': 2, 'b': 1}"},
            {"kind": "call", "fn": "k_smallest", "args": [[3, 2, 1], 1], "expected": [1]},
        ])),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
}

#[tokio::test]
async fn arguments_changed_in_place_travel_back_through_keywords_too() {
    passes(
        "def fill(grid=None, value=0):\n    grid.append(value)\n    grid.sort()\n",
        json!([{"kind": "assert", "code": "g = [3, 1]\nfill(grid=g, value=2)\nassert g == [1, 2, 3]\nh = [5]\nfill(h, value=4)\nassert h == [4, 5]"}]),
    )
    .await;
}

#[tokio::test]
async fn copies_keep_equality_or_stay_the_programs_objects() {
    let t = |code: &str| json!([{"kind": "assert", "code": code}]);
    // A dataclass with eq=False compares by identity, natively and here.
    fails(
        "from dataclasses import dataclass\n\n@dataclass(eq=False)\nclass P:\n    x: int\n\ndef make(x):\n    return P(x)\n",
        t("assert make(1) == make(1)"),
    )
    .await;
    // One with its own __eq__ keeps it: between two of the program's objects it decides, as
    // natively; against the judge's data it never does.
    let own_eq = "from dataclasses import dataclass\n\n@dataclass\nclass P:\n    x: int\n    def __eq__(self, other):\n        return isinstance(other, P) and self.x % 2 == other.x % 2\n\ndef make(x):\n    return P(x)\n";
    passes(
        own_eq,
        t("assert make(1) == make(3) and make(1) != make(2)"),
    )
    .await;
    fails(own_eq, t("assert make(1) == 1")).await;
    // A plain dataclass and a reduced Fraction still cross as data.
    passes(
        "from dataclasses import dataclass\nfrom fractions import Fraction\n\n@dataclass\nclass P:\n    x: int\n\ndef make(x):\n    return P(x)\n\ndef half():\n    return Fraction(2, 4)\n",
        t("from fractions import Fraction\nassert make(1).x == 1 and make(2) == make(2) and half() == Fraction(1, 2)"),
    )
    .await;
}

#[tokio::test]
async fn a_judge_setup_is_seen_by_the_tests_and_never_by_the_program() {
    let record = json!({"id": "table", "completion": "",
        "setup": "from typing import List\n",
        "judge_setup": "CASES = [((1, 2), 3), ((20, 22), 42)]\n",
        "tests": [{"kind": "assert", "code": "for args, want in CASES:\n    assert add(*args) == want"}]});
    let right = "def add(a: int, b: int) -> int:\n    return a + b\n";
    assert_eq!(verify(record.clone(), right).await.outcome, Outcome::Passed);
    // The program can use what `setup` defines, never what `judge_setup` does.
    let peeks = "def add(a, b):\n    return dict((k, v) for k, v in CASES)[(a, b)]\n";
    assert_eq!(verify(record, peeks).await.outcome, Outcome::RuntimeError);
}

/// LeetCode's shared classes and helpers, as a dataset's `setup` holds them.
const LEETCODE_SETUP: &str = "from typing import Optional, List\n\
class ListNode:\n    def __init__(self, val=0, next=None):\n        self.val = val\n        self.next = next\n\
class TreeNode:\n    def __init__(self, val=0, left=None, right=None):\n        self.val = val\n        self.left = left\n        self.right = right\n\
def build(xs):\n    head = None\n    for x in reversed(xs):\n        head = ListNode(x, head)\n    return head\n\
def to_list(node):\n    out = []\n    while node:\n        out.append(node.val)\n        node = node.next\n    return out\n";

#[tokio::test]
async fn objects_of_the_setups_classes_cross_by_value_both_ways() {
    let t = tests(json!([
        {"kind": "assert", "code": "assert to_list(Solution().reverseList(build([1, 2, 3]))) == [3, 2, 1]"},
        {"kind": "assert", "code": "assert Solution().reverseList(None) is None"},
        {"kind": "assert", "code": "h = build([1, 2, 3, 4])\nSolution().reorderList(h)\nassert to_list(h) == [1, 4, 2, 3]"},
        {"kind": "assert", "code": "root = TreeNode(1, TreeNode(2), TreeNode(3, TreeNode(4)))\nassert Solution().maxDepth(root) == 3"},
    ]));
    let right = r#"class Solution:
    def reverseList(self, head: Optional[ListNode]) -> Optional[ListNode]:
        prev = None
        while head:
            head.next, prev, head = prev, head, head.next
        return prev

    def reorderList(self, head):
        nodes = []
        while head:
            nodes.append(head)
            head = head.next
        i, j, order = 0, len(nodes) - 1, []
        while i <= j:
            order.append(nodes[i])
            if i != j:
                order.append(nodes[j])
            i, j = i + 1, j - 1
        for a, b in zip(order, order[1:] + [None]):
            a.next = b

    def maxDepth(self, root: Optional[TreeNode]) -> int:
        return 0 if root is None else 1 + max(self.maxDepth(root.left), self.maxDepth(root.right))
"#;
    let r = crate::sandbox::run_setup(right, LEETCODE_SETUP, &t).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
    // A wrong one still fails each.
    let wrong = right
        .replace("return prev", "return head")
        .replace("1 + max(", "2 + max(");
    let r = crate::sandbox::run_setup(&wrong, LEETCODE_SETUP, &t).await;
    assert_eq!(r.tests.passed, 2, "{r:#?}");
}

#[tokio::test]
async fn builtins_cross_by_name_and_the_setups_exceptions_and_dataclasses_keep_their_type() {
    let t = |code: &str| json!([{"kind": "assert", "code": code}]);
    // key=len, key=str.lower, a builtin type as a function: the program gets its own builtins.
    passes(
        "def sort_by(xs, key):\n    return sorted(xs, key=key)\n\ndef apply(f, xs):\n    return [f(x) for x in xs]\n",
        t("assert sort_by(['bb', 'a', 'ccc'], len) == ['a', 'bb', 'ccc']\nassert sort_by(['B', 'a'], str.lower) == ['a', 'B']\nassert apply(int, ['1', '2']) == [1, 2]"),
    )
    .await;
    // A lambda crosses as a test object: the program calls it, the judge runs it.
    let (o, r) = outcome(
        "def sort_by(xs, key):\n    return sorted(xs, key=key)\n",
        t("assert sort_by([2, 1], lambda x: -x) == [2, 1]"),
    )
    .await;
    assert_eq!(o, Outcome::Passed, "{r}");
    // The setup's exception class and dataclass are the test's own on the judge's side.
    let setup = "from dataclasses import dataclass\n\nclass InvalidInput(ValueError):\n    pass\n\n@dataclass\nclass Point:\n    x: int\n    y: int\n";
    let program = "def check_age(n):\n    if n < 0:\n        raise InvalidInput(n)\n    return n\n\ndef mid(a, b):\n    return Point((a.x + b.x) // 2, (a.y + b.y) // 2)\n";
    let r = crate::sandbox::run_setup(
        program,
        setup,
        &tests(json!([
            {"kind": "assert", "code": "try:\n    check_age(-1)\n    assert False\nexcept InvalidInput as e:\n    assert e.args == (-1,)"},
            {"kind": "assert", "code": "assert mid(Point(0, 0), Point(2, 4)) == Point(1, 2)"},
        ])),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
}

#[tokio::test]
async fn linked_lists_with_cycles_and_of_any_length_cross() {
    let setup = format!(
        "{LEETCODE_SETUP}def with_cycle(xs, pos):\n    head = build(xs)\n    node, tail, at = head, None, None\n    i = 0\n    while node:\n        if i == pos:\n            at = node\n        tail = node\n        node = node.next\n        i += 1\n    if tail and at:\n        tail.next = at\n    return head\n"
    );
    let program = r#"class Solution:
    def hasCycle(self, head):
        slow = fast = head
        while fast and fast.next:
            slow, fast = slow.next, fast.next.next
            if slow is fast:
                return True
        return False

    def reverseList(self, head):
        prev = None
        while head:
            head.next, prev, head = prev, head, head.next
        return prev
"#;
    let t = tests(json!([
        {"kind": "assert", "code": "assert Solution().hasCycle(with_cycle([3, 2, 0, -4], 1)) is True"},
        {"kind": "assert", "code": "assert Solution().hasCycle(with_cycle([1, 2], -1)) is False"},
        {"kind": "assert", "code": "xs = list(range(3000))\nassert to_list(Solution().reverseList(build(xs))) == xs[::-1]"},
    ]));
    let r = crate::sandbox::run_setup(program, &setup, &t).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
    let wrong = program.replace("return True", "return False");
    let r = crate::sandbox::run_setup(&wrong, &setup, &t).await;
    assert_eq!(r.tests.passed, 2, "{r:#?}");
}

#[tokio::test]
async fn bytearrays_cross_both_ways() {
    passes(
        "def f(n):\n    return bytearray(b'ab') * n\n\ndef g(b):\n    b.extend(b'!')\n    return len(b)\n",
        json!([
            {"kind": "assert", "code": "assert f(2) == bytearray(b'abab') and type(f(1)) is bytearray"},
            {"kind": "assert", "code": "b = bytearray(b'x')\nassert g(b) == 2 and b == bytearray(b'x!')"},
        ]),
    )
    .await;
    fails(
        "def f(n):\n    return bytearray(b'ab') * (n + 1)\n",
        json!([{"kind": "assert", "code": "assert f(2) == bytearray(b'abab')"}]),
    )
    .await;
}

#[tokio::test]
async fn asyncio_runs_without_sockets_and_its_sleeps_are_virtual() {
    let program = "import asyncio\n\nasync def twice(x):\n    await asyncio.sleep(5)\n    a, b = await asyncio.gather(asyncio.sleep(0.5, x), asyncio.sleep(0, x))\n    return a + b\n\ndef f(x):\n    return asyncio.run(twice(x))\n";
    let started = std::time::Instant::now();
    passes(
        program,
        json!([{"kind": "assert", "code": "assert f(3) == 6"}]),
    )
    .await;
    // Five and a half seconds of sleeping cost no wall time.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    fails(
        &program.replace("a + b", "a * b"),
        json!([{"kind": "assert", "code": "assert f(3) == 6"}]),
    )
    .await;
}

#[tokio::test]
async fn pep_758_except_lists_run() {
    passes(
        "def f(x):\n    try:\n        return int(x)\n    except ValueError, TypeError, OverflowError:\n        return -1\n",
        json!([{"kind": "assert", "code": "assert f('a') == -1 and f(None) == -1 and f(float('inf')) == -1 and f('4') == 4"}]),
    )
    .await;
}

#[tokio::test]
async fn a_tests_own_large_argument_reaches_the_program() {
    // 2 MB of test data, over the 1 MiB cap on what the program sends back.
    passes(
        "def f(s):\n    return len(s)\n",
        json!([{"kind": "assert", "code": "assert f('x' * 2_000_000) == 2_000_000"}]),
    )
    .await;
    // A list that large travels back too (arguments changed in place are copied back).
    passes(
        "def total(xs):\n    xs.reverse()\n    return sum(xs)\n",
        json!([{"kind": "assert", "code": "xs = list(range(200_000))\nassert total(xs) == 19_999_900_000 and xs[0] == 199_999"}]),
    )
    .await;
    // What comes back is capped at the answer cap plus what was sent: a 4 MB answer to a 2 MB
    // request is the program's output_limit.
    let (o, r) = outcome(
        "def f(s):\n    return s * 2\n",
        json!([{"kind": "assert", "code": "assert len(f('x' * 2_000_000)) == 4_000_000"}]),
    )
    .await;
    assert_ne!(o, Outcome::Passed, "{r}");
    assert_ne!(o, Outcome::Error, "{r}");
}

#[tokio::test]
async fn output_of_exactly_the_cap_is_within_it() {
    let cap = 256 * 1024; // the shared sandbox's `output_kb`
    let line = |n: usize| format!("import sys\nsys.stdout.write('x' * {} + '\\n')\n", n - 1);
    let expected = format!("{}\n", "x".repeat(cap - 1));
    let (o, r) = outcome(
        &line(cap),
        json!([{"kind": "stdio", "stdin": "", "stdout": expected}]),
    )
    .await;
    assert_eq!(o, Outcome::Passed, "{r}");
    let (o, r) = outcome(
        &line(cap + 1),
        json!([{"kind": "stdio", "stdin": "", "stdout": expected}]),
    )
    .await;
    assert_eq!(o, Outcome::OutputLimit, "{r}");
}

#[tokio::test]
async fn a_trailing_driver_joins_the_solution_and_examples_never_replace_it() {
    let chain = verdict::Config::default_config().build().unwrap();
    let fence = |code: &str| format!("```python\n{code}```\n");
    let solution = fence("def solve(s):\n    return s[::-1]\n");
    let score = |completion: String, tests: Value| {
        let rollout: Rollout = serde_json::from_value(json!({
            "id": "r", "prompt": "Reverse a line.", "completion": format!("<think>Reverse it.</think>\n{completion}"),
            "tests": tests,
        }))
        .unwrap();
        let chain = &chain;
        async move { chain.score(&rollout).await }
    };
    let stdio = json!([{"kind": "stdio", "stdin": "abc\n", "stdout": "cba\n"}]);
    let with_driver = format!(
        "{solution}Run it with:\n{}",
        fence("print(solve(input()))\n")
    );
    let s = score(with_driver, stdio.clone()).await;
    assert_eq!(s.outcome, Outcome::Passed, "{s:#?}");
    let asserts = json!([{"kind": "assert", "code": "assert solve('ab') == 'ba'"}]);
    for trailing in [
        fence("print(solve('ab'))\n"),
        fence(">>> solve('ab')\n'ba'\n"),
    ] {
        let s = score(
            format!("{solution}For example:\n{trailing}"),
            asserts.clone(),
        )
        .await;
        assert_eq!(s.outcome, Outcome::Passed, "{trailing}: {s:#?}");
    }
}

#[tokio::test]
async fn membership_in_the_programs_objects_is_theirs_to_decide() {
    let bag = "class Bag:\n    def __init__(self):\n        self.items = [1, 2]\n    def __iter__(self):\n        return iter(self.items)\n\ndef f():\n    return Bag()\n";
    passes(
        bag,
        json!([{"kind": "assert", "code": "assert 2 in f() and 3 not in f()"}]),
    )
    .await;
    fails(
        &bag.replace("[1, 2]", "[1]"),
        json!([{"kind": "assert", "code": "assert 2 in f()"}]),
    )
    .await;
    // A view the program returns: its elements are data, compared by the judge.
    passes(
        "def f():\n    return {'a': 1, 'b': 2}.keys()\n",
        json!([{"kind": "assert", "code": "assert 'a' in f() and 'c' not in f()"}]),
    )
    .await;
    // A membership that claims everything decides nothing about the test's data.
    fails(
        "class All:\n    def __contains__(self, x):\n        return True\n    def __iter__(self):\n        return iter([])\n\ndef f():\n    return All()\n",
        json!([{"kind": "assert", "code": "assert 2 in f()"}]),
    )
    .await;
}

#[tokio::test]
async fn a_generators_return_value_reaches_the_test() {
    let program = "def g():\n    yield 1\n    return 7\n\ndef f():\n    return g()\n";
    let test = "it = f()\nassert next(it) == 1\ntry:\n    next(it)\nexcept StopIteration as e:\n    assert e.value == 7\nelse:\n    assert False\n";
    passes(program, json!([{"kind": "assert", "code": test}])).await;
    fails(
        &program.replace("return 7", "return 8"),
        json!([{"kind": "assert", "code": test}]),
    )
    .await;
    // Without a return value the iteration ends as before.
    passes(
        "def f():\n    return iter([1, 2])\n",
        json!([{"kind": "assert", "code": "assert list(f()) == [1, 2]"}]),
    )
    .await;
}

/// Callbacks (PROTOCOL.md, "Callbacks"): a test object handed to the program — a key function,
/// a comparator, a visitor, a generator, an exception class, a lambda calling back into the
/// program — is run by the judge when the program uses it, at any depth, as natively; the
/// program reaches only calls, methods, `iter` and `next` of it.
#[tokio::test]
async fn callbacks_run_the_tests_own_code_in_the_judge() {
    let t = |code: &str| json!([{"kind": "assert", "code": code}]);
    let cases: &[(&str, &str, bool)] = &[
        ("def sort_by(xs, key):\n    return sorted(xs, key=key)\n", "assert sort_by([3, 1, 2], lambda x: -x) == [3, 2, 1]", true),
        ("def sort_by(xs, key):\n    return sorted(xs)\n", "assert sort_by([3, 1, 2], lambda x: -x) == [3, 2, 1]", false),
        ("import functools\ndef order(xs, cmp):\n    return sorted(xs, key=functools.cmp_to_key(cmp))\n", "assert order([3, 1, 2], lambda a, b: b - a) == [3, 2, 1]", true),
        ("def walk(xs, v):\n    for x in xs:\n        v.visit(x)\n    return v.done()\n",
         "class V:\n    def __init__(self):\n        self.seen = []\n    def visit(self, x):\n        self.seen.append(x)\n    def done(self):\n        return len(self.seen)\nv = V()\nassert walk([1, 2, 3], v) == 3\nassert v.seen == [1, 2, 3]", true),
        ("def double(x):\n    return 2 * x\ndef apply(f, x):\n    return f(x)\n", "assert apply(lambda y: double(y) + 1, 3) == 7", true),
        ("def rec(f, n):\n    return f(n)\n", "def g(n):\n    return 0 if n == 0 else rec(g, n - 1) + 1\nassert rec(g, 10) == 10", true),
        ("def safe(f, exc):\n    try:\n        return f()\n    except exc:\n        return 'caught'\n",
         "class E(ValueError):\n    pass\ndef boom():\n    raise E('x')\nassert safe(boom, E) == 'caught'", true),
        ("def check(x, E):\n    if x < 0:\n        raise E('neg')\n    return x\n",
         "class Neg(Exception):\n    pass\ntry:\n    check(-1, Neg)\n    ok = False\nexcept Neg as e:\n    ok = e.args == ('neg',)\nassert ok", true),
        ("def ident(f):\n    return f\n", "f = lambda: 1\nassert ident(f) is f", true),
        ("def get(f):\n    return f()\n", "class C:\n    pass\nc = C()\nassert get(lambda: c) is c", true),
        ("def total(it):\n    return sum(it)\n", "assert total(x * x for x in range(4)) == 14", true),
        ("import re\ndef sub(s, f):\n    return re.sub(r'\\d', f, s)\n", "assert sub('a1b2', lambda m: 'X') == 'aXbX'", true),
        ("def try_it(f):\n    try:\n        f()\n    except KeyError as e:\n        return e.args\n", "def f():\n    raise KeyError('k')\nassert try_it(f) == ('k',)", true),
        ("def first(it):\n    return next(it), next(it, 'end')\n", "assert first(iter([7])) == (7, 'end')", true),
        ("def up(E, s):\n    return E[s.upper()]\n", "from enum import Enum\nclass Color(Enum):\n    RED = 1\nassert up(Color, 'red') is Color.RED", true),
        ("def emit(out, xs):\n    for x in xs:\n        out.write(str(x))\n", "import io\nout = io.StringIO()\nemit(out, [1, 2])\nassert out.getvalue() == '12'", true),
        ("def run(f):\n    return f()\n", "class Boom(Exception):\n    pass\ndef f():\n    raise Boom('x')\ntry:\n    run(f)\n    ok = False\nexcept Boom as e:\n    ok = e.args == ('x',)\nassert ok", true),
        ("def kinds(xs, key):\n    return [key(x).__name__ for x in xs]\n", "assert kinds([1, 'a'], type) == ['int', 'str']", true),
        // What the program has the judge build from its own objects is never the test's.
        ("def kinds(xs, key):\n    return key('F', (), {'__eq__': lambda o: True, '__module__': '__main__'})()\n", "assert kinds([1], type) == ['int']", false),
        ("def pick(E, v):\n    return E.mro()[1]._create_('F', {'__eq__': lambda o: True, 'X': 1}, module='__main__')(1)\n", "from enum import Enum\nclass Color(Enum):\n    RED = 1\nassert pick(Color, 1) == Color.RED", false),
    ];
    for (program, test, ok) in cases {
        let (o, r) = outcome(program, t(test)).await;
        assert_eq!(o == Outcome::Passed, *ok, "{program}\n{test}\n{o:?} {r}");
        assert_ne!(o, Outcome::Error, "{r}");
    }
    // The setup's class crosses as the other side's own class of that name.
    let setup = "class Node:\n    def __init__(self, val):\n        self.val = val\n";
    let r = crate::sandbox::run_setup(
        "def make(cls, v):\n    return cls(v)\n",
        setup,
        &tests(t(
            "n = make(Node, 3)\nassert type(n) is Node and n.val == 3",
        )),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
    // Stricter than native, documented: an assertion of the test's code that fails in a
    // callback fails the test even if the program catches it; a test object's data and
    // dunders are out of the program's reach; nesting is capped.
    let strict: &[(&str, &str, Outcome)] = &[
        ("def run(cb):\n    try:\n        cb(-1)\n    except AssertionError:\n        pass\n    return 1\n", "def cb(x):\n    assert x > 0\n    return x\nassert run(cb) == 1", Outcome::Failed),
        ("def peek(f):\n    return f.__globals__\n", "assert peek(lambda: 1) is not None", Outcome::RuntimeError),
        ("def peek(v):\n    return v.secret\n", "class V:\n    def __init__(self):\n        self.secret = [1]\nassert peek(V()) == [1]", Outcome::RuntimeError),
        ("def rec(f, n):\n    return f(n)\n", "def g(n):\n    return 0 if n == 0 else rec(g, n - 1) + 1\nassert rec(g, 100) == 100", Outcome::RuntimeError),
    ];
    for (program, test, want) in strict {
        let (o, r) = outcome(program, t(test)).await;
        assert_eq!(o, *want, "{program}\n{test}\n{r}");
    }
}

/// Identity within a call (PROTOCOL.md, "Identity"): the same container passed twice, a row
/// held twice, an argument the program returns, a list inside a tuple or a dict changed in
/// place: one object on both sides, as natively.
#[tokio::test]
async fn identity_and_aliasing_hold_within_a_call() {
    let t = |code: &str| json!([{"kind": "assert", "code": code}]);
    let cases: &[(&str, &str, bool)] = &[
        ("def f(a, b):\n    a.append(1)\n    return b", "x = []\nassert f(x, x) == [1] and x == [1]", true),
        ("def f(a, b):\n    return b", "x = []\nassert f(x, x) is x", true),
        ("def f(grid):\n    grid[0][0] = 1", "row = [0]\ng = [row, row]\nf(g)\nassert g[1][0] == 1 and row == [1] and g[0] is g[1]", true),
        ("def f(xs):\n    xs.sort()\n    return xs", "a = [3, 1]\nassert f(a) is a and a == [1, 3]", true),
        ("def f(xs):\n    return sorted(xs)", "a = [3, 1]\nassert f(a) is a", false),
        ("def f(t):\n    t[0].append(2)", "t = ([1],)\nf(t)\nassert t[0] == [1, 2]", true),
        ("def f(d):\n    d['k'].append(2)\n    d['new'] = {3}", "inner = [1]\nd = {'k': inner}\nf(d)\nassert d == {'k': [1, 2], 'new': {3}} and d['k'] is inner", true),
        ("def f(*, out):\n    out.extend([1, 2])", "o = []\nf(out=o)\nassert o == [1, 2]", true),
        ("def f(xs):\n    xs.append(xs)\n    return len(xs)", "a = [0]\nassert f(a) == 2 and a[1] is a", true),
        ("def f(b):\n    b[0] = 65", "b = bytearray(b'a')\nf(b)\nassert b == bytearray(b'A')", true),
        ("def f():\n    row = [0]\n    return [row, row]", "g = f()\ng[0][0] = 5\nassert g[1][0] == 5", true),
    ];
    for (program, test, ok) in cases {
        let (o, r) = outcome(program, t(test)).await;
        assert_eq!(o == Outcome::Passed, *ok, "{program}\n{test}\n{o:?} {r}");
        assert_ne!(o, Outcome::Error, "{r}");
    }
}

/// `datetime`, `date`, `time`, `timedelta`, the members of the setup's and the stdlib's
/// enums, and two of the program's objects hashed into one of the test's sets.
#[tokio::test]
async fn dates_enums_and_hashes_keep_their_meaning() {
    let t = |code: &str| json!([{"kind": "assert", "code": code}]);
    let cases: &[(&str, &str, bool)] = &[
        ("import datetime\ndef f():\n    return datetime.date(2024, 1, 2) + datetime.timedelta(days=1)", "import datetime\nassert f() == datetime.date(2024, 1, 3)", true),
        ("import datetime\ndef f():\n    return datetime.date(2024, 1, 2)", "import datetime\nassert f() == datetime.date(2024, 1, 3)", false),
        ("from datetime import datetime, timezone, timedelta\ndef f(d):\n    return d + timedelta(hours=1)", "from datetime import datetime, timezone, timedelta\nz = timezone(timedelta(hours=2), 'X')\nr = f(datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=z))\nassert r == datetime(2024, 5, 6, 8, 8, 9, 10, tzinfo=z) and r.tzname() == 'X'", true),
        ("import datetime\ndef f(t):\n    return t.replace(second=1)", "import datetime\nassert f(datetime.time(1, 2, 3)) == datetime.time(1, 2, 1)", true),
        ("import http\ndef f():\n    return http.HTTPStatus.NOT_FOUND", "import http\nassert f() is http.HTTPStatus.NOT_FOUND", true),
        ("import http\ndef f():\n    return http.HTTPStatus.OK", "import http\nassert f() == http.HTTPStatus.NOT_FOUND", false),
        ("class V:\n    def __init__(self, x):\n        self.x = x\n    def __eq__(self, o):\n        return isinstance(o, V) and o.x == self.x\n    def __hash__(self):\n        return hash(self.x)\ndef f(x):\n    return V(x)", "assert f(1) == f(1) and f(1) != f(2) and len({f(1), f(1)}) == 1", true),
    ];
    for (program, test, ok) in cases {
        let (o, r) = outcome(program, t(test)).await;
        assert_eq!(o == Outcome::Passed, *ok, "{program}\n{test}\n{o:?} {r}");
        assert_ne!(o, Outcome::Error, "{r}");
    }
    let setup = "import enum\nclass Color(enum.Enum):\n    RED = 1\n    BLUE = 2\n";
    for (program, ok) in [
        (
            "def f(c):\n    return Color.BLUE if c is Color.RED else Color.RED",
            true,
        ),
        ("def f(c):\n    return Color.RED", false),
    ] {
        let r = crate::sandbox::run_setup(
            program,
            setup,
            &tests(t(
                "assert f(Color.RED) is Color.BLUE and f(Color.BLUE) == Color.RED",
            )),
        )
        .await;
        assert_eq!(r.outcome == Outcome::Passed, ok, "{r:#?}");
    }
}

/// A `typing.NamedTuple` or dataclass the program returns: the copy compares as the original
/// (its compared fields, its generated order) and its methods are read from the original.
#[tokio::test]
async fn records_keep_their_methods_and_order() {
    let t = |code: &str| json!([{"kind": "assert", "code": code}]);
    let cases: &[(&str, &str, bool)] = &[
        ("from typing import NamedTuple\nclass P(NamedTuple):\n    x: int\n    y: int\n    def norm(self):\n        return abs(self.x) + abs(self.y)\ndef f():\n    return P(1, -2)", "p = f()\nassert p.norm() == 3 and p.x == 1 and p._replace(x=5) == (5, -2)", true),
        ("from typing import NamedTuple\nclass P(NamedTuple):\n    x: int\n    y: int\n    def norm(self):\n        return self.x + self.y\ndef f():\n    return P(1, -2)", "assert f().norm() == 3", false),
        ("from typing import NamedTuple\nclass P(NamedTuple):\n    x: int\n    def twice(self):\n        return P(2 * self.x)\ndef f(p):\n    return p.twice()", "p = f(f(P(1)))\nassert p.x == 4 and p.twice().x == 8", true),
        ("from dataclasses import dataclass, field\n@dataclass(order=True, frozen=True)\nclass C:\n    k: int\n    tag: str = field(compare=False, default='')\n    def twice(self):\n        return self.k * 2\ndef f():\n    return [C(2, 'a'), C(1, 'b')]", "xs = f()\nassert sorted(xs)[0].k == 1 and max(xs).twice() == 4 and C(1, 'z') == xs[1] and len({xs[0], C(2, 'q')}) == 1", true),
        ("from dataclasses import dataclass\n@dataclass\nclass C:\n    k: int\ndef f():\n    return C(1)", "assert f() == C(1) and f() != C(2)", true),
        ("from typing import NamedTuple\nclass P(NamedTuple):\n    x: int\n    y: int\n    def n2(self):\n        return self.x ** 2 + self.y ** 2\ndef make(x, y):\n    return P(x, y)\ndef norm2(p):\n    return p.x ** 2 + p.y ** 2", "q = make(3, 4)._replace(x=6, y=8)\nassert norm2(q) == 100 and make(3, 4).n2() == 25", true),
    ];
    for (program, test, ok) in cases {
        let (o, r) = outcome(program, t(test)).await;
        assert_eq!(o == Outcome::Passed, *ok, "{program}\n{test}\n{o:?} {r}");
        assert_ne!(o, Outcome::Error, "{r}");
    }
}

/// Test modules (`pytest`, `unittest`): one result per collected item, each with the module's
/// index and its item name; the program importable as `solution` (or the declared module),
/// any other import as natively; a module that fails before its items run is one `<module>`
/// result. (Agreement with real pytest item by item: tests/python/test_suites.py.)
#[tokio::test]
async fn test_modules_give_one_result_per_item() {
    let program = "def add(a, b):\n    return a + b\n";
    let module = "import pytest\nfrom solution import add\n\n@pytest.mark.parametrize('a,b', [(1, 2), (3, 4)])\ndef test_add(a, b):\n    assert add(a, b) == a + b\n\nclass TestMore:\n    def test_zero(self):\n        assert add(0, 0) == 0\n";
    let t = tests(json!([{"kind": "pytest", "code": module}]));
    let r = run(program, &t).await;
    let items: Vec<_> = r
        .tests
        .results
        .iter()
        .map(|x| (x.item.clone().unwrap(), x.passed))
        .collect();
    assert_eq!(
        items,
        [
            ("test_add[1-2]".to_string(), true),
            ("test_add[3-4]".to_string(), true),
            ("TestMore::test_zero".to_string(), true)
        ],
        "{r:#?}"
    );
    assert!(r
        .tests
        .results
        .iter()
        .all(|x| x.index == 0 && x.kind == "pytest"));
    assert_eq!(
        (r.outcome, r.tests.passed, r.tests.total),
        (Outcome::Passed, 3, 3)
    );
    // A wrong program fails the items it gets wrong, and passes the others.
    let r = run("def add(a, b):\n    return a * b\n", &t).await;
    assert_eq!(
        (r.outcome, r.tests.passed, r.tests.total),
        (Outcome::Failed, 1, 3),
        "{r:#?}"
    );
    // Declared module name; an import of anything else that is not the stdlib fails as natively.
    let t = tests(
        json!([{"kind": "pytest", "module": "mysol", "code": "from mysol import add\n\ndef test_add():\n    assert add(1, 1) == 2\n"}]),
    );
    assert_eq!(run(program, &t).await.outcome, Outcome::Passed);
    let t = tests(
        json!([{"kind": "pytest", "code": "from helpers import add\n\ndef test_add():\n    assert add(1, 1) == 2\n"}]),
    );
    let r = run(program, &t).await;
    assert_eq!(r.outcome, Outcome::RuntimeError, "{r:#?}");
    // A module that fails before its items run fails each item it has (read from its source),
    // so a program that breaks collection never raises its pass fraction.
    assert_eq!(r.tests.results[0].item.as_deref(), Some("test_add"));
    assert!(r.message.unwrap().contains("ModuleNotFoundError"));
    // A named table of cases counts its rows when collection fails.
    let t = tests(
        json!([{"kind": "pytest", "code": "import pytest\nfrom solution import add\n\nCASES = [(1, 2, 3), (2, 2, 4), (3, 3, 6), (4, 4, 8)]\n\n@pytest.mark.parametrize('a, b, c', CASES)\ndef test_add(a, b, c):\n    assert add(a, b) == c\n"}]),
    );
    let r = run("def sub(a, b):\n    return a - b\n", &t).await;
    assert_eq!((r.tests.passed, r.tests.total), (0, 4), "{r:#?}");
    // Annotated and concatenated tables, a mark kept in a name, an indirect TestCase base.
    for module in [
        "import pytest\nfrom solution import add\n\nCASES: list = [(1, 2, 3), (2, 2, 4), (3, 3, 6), (4, 4, 8)]\n\n@pytest.mark.parametrize('a, b, c', CASES)\ndef test_add(a, b, c):\n    assert add(a, b) == c\n",
        "import pytest\nfrom solution import add\n\nA = [(1, 2, 3), (2, 2, 4)]\nB = [(3, 3, 6), (4, 4, 8)]\ncases = pytest.mark.parametrize('a, b, c', A + B)\n\n@cases\ndef test_add(a, b, c):\n    assert add(a, b) == c\n",
    ] {
        let t = tests(json!([{"kind": "pytest", "code": module}]));
        let r = run("def sub(a, b):\n    return a - b\n", &t).await;
        assert_eq!((r.tests.passed, r.tests.total), (0, 4), "{module}\n{r:#?}");
    }
    let t = tests(
        json!([{"kind": "unittest", "code": "import unittest\nfrom solution import add\n\nclass Base(unittest.TestCase):\n    pass\n\nclass AddTests(Base):\n    def test_a(self):\n        self.assertEqual(add(1, 2), 3)\n    def test_b(self):\n        self.assertEqual(add(2, 2), 4)\n"}]),
    );
    let r = run("def sub(a, b):\n    return a - b\n", &t).await;
    assert_eq!((r.tests.passed, r.tests.total), (0, 2), "{r:#?}");
    // unittest: BigCodeBench's classes, with the program's names as globals.
    let t = tests(
        json!([{"kind": "unittest", "code": "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(add(2, 2), 4)\n    def test_b(self):\n        self.assertRaises(TypeError, add, 1, 'x')\n"}]),
    );
    let r = run(program, &t).await;
    assert_eq!(
        (r.outcome, r.tests.passed, r.tests.total),
        (Outcome::Passed, 2, 2),
        "{r:#?}"
    );
    assert_eq!(r.tests.results[1].item.as_deref(), Some("TestCases.test_b"));
}
