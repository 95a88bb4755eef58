//! The sandbox end to end, on the real runtime (installed on first use).

use std::sync::OnceLock;

use serde_json::json;
use verdict::sandbox::{RunJob, RunReport, Sandbox, SandboxConfig};
use verdict::verifiers::tests::TestsConfig;
use verdict::{BuildContext, Context, Outcome, Rollout, TestCase, Verifier};

/// One sandbox for the whole test binary (building it the first time takes a minute).
pub(crate) fn shared() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let config = SandboxConfig {
            limits: verdict::sandbox::LimitsConfig {
                time_ms: 5_000,
                memory_mb: 256,
                output_kb: 256,
                ..Default::default()
            },
            ..SandboxConfig::default()
        };
        Sandbox::new(&config).expect("the sandbox runtime builds and passes its self-test")
    })
}

pub(crate) fn tests(v: serde_json::Value) -> Vec<TestCase> {
    serde_json::from_value(v).unwrap()
}

pub(crate) async fn run(program: &str, tests: &[TestCase]) -> RunReport {
    run_with(program, tests, None).await
}

/// [`run`] with a setup.
pub(crate) async fn run_setup(program: &str, setup: &str, tests: &[TestCase]) -> RunReport {
    let job = RunJob {
        id: "it",
        program,
        setup: Some(setup),
        judge_setup: None,
        tests,
        limits: None,
        stop_on_failure: false,
    };
    shared().run(&job).await.expect("the sandbox runs")
}

pub(crate) async fn run_with(
    program: &str,
    tests: &[TestCase],
    limits: Option<verdict::Limits>,
) -> RunReport {
    let job = RunJob {
        id: "it",
        program,
        setup: None,
        judge_setup: None,
        tests,
        limits: limits.as_ref(),
        stop_on_failure: false,
    };
    shared().run(&job).await.expect("no service failure")
}

#[tokio::test]
async fn all_three_test_kinds_pass_for_a_right_program() {
    let program = "def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    a, b = map(int, input().split())\n    print(add(a, b))\n";
    let t = tests(json!([
        {"kind": "assert", "code": "assert add(1, 2) == 3"},
        {"kind": "stdio", "stdin": "2 5\n", "stdout": "7\n"},
        {"kind": "call", "fn": "add", "args": [2, 2.5], "expected": 4.5},
    ]));
    let r = run(program, &t).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
    assert_eq!((r.tests.passed, r.tests.total), (3, 3));
    assert!(r.tests.results.iter().all(|t| t.fuel > 0), "{r:#?}");
}

#[tokio::test]
async fn wrong_answers_fail_with_the_failing_test() {
    let t = tests(json!([
        {"kind": "call", "fn": "add", "args": [1, 2], "expected": 3},
        {"kind": "call", "fn": "add", "args": [2, 2], "expected": 4},
        {"kind": "assert", "code": "assert add(3, 3) == 6, 'six'"},
    ]));
    let r = run("def add(a, b):\n    return 4\n", &t).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.tests.passed, 1);
    assert!((r.pass_fraction() - 1.0 / 3.0).abs() < 1e-9);
    let msg = r.message.unwrap();
    assert!(
        msg.starts_with("test 0: wrong value: expected 3, got 4"),
        "{msg}"
    );
    assert!(r.tests.results[2]
        .message
        .as_deref()
        .unwrap()
        .contains("six"));
}

#[tokio::test]
async fn exceptions_are_runtime_errors_with_type_and_message() {
    let t = tests(json!([{"kind": "call", "fn": "f", "args": [], "expected": 1}]));
    let r = run("def f():\n    return {}['missing']\n", &t).await;
    assert_eq!(r.outcome, Outcome::RuntimeError);
    assert!(
        r.message
            .as_deref()
            .unwrap()
            .contains("KeyError: 'missing'"),
        "{r:?}"
    );
    let r = run("def f(:\n", &t).await;
    assert_eq!(r.outcome, Outcome::SyntaxError, "{r:?}");
}

#[tokio::test]
async fn call_comparison_is_canonical() {
    // (A set is not a list: README, "Comparison rules"; tests/it/judge.rs.)
    let program = "def f():\n    return [(1, 2), {'b': 2, 'a': 1.0}, sorted({3, 1}), 2.0, 0.1 + 0.2, True, None, 'x']\n";
    let t = tests(json!([
        {"kind": "call", "fn": "f", "args": [], "expected": [[1, 2], {"a": 1, "b": 2}, [1, 3], 2, 0.3, true, null, "x"]},
        {"kind": "call", "fn": "f", "args": [], "expected": [[1, 2], {"a": 1, "b": 2}, [1, 3], 2, 0.3, 1, null, "x"]},
    ]));
    let r = run(program, &t).await;
    assert!(r.tests.results[0].passed, "{r:#?}");
    assert!(!r.tests.results[1].passed, "True is not 1: {r:#?}");
}

#[tokio::test]
async fn big_ints_beyond_the_str_limit_come_back() {
    let t = tests(json!([{"kind": "call", "fn": "f", "args": [], "expected": 7}]));
    let r = run("def f():\n    return 10**5000\n", &t).await;
    assert_eq!(r.outcome, Outcome::Failed);
    let msg = r.message.unwrap();
    assert!(msg.contains("wrong value: expected 7, got 1000"), "{msg}");
}

#[tokio::test]
async fn stdio_counts_lines_and_tolerates_floats_and_line_endings() {
    let t = tests(json!([{"kind": "stdio", "stdin": "", "stdout": "0.333333333\r\nok\n"}]));
    let r = run("print(1/3)\nprint('ok   ')\n", &t).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
    let r = run("print(1/3)\n", &t).await;
    assert_eq!(r.outcome, Outcome::Failed);
    // A clean sys.exit(0) after the right output is a normal end for a script.
    let r = run("import sys\nprint(1/3)\nprint('ok')\nsys.exit(0)\n", &t).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
}

#[tokio::test]
async fn nothing_survives_from_one_test_to_the_next() {
    let t = tests(json!([
        {"kind": "assert", "code": "import builtins\nbuiltins.leak = 1\nglobal_state.append(1)\nassert len(global_state) == 1"},
        {"kind": "assert", "code": "import builtins\nassert not hasattr(builtins, 'leak')\nglobal_state.append(1)\nassert len(global_state) == 1"},
    ]));
    let r = run("global_state = []\n", &t).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
}

#[tokio::test]
async fn every_stdio_test_reads_its_own_input_through_any_interface() {
    // One instance serves all four tests: each must see exactly its own stdin, whether the
    // program reads `sys.stdin`, `input()`, `sys.stdin.buffer`, `open(0)` or fd 0 directly,
    // and whether or not the previous test consumed all of its input.
    let t = tests(json!([
        {"kind": "stdio", "stdin": "1 2\nunread\nlines\n", "stdout": "3\n"},
        {"kind": "stdio", "stdin": "10 20\n", "stdout": "30\n"},
        {"kind": "stdio", "stdin": "4 4\n", "stdout": "8\n"},
        {"kind": "stdio", "stdin": "", "stdout": "empty\n"},
    ]));
    for reader in [
        "input()",
        "sys.stdin.readline()",
        "sys.stdin.buffer.readline().decode()",
        "(open(0).read().split('\\n') or [''])[0]",
        "os.read(0, 1 << 16).decode().split('\\n')[0]",
    ] {
        let program = format!(
            "import os, sys\ntry:\n    line = {reader}\nexcept EOFError:\n    line = ''\n\
             print(sum(map(int, line.split())) if line.strip() else 'empty')\n"
        );
        let r = run(&program, &t).await;
        assert_eq!(r.outcome, Outcome::Passed, "{reader}: {r:#?}");
        assert_eq!(r.tests.passed, 4, "{reader}");
    }
}

#[tokio::test]
async fn a_program_that_closes_its_streams_does_not_break_the_next_test() {
    let t = tests(json!([
        {"kind": "stdio", "stdin": "a\n", "stdout": "a\n"},
        {"kind": "stdio", "stdin": "b\n", "stdout": "b\n"},
    ]));
    for program in [
        "import sys\nprint(input())\nsys.stdout.flush()\nsys.stdout.close()\nsys.stdin.close()\n",
        "f = open(0)\nprint(f.read().strip())\nf.close()\n",
        // Closing the fd itself spends the instance: the next test runs in a fresh one.
        "import os\nprint(input())\nos.close(0)\n",
        "import io\nprint(io.open(0).read().strip())\n",
    ] {
        let r = run(program, &t).await;
        assert_eq!(r.outcome, Outcome::Passed, "{program}: {r:#?}");
    }
    // Output of one test is not seen by the next, and a prefix does not pass.
    let t = tests(json!([
        {"kind": "stdio", "stdin": "1\n", "stdout": "1\n"},
        {"kind": "stdio", "stdin": "2\n", "stdout": "2\n"},
    ]));
    let r = run("import sys\nsys.stdout.write(input() + '\\n')\n", &t).await;
    assert_eq!(r.tests.passed, 2, "{r:#?}");
}

#[tokio::test]
async fn objects_that_are_not_data_never_decide_a_comparison() {
    // The candidate's object stays in the candidate instance; the judge holds an opaque handle,
    // and comparing a handle is an incident that fails the test, whatever the test catches.
    let eq_all =
        "class A:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n\
         def f(x): return A()\n";
    let t = tests(json!([
        {"kind": "assert", "code": "assert f(1) == 2"},
        {"kind": "assert", "code": "assert not (f(1) != 2) and True"},
        {"kind": "assert", "code": "try:\n    assert f(1) == 2\nexcept BaseException:\n    pass"},
        {"kind": "assert", "code": "assert sorted([f(1), f(2)]) == [1, 2]"},
    ]));
    let r = run(eq_all, &t).await;
    assert_eq!(r.tests.passed, 0, "{r:#?}");
    // Against the judge's data a handle never decides; between two of the program's objects
    // the program's own comparison does, as natively (A has no `<`: a TypeError).
    assert!(
        r.tests.results[..3]
            .iter()
            .all(|t| t.outcome == Outcome::Failed),
        "{r:#?}"
    );
    assert_eq!(r.tests.results[3].outcome, Outcome::RuntimeError, "{r:#?}");
    assert!(
        r.message.as_deref().unwrap_or("").contains("not data"),
        "{r:#?}"
    );
    // A syntax error in the test is the test's, reported as such.
    let t = tests(json!([{"kind": "assert", "code": "assert f(1 ==\n"}]));
    let r = run("def f(x): return x\n", &t).await;
    assert_eq!(r.outcome, Outcome::RuntimeError, "{r:#?}");
    assert!(
        r.message.as_deref().unwrap_or("").contains("SyntaxError"),
        "{r:#?}"
    );
}

#[tokio::test]
async fn what_crosses_is_rebuilt_as_genuine_values_in_the_judge() {
    let program = "import collections, dataclasses, fractions\n\
        P = collections.namedtuple('P', 'x y')\n\
        @dataclasses.dataclass\nclass D:\n    a: int\n    b: list\n\
        def values():\n    return (1, 2**100, -0.0, float('inf'), 'é', b'\\x00', [1], {1: {2}}, frozenset([3]), 1j,\n\
                collections.Counter('aab'), collections.OrderedDict(a=1), collections.deque([1], 5),\n\
                collections.defaultdict(list, {1: [2]}), fractions.Fraction(1, 3), P(1, 2), D(1, [2]))\n\
        def sort_in_place(xs):\n    xs.sort()\n\
        def gen(n):\n    yield from range(n)\n\
        class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n        self.items.append(x)\n    def size(self):\n        return len(self.items)\n";
    let t = tests(json!([
        {"kind": "assert", "code": "import collections, fractions\nv = values()\nassert type(v) is tuple and type(v[1]) is int and v[1] == 2**100\nassert str(v[2]) == '-0.0' and v[3] == float('inf') and v[4] == 'é' and v[5] == b'\\x00'\nassert v[7] == {1: {2}} and type(v[8]) is frozenset and v[9] == 1j\nassert v[10] == collections.Counter('aab') and type(v[10]) is collections.Counter\nassert v[12].maxlen == 5 and v[13][1] == [2] and v[14] == fractions.Fraction(1, 3)\nassert v[15].x == 1 and v[15] == (1, 2) and v[16].b == [2]"},
        {"kind": "assert", "code": "xs = [3, 1, 2]\nsort_in_place(xs)\nassert xs == [1, 2, 3]"},
        {"kind": "assert", "code": "assert list(gen(4)) == [0, 1, 2, 3] and sum(gen(5)) == 10"},
        {"kind": "assert", "code": "s = Stack()\ns.push(1)\ns.push(2)\nassert s.size() == 2 and s.items == [1, 2]"},
    ]));
    let r = run(program, &t).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
}

#[tokio::test]
async fn random_is_reseeded_per_rollout_and_fuel_is_deterministic() {
    let t = tests(json!([{"kind": "stdio", "stdin": "", "stdout": "x"}]));
    let program = "import random\nprint(random.random())\n";
    let out = |id: &'static str| {
        let t = t.clone();
        async move {
            let job = RunJob {
                id,
                program,
                setup: None,
                judge_setup: None,
                tests: &t,
                limits: None,
                stop_on_failure: false,
            };
            let r = shared().run(&job).await.unwrap();
            (r.message.unwrap(), r.fuel)
        }
    };
    let (a1, f1) = out("rollout-a").await;
    let (a2, f2) = out("rollout-a").await;
    let (b, _) = out("rollout-b").await;
    assert_eq!(a1, a2, "same rollout id, same numbers");
    assert_ne!(a1, b, "different rollout ids, different numbers");
    assert_eq!(f1, f2, "fuel is deterministic");

    let loop_program =
        "def f(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n";
    let small = tests(json!([{"kind": "call", "fn": "f", "args": [1000], "expected": 332833500}]));
    let big = tests(
        json!([{"kind": "call", "fn": "f", "args": [100000], "expected": 333328333350000u64}]),
    );
    let (s1, s2, b1) = (
        run(loop_program, &small).await,
        run(loop_program, &small).await,
        run(loop_program, &big).await,
    );
    assert_eq!(s1.outcome, Outcome::Passed, "{s1:?}");
    assert_eq!(s1.fuel, s2.fuel);
    assert!(
        b1.fuel > 50 * s1.fuel,
        "fuel grows with the work: {} vs {}",
        b1.fuel,
        s1.fuel
    );
    assert!(s1.overhead_fuel > 0);
}

#[tokio::test]
async fn limits_come_from_the_rollout_capped_by_the_config() {
    let t = tests(json!([{"kind": "stdio", "stdin": "", "stdout": ""}]));
    let start = std::time::Instant::now();
    let r = run_with(
        "while True:\n    pass\n",
        &t,
        Some(verdict::Limits {
            time_ms: Some(300),
            memory_mb: None,
            output_kb: None,
        }),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Timeout);
    assert!(start.elapsed().as_millis() < 2_000, "{:?}", start.elapsed());
    let r = run_with(
        "print('x' * 5000)\n",
        &t,
        Some(verdict::Limits {
            time_ms: None,
            memory_mb: None,
            output_kb: Some(4),
        }),
    )
    .await;
    assert_eq!(r.outcome, Outcome::OutputLimit, "{r:?}");
}

#[tokio::test]
async fn dropping_the_future_stops_the_program() {
    let t = tests(json!([{"kind": "stdio", "stdin": "", "stdout": ""}]));
    let job = RunJob {
        id: "drop",
        program: "while True:\n    pass\n",
        setup: None,
        judge_setup: None,
        tests: &t,
        limits: None,
        stop_on_failure: false,
    };
    let r = tokio::time::timeout(std::time::Duration::from_millis(100), shared().run(&job)).await;
    assert!(r.is_err(), "the run was cancelled");
    // The slot came back: a normal run still works.
    let ok = run(
        "print(1)\n",
        &tests(json!([{"kind": "stdio", "stdin": "", "stdout": "1\n"}])),
    )
    .await;
    assert_eq!(ok.outcome, Outcome::Passed);
}

#[tokio::test]
async fn the_tests_verifier_scores_and_adapts_datasets() {
    let verifier = TestsConfig::default()
        .build(&BuildContext::new(Some(shared())))
        .unwrap();
    let mut rollout: Rollout = serde_json::from_value(json!({
        "id": "he-1", "completion": "",
        "test": "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n    assert candidate([]) == 0\n",
        "entry_point": "total"
    })).unwrap();
    let mut ctx = Context::default();
    ctx.answer.code = Some("def total(xs):\n    return sum(xs)\n".into());
    let v = verifier.verify(&rollout, &mut ctx).await;
    assert_eq!((v.outcome, v.score), (Outcome::Passed, 1.0), "{v:?}");
    assert_eq!(v.details["source"], "humaneval");
    assert!(ctx.cost.fuel > 0 && ctx.tests.is_some());

    rollout.extra.clear();
    let v = verifier.verify(&rollout, &mut ctx).await;
    assert!(v.skipped, "no tests: skipped");

    let all = TestsConfig {
        all_or_nothing: true,
        ..TestsConfig::default()
    }
    .build(&BuildContext::new(Some(shared())))
    .unwrap();
    rollout.tests = tests(json!([
        {"kind": "call", "fn": "total", "args": [[1]], "expected": 1},
        {"kind": "call", "fn": "total", "args": [[1, 1]], "expected": 3},
    ]));
    let v = verifier
        .verify(
            &rollout,
            &mut Context {
                answer: ctx.answer.clone(),
                ..Context::default()
            },
        )
        .await;
    assert_eq!((v.outcome, v.score), (Outcome::Failed, 0.5));
    let v = all
        .verify(
            &rollout,
            &mut Context {
                answer: ctx.answer.clone(),
                ..Context::default()
            },
        )
        .await;
    assert_eq!((v.outcome, v.score), (Outcome::Failed, 0.0));
}

#[tokio::test]
async fn livecodebench_functional_calls_solution_methods() {
    let verifier = TestsConfig::default()
        .build(&BuildContext::new(Some(shared())))
        .unwrap();
    let rollout: Rollout = serde_json::from_value(json!({
        "id": "lcb-1", "completion": "",
        "public_test_cases": "[{\"input\": \"[1, 2]\\n3\", \"output\": \"[4, 5]\", \"testtype\": \"functional\"}, {\"input\": \"2\\n\", \"output\": \"4\\n\", \"testtype\": \"stdin\"}]",
        "metadata": "{\"func_name\": \"addAll\"}"
    })).unwrap();
    let mut ctx = Context::default();
    ctx.answer.code = Some("import sys\nclass Solution:\n    def addAll(self, xs, k):\n        return [x + k for x in xs]\nif __name__ == '__main__':\n    print(int(input()) * 2)\n".into());
    let v = verifier.verify(&rollout, &mut ctx).await;
    assert_eq!((v.outcome, v.score), (Outcome::Passed, 1.0), "{v:?}");
}

#[tokio::test]
async fn worker_processes_give_the_same_reports_and_survive_cancellation() {
    let config = SandboxConfig {
        engine: verdict::sandbox::EngineConfig {
            workers: Some(2),
            max_instances: 1,
            worker_exe: Some(env!("CARGO_BIN_EXE_verdict").into()),
            ..Default::default()
        },
        ..SandboxConfig::default()
    };
    let pool = Sandbox::new(&config).expect("a sandbox with worker processes");
    let t = tests(json!([
        {"kind": "call", "fn": "f", "args": [2], "expected": 4},
        {"kind": "assert", "code": "assert f(3) == 6"},
        {"kind": "stdio", "stdin": "5\n", "stdout": "10\n"},
    ]));
    let program =
        "def f(x):\n    return x * 2\nif __name__ == '__main__':\n    print(f(int(input())))\n";
    for (program, passed) in [(program, 3), ("def f(x):\n    return x + 2\n", 1)] {
        let job = RunJob {
            id: "workers",
            program,
            setup: None,
            judge_setup: None,
            tests: &t,
            limits: None,
            stop_on_failure: false,
        };
        let there = pool.run(&job).await.expect("the worker answers");
        let here = shared().run(&job).await.unwrap();
        assert_eq!(there.tests.passed, passed, "{there:#?}");
        assert_eq!(there.outcome, here.outcome);
        assert_eq!(there.fuel, here.fuel, "fuel is the same in a worker");
        assert_eq!(there.tests.results.len(), here.tests.results.len());
    }
    // A run whose future is dropped is cancelled in its worker, which then serves the next run
    // (each worker has a single instance slot, so a still-running loop would block it).
    let forever = tests(json!([{"kind": "stdio", "stdin": "", "stdout": ""}]));
    let job = RunJob {
        id: "forever",
        program: "while True:\n    pass\n",
        setup: None,
        judge_setup: None,
        tests: &forever,
        limits: None,
        stop_on_failure: false,
    };
    for _ in 0..2 {
        let r = tokio::time::timeout(std::time::Duration::from_millis(200), pool.run(&job)).await;
        assert!(r.is_err(), "still running after 200 ms");
    }
    let ok = RunJob {
        id: "after",
        program: "print(1)\n",
        setup: None,
        judge_setup: None,
        tests: &tests(json!([{"kind": "stdio", "stdin": "", "stdout": "1\n"}])),
        limits: None,
        stop_on_failure: false,
    };
    for _ in 0..2 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), pool.run(&ok))
            .await
            .expect("the workers are free again")
            .unwrap();
        assert_eq!(r.outcome, Outcome::Passed);
    }
}

/// The pids of this process's `verdict sandbox-worker` children whose configuration has
/// `seed` (a marker: tests run in parallel and may have workers of their own).
pub(crate) fn worker_pids(seed: u64) -> Vec<u32> {
    let marker = format!("\"seed\":{seed}");
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let path = entry.path();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1));
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(path.join("environ")).unwrap_or_default();
        if ppid == Some(me.as_str())
            && String::from_utf8_lossy(&cmdline).contains("sandbox-worker")
            && String::from_utf8_lossy(&environ).contains(&marker)
        {
            if let Ok(pid) = entry.file_name().to_string_lossy().parse() {
                pids.push(pid);
            }
        }
    }
    pids
}

#[tokio::test]
async fn a_worker_that_dies_fails_its_run_and_is_replaced() {
    let config = SandboxConfig {
        engine: verdict::sandbox::EngineConfig {
            workers: Some(1),
            worker_exe: Some(env!("CARGO_BIN_EXE_verdict").into()),
            ..Default::default()
        },
        limits: verdict::sandbox::LimitsConfig {
            seed: Some(424_242),
            ..Default::default()
        },
        ..SandboxConfig::default()
    };
    let pool = Sandbox::new(&config).expect("a sandbox with a worker process");
    let t = tests(json!([{"kind": "stdio", "stdin": "", "stdout": "1\n"}]));
    let job = |program: &'static str| RunJob {
        id: "dies",
        program,
        setup: None,
        judge_setup: None,
        tests: &t,
        limits: None,
        stop_on_failure: false,
    };
    assert_eq!(
        pool.run(&job("print(1)\n")).await.unwrap().outcome,
        Outcome::Passed
    );
    let before = worker_pids(424_242);
    assert_eq!(before.len(), 1, "one worker: {before:?}");
    // Kill the worker in the middle of a run: the run fails with a worker error, not a hang.
    let looping = job("while True:\n    pass\n");
    let run = pool.run(&looping);
    let kill = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        std::process::Command::new("kill")
            .args(["-9", &before[0].to_string()])
            .status()
            .unwrap();
    };
    let (result, ()) = tokio::join!(
        tokio::time::timeout(std::time::Duration::from_secs(10), run),
        kill
    );
    let err = result.expect("no hang").expect_err("the run failed");
    assert!(err.to_string().contains("worker"), "{err}");
    // The next run starts a new worker and passes.
    assert_eq!(
        pool.run(&job("print(1)\n")).await.unwrap().outcome,
        Outcome::Passed
    );
    let after = worker_pids(424_242);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "a new worker");
}

#[tokio::test]
async fn every_stdlib_module_wasi_supports_imports() {
    // The modules that cannot work in the sandbox, and why. Everything else in
    // `sys.stdlib_module_names` must import in a candidate's program. (In eight rollouts: the
    // first import of a module not in the snapshot runs its bytecode, which takes time.)
    let denied = [
        // Needs an OS feature the sandbox denies on purpose, or one WASI lacks.
        "_ctypes",
        "ctypes",
        "_multiprocessing",
        "multiprocessing",
        "_posixsubprocess",
        "subprocess",
        "fcntl",
        "grp",
        "pwd",
        "resource",
        "termios",
        "tty",
        "pty",
        "mmap",
        "syslog",
        "_socket",
        "socket",
        "select",
        "selectors",
        "_ssl",
        "ssl",
        "_curses",
        "curses",
        "_curses_panel",
        "readline",
        "_dbm",
        "_gdbm",
        "dbm",
        "_sqlite3",
        "sqlite3",
        "_tkinter",
        "tkinter",
        "turtle",
        "turtledemo",
        "idlelib",
        "ensurepip",
        "venv",
        // Windows or macOS only.
        "_winapi",
        "_wmi",
        "msvcrt",
        "nt",
        "winreg",
        "winsound",
        "_overlapped",
        "_scproxy",
        "_msi",
        "msilib",
        "_android_support",
        "_apple_support",
        "_ios_support",
        // Subinterpreters need threads, which this WASI build lacks.
        "_interpqueues",
        "_interpreters",
        "_interpchannels",
        // Reads time-zone data from the filesystem when imported (and its C part is not built).
        "zoneinfo",
        "_zoneinfo",
        // C libraries this CPython build for WASI does not include (the pure-Python fallbacks
        // of `hashlib` and `uuid` import and work).
        "_bz2",
        "bz2",
        "_lzma",
        "lzma",
        "_zstd",
        "_hashlib",
        "_uuid",
        // Shared memory and attaching to other processes.
        "_posixshmem",
        "_remote_debugging",
        // Interactive help: its topic data is left out of the snapshot.
        "pydoc",
        "pydoc_data",
    ];
    let runs = (0..8).map(|i| async move {
        let program = format!(
            "import importlib, sys\nbad = []\nfor name in sorted(sys.stdlib_module_names)[{i}::8]:\n    try:\n        importlib.import_module(name)\n    except BaseException:\n        bad.append(name)\n"
        );
        let code = format!(
            "denied = set({denied:?})\nassert set(bad) <= denied, sorted(set(bad) - denied)"
        );
        let t = tests(json!([{"kind": "assert", "code": code}]));
        run(&program, &t).await
    });
    let failures: Vec<String> = futures::future::join_all(runs)
        .await
        .into_iter()
        .filter(|r| r.outcome != Outcome::Passed)
        .map(|r| r.message.unwrap_or_default())
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn a_process_exit_in_one_test_does_not_fail_the_tests_after_it() {
    let program =
        "import os\ndef add(a, b):\n    if a == 2:\n        os._exit(0)\n    return a + b\n";
    let t = tests(json!([
        {"kind": "call", "fn": "add", "args": [1, 2], "expected": 3},
        {"kind": "assert", "code": "assert add(2, 2) == 4"},
        {"kind": "call", "fn": "add", "args": [3, 3], "expected": 6},
        {"kind": "assert", "code": "assert add(4, 4) == 8"},
    ]));
    let r = run(program, &t).await;
    assert_eq!(r.tests.passed, 3, "{r:#?}");
    assert_eq!(r.tests.results[1].outcome, Outcome::RuntimeError, "{r:#?}");
}

#[tokio::test]
async fn deep_and_big_values_cross_or_fail_cleanly() {
    // A trie 46 dicts deep is right; 10,000 levels is refused without harm to the host.
    let program =
        "def trie(n):\n    t = {}\n    for _ in range(n):\n        t = {'a': t}\n    return t\n\
        def deep(n):\n    v = []\n    for _ in range(n):\n        v = [v]\n    return v\n";
    let mut expected = json!({});
    for _ in 0..46 {
        expected = json!({ "a": expected });
    }
    let t = tests(json!([
        {"kind": "call", "fn": "trie", "args": [46], "expected": expected},
        {"kind": "assert", "code": "t = trie(46)\nfor _ in range(46):\n    t = t['a']\nassert t == {}"},
        {"kind": "call", "fn": "deep", "args": [10000], "expected": []},
        {"kind": "call", "fn": "trie", "args": [2], "expected": {"a": {"a": {}}}},
    ]));
    let r = run(program, &t).await;
    let outcomes: Vec<_> = r.tests.results.iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Passed,
            Outcome::Passed,
            Outcome::Failed,
            Outcome::Passed
        ],
        "{r:#?}"
    );
}

#[tokio::test]
async fn timing_tests_cannot_use_work_done_in_uncounted_tests() {
    // The program caches its answer in a module that survives between tests of one instance;
    // timing tests run in an instance of their own, so the counted test pays for the work.
    let cached = "import sys, types\ndef slow(n):\n    c = sys.modules.setdefault('_c', types.ModuleType('_c'))\n    if hasattr(c, 'v'):\n        return c.v\n    s = 0\n    for i in range(n):\n        s += i * i % 7\n    c.v = s\n    return s\n";
    let honest =
        "def slow(n):\n    s = 0\n    for i in range(n):\n        s += i * i % 7\n    return s\n";
    let t = tests(json!([
        {"kind": "assert", "code": "assert slow(20000) == 39998"},
        {"kind": "assert", "code": "assert slow(20000) == 39998", "timing": true},
    ]));
    let (c, h) = (run(cached, &t).await, run(honest, &t).await);
    assert_eq!(
        (c.outcome, h.outcome),
        (Outcome::Passed, Outcome::Passed),
        "{c:#?} {h:#?}"
    );
    let (cf, hf) = (c.tests.results[1].fuel, h.tests.results[1].fuel);
    assert!(cf * 10 >= hf * 9, "cached {cf} vs honest {hf}");
}

#[tokio::test]
async fn a_program_that_recovers_from_the_memory_cap_is_still_judged_on_its_answer() {
    let program = "def add(a, b):\n    try:\n        x = bytearray(1 << 30)\n    except MemoryError:\n        pass\n    return 0\n";
    let t = tests(json!([{"kind": "call", "fn": "add", "args": [1, 2], "expected": 3}]));
    let r = run(program, &t).await;
    assert_eq!(r.tests.passed, 0, "{r:#?}");
    assert_eq!(r.outcome, Outcome::Failed, "{r:#?}");
    let right = program.replace("return 0", "return a + b");
    assert_eq!(run(&right, &t).await.outcome, Outcome::Passed);
}

/// The message of test `i` of a run of `program` under rollout id `id`.
async fn message_of(id: &str, program: &str, t: &[TestCase], i: usize) -> String {
    let job = RunJob {
        id,
        program,
        setup: None,
        judge_setup: None,
        tests: t,
        limits: None,
        stop_on_failure: false,
    };
    let report = shared().run(&job).await.expect("the sandbox runs");
    report.tests.results[i].message.clone().unwrap_or_default()
}

#[tokio::test]
async fn randomness_and_clocks_depend_only_on_the_rollout() {
    // Each value is printed and compared with "no": the failure message shows it.
    let program = "import os, time, uuid, secrets\nprint(os.urandom(8).hex(), uuid.uuid4(), secrets.token_hex(4), time.time(), time.perf_counter())\n";
    let stdio = json!({"kind": "stdio", "stdin": "", "stdout": "no\n"});
    let alone = tests(json!([stdio]));
    let after = tests(json!([{"kind": "stdio", "stdin": "", "stdout": "x\n"}, stdio]));
    let first = message_of("rollout-a", program, &alone, 0).await;
    assert!(first.contains("1735689600"), "{first}");
    assert_eq!(message_of("rollout-a", program, &alone, 0).await, first);
    assert_eq!(message_of("rollout-a", program, &after, 1).await, first);
    assert_ne!(message_of("rollout-b", program, &alone, 0).await, first);
}

#[tokio::test]
async fn a_test_sees_neither_the_programs_state_nor_the_judges_settings_from_earlier_tests() {
    // A program that answers by counting its calls in `sys` gets each test's first call.
    let counting = "import sys\n\ndef f(x):\n    n = getattr(sys, 'calls', 0)\n    sys.calls = n + 1\n    return x if n == 0 else -1\n";
    let r = run(
        counting,
        &tests(json!([
            {"kind": "call", "fn": "f", "args": [1], "expected": 1},
            {"kind": "call", "fn": "f", "args": [2], "expected": 2},
            {"kind": "assert", "code": "assert f(3) == 3"},
            {"kind": "assert", "code": "assert f(4) == 4"},
        ])),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
    // A test's decimal precision, recursion limit and int digit limit end with it.
    let r = run(
        "def f():\n    return 1\n",
        &tests(json!([
            {"kind": "assert", "code": "import decimal, sys\ndecimal.getcontext().prec = 3\nsys.setrecursionlimit(50)\nsys.set_int_max_str_digits(640)\nassert f() == 1"},
            {"kind": "assert", "code": "from decimal import Decimal\nassert str(Decimal(1) / Decimal(3)) == '0.' + '3' * 28"},
            {"kind": "assert", "code": "def depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\nassert depth(200) == 200 and len(str(10 ** 5000)) == 5001 and f() == 1"},
        ])),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:#?}");
}

/// Scores `rollout` with the `tests` verifier of the shared sandbox (5 s wall-clock cap) and
/// `code` as the answer.
async fn verify_tests(rollout: &Rollout, code: &str) -> (verdict::Verdict, Context) {
    let verifier = TestsConfig::default()
        .build(&BuildContext::new(Some(shared())))
        .unwrap();
    let mut ctx = Context::default();
    ctx.answer.code = Some(code.into());
    let v = verifier.verify(rollout, &mut ctx).await;
    (v, ctx)
}

#[tokio::test]
async fn a_datasets_time_limit_is_the_runs_budget() {
    let spin = "while True:\n    pass\n";
    let message = |ctx: &Context| {
        let results = &ctx.tests.as_ref().unwrap().results;
        results[0].message.clone().unwrap_or_default()
    };
    // TACO: `time_limit` as text, one stdio test → a 1 s budget (not the 5 s cap).
    let taco: Rollout = serde_json::from_value(json!({
        "id": "taco-1", "completion": "", "question": "Print nothing, fast.",
        "input_output": "{\"inputs\": [\"\"], \"outputs\": [\"\"]}",
        "time_limit": "1 second", "memory_limit": "256 megabytes"
    }))
    .unwrap();
    let start = std::time::Instant::now();
    let (v, ctx) = verify_tests(&taco, spin).await;
    assert_eq!(v.outcome, Outcome::Timeout, "{v:?}");
    assert_eq!(v.details["time_limit_ms"], 1000, "{}", v.details);
    assert!(message(&ctx).contains("1000 ms"), "{}", message(&ctx));
    assert!(start.elapsed().as_millis() < 4_000, "{:?}", start.elapsed());
    assert_eq!(ctx.resolved.unwrap().limits.unwrap().time_ms, Some(1000));

    // CodeContests: `{seconds, nanos}` per test, two tests → 2 × 300 ms.
    let cc: Rollout = serde_json::from_value(json!({
        "id": "cc-1", "completion": "",
        "inputs": ["", ""], "outputs": ["", ""],
        "time_limit": {"seconds": 0, "nanos": 300_000_000}
    }))
    .unwrap();
    let (v, ctx) = verify_tests(&cc, spin).await;
    assert_eq!(v.outcome, Outcome::Timeout, "{v:?}");
    assert!(message(&ctx).contains("600 ms"), "{}", message(&ctx));

    // The rollout's own limit wins over the data's; a right program passes within the data's.
    let mut own = cc.clone();
    own.limits = Some(verdict::Limits {
        time_ms: Some(200),
        ..Default::default()
    });
    let (v, ctx) = verify_tests(&own, spin).await;
    assert!(message(&ctx).contains("200 ms"), "{}", message(&ctx));
    assert!(v.details.get("time_limit_ms").is_none(), "{}", v.details);
    let (v, _) = verify_tests(&taco, "print(end='')\n").await;
    assert_eq!(v.outcome, Outcome::Passed, "{v:?}");
}

#[tokio::test]
async fn a_tolerance_stated_in_the_prompt_judges_expected_values_from_data() {
    let rollout = |prompt: &str| -> Rollout {
        serde_json::from_value(json!({
            "id": "tol", "completion": "",
            "prompt": prompt,
            "tests": [
                {"kind": "stdio", "stdin": "", "stdout": "12.3456789\n"},
                {"kind": "call", "fn": "g", "args": [], "expected": 12.3456789},
                {"kind": "assert", "code": "assert g() == 12.3456789"}
            ]
        }))
        .unwrap()
    };
    let program = "def g():\n    return 12.34\n\nprint(g())\n";
    let stated = "Print g. Your answer is considered correct if its absolute or relative \
                  error does not exceed $10^{-2}$.";
    let (v, ctx) = verify_tests(&rollout(stated), program).await;
    let passed: Vec<bool> = ctx
        .tests
        .unwrap()
        .results
        .iter()
        .map(|r| r.passed)
        .collect();
    // The data's values within 10^-2; the assert's literal compares with its own `==`.
    assert_eq!(passed, [true, true, false], "{v:?}");
    assert_eq!(v.details["tolerance"]["rel_tol"], 0.01, "{}", v.details);
    assert_eq!(v.details["tolerance"]["abs_tol"], 0.01, "{}", v.details);
    assert_eq!(v.details["tolerance"]["from"], "prompt", "{}", v.details);
    assert_eq!(v.details["tolerance"]["tests"], 2, "{}", v.details);
    assert!(v.details["tolerance"]["stated"]
        .as_str()
        .unwrap()
        .starts_with("absolute or relative error"));

    // Without the statement, the default tolerance (1e-6) fails both.
    let (v, ctx) = verify_tests(&rollout("Print g."), program).await;
    let passed: Vec<bool> = ctx
        .tests
        .unwrap()
        .results
        .iter()
        .map(|r| r.passed)
        .collect();
    assert_eq!(passed, [false, false, false], "{v:?}");
    assert!(v.details.get("tolerance").is_none());

    // A rollout that sets its own tolerance keeps it.
    let mut own = rollout(stated);
    own.compare = Some(verdict::Compare {
        abs_tol: Some(1e-9),
        ..Default::default()
    });
    let (v, ctx) = verify_tests(&own, program).await;
    let passed: Vec<bool> = ctx
        .tests
        .unwrap()
        .results
        .iter()
        .map(|r| r.passed)
        .collect();
    assert_eq!(passed, [false, false, false], "{v:?}");
    assert!(v.details.get("tolerance").is_none());
}

#[test]
fn metrics_read_the_sandbox_load_at_scrape_time() {
    let metrics = verdict::metrics::Metrics::new();
    let before = metrics.render();
    assert!(before.contains("verdict_sandbox_slots 0"), "{before}");
    let sandbox = shared();
    metrics.watch_sandbox(sandbox);
    let load = sandbox.load();
    let text = metrics.render();
    assert!(
        text.contains(&format!("verdict_sandbox_slots {}", load.slots)),
        "{text}"
    );
    assert!(load.slots > 0);
    let cached = if load.component_cached { "hit" } else { "miss" };
    assert!(
        text.contains(&format!(
            r#"verdict_cache_lookups_total{{cache="component",result="{cached}"}}"#
        )),
        "{text}"
    );
}
