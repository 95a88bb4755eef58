//! Hostile programs (fixtures/hostile/): none may earn a pass, each gets the right outcome,
//! and the sandbox serves a healthy run right after each.

use serde_json::json;
use verdict::{Limits, Outcome};

use crate::sandbox::{run, run_with, tests};

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/hostile/{name}.py", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn healthy() {
    let t = tests(json!([
        {"kind": "call", "fn": "add", "args": [1, 2], "expected": 3},
        {"kind": "stdio", "stdin": "", "stdout": "ok\n"},
    ]));
    let r = run("def add(a, b):\n    return a + b\nprint('ok')\n", &t).await;
    assert_eq!(
        r.outcome,
        Outcome::Passed,
        "healthy run after a hostile one: {r:#?}"
    );
}

/// Runs fixture `name` against `tests` and checks it earns nothing, with `outcome`.
async fn hostile(
    name: &str,
    t: serde_json::Value,
    outcome: Outcome,
    limits: Option<Limits>,
) -> verdict::sandbox::RunReport {
    crate::sandbox::shared();
    let start = std::time::Instant::now();
    let r = run_with(&fixture(name), &tests(t), limits).await;
    assert_eq!(r.tests.passed, 0, "{name} passed a test: {r:#?}");
    assert_eq!(r.pass_fraction(), 0.0, "{name}");
    assert_eq!(r.outcome, outcome, "{name}: {r:#?}");
    assert!(
        start.elapsed().as_secs() < 10,
        "{name} took {:?}",
        start.elapsed()
    );
    healthy().await;
    r
}

fn assert_add() -> serde_json::Value {
    json!([{"kind": "assert", "code": "assert add(1, 2) == 3"}, {"kind": "assert", "code": "assert add(2, 2) == 4"}])
}

fn call_add() -> serde_json::Value {
    json!([{"kind": "call", "fn": "add", "args": [1, 2], "expected": 3}])
}

fn stdio3() -> serde_json::Value {
    json!([{"kind": "stdio", "stdin": "", "stdout": "3\n"}])
}

const SHORT: Option<Limits> = Some(Limits {
    time_ms: Some(1_000),
    memory_mb: None,
    output_kb: None,
});

#[tokio::test]
async fn sys_exit_at_top_level() {
    hostile("sys_exit_top", assert_add(), Outcome::RuntimeError, None).await;
}

#[tokio::test]
async fn sys_exit_inside_the_function() {
    hostile(
        "sys_exit_in_function",
        call_add(),
        Outcome::RuntimeError,
        None,
    )
    .await;
    hostile(
        "sys_exit_in_function",
        assert_add(),
        Outcome::RuntimeError,
        None,
    )
    .await;
}

#[tokio::test]
async fn os_exit_zero() {
    hostile("os_exit", assert_add(), Outcome::RuntimeError, None).await;
    hostile(
        "os_exit_in_function",
        call_add(),
        Outcome::RuntimeError,
        None,
    )
    .await;
}

#[tokio::test]
async fn raise_system_exit() {
    hostile(
        "raise_systemexit",
        assert_add(),
        Outcome::RuntimeError,
        None,
    )
    .await;
}

#[tokio::test]
async fn atexit_hook_that_exits_zero() {
    hostile("atexit_exit", assert_add(), Outcome::Failed, None).await;
}

#[tokio::test]
async fn patched_excepthook() {
    hostile("excepthook", call_add(), Outcome::RuntimeError, None).await;
}

#[tokio::test]
async fn eq_that_always_returns_true() {
    hostile("eq_always_true", assert_add(), Outcome::Failed, None).await;
    hostile("eq_always_true", call_add(), Outcome::Failed, None).await;
    hostile("int_subclass_eq", assert_add(), Outcome::Failed, None).await;
    hostile("int_subclass_eq", call_add(), Outcome::Failed, None).await;
    let humaneval = json!([{"kind": "assert", "code": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert not (candidate(1, 2) != 3)\n\ncheck(add)\n"}]);
    hostile("eq_always_true", humaneval, Outcome::Failed, None).await;
    let approx = json!([{"kind": "assert", "code": "assert abs(add(1, 2) - 3) < 1e-9"}]);
    hostile("sub_always_zero", approx, Outcome::Failed, None).await;
}

#[tokio::test]
async fn patched_builtins() {
    let t =
        json!([{"kind": "assert", "code": "assert abs(add(1, 2) - 3) < 1e-9 and len([1]) == 1"}]);
    hostile("patched_builtins", t, Outcome::Failed, None).await;
}

#[tokio::test]
async fn builtins_the_harness_could_use_are_patched() {
    // Every test of the rollout runs in the instance the program patched: the later tests too
    // must be judged by the harness's own captured builtins.
    let t = json!([
        {"kind": "assert", "code": "assert add(1, 2) == 3"},
        {"kind": "assert", "code": "assert add(2, 2) == 4 and add(0, 0) == 0"},
        {"kind": "call", "fn": "add", "args": [1, 2], "expected": 3},
        {"kind": "call", "fn": "missing", "args": [], "expected": 3},
    ]);
    hostile("patched_harness_builtins", t, Outcome::Failed, None).await;
}

#[tokio::test]
async fn printing_pass_markers() {
    hostile(
        "pass_markers",
        json!([{"kind": "stdio", "stdin": "", "stdout": "42\n"}]),
        Outcome::Failed,
        None,
    )
    .await;
    hostile("pass_markers", assert_add(), Outcome::RuntimeError, None).await;
}

#[tokio::test]
async fn printing_a_prefix_of_the_expected_output() {
    let t = json!([{"kind": "stdio", "stdin": "", "stdout": "1\n2\n3\n"}]);
    let r = hostile("expected_prefix", t, Outcome::Failed, None).await;
    assert!(r.message.unwrap().contains("expected 3 lines, got 2"));
}

#[tokio::test]
async fn reading_the_filesystem_and_environment() {
    let r = hostile(
        "read_filesystem",
        json!([{"kind": "stdio", "stdin": "", "stdout": "x\n"}]),
        Outcome::RuntimeError,
        None,
    )
    .await;
    assert!(!r.message.unwrap_or_default().contains("root:"));
    hostile(
        "environment",
        json!([{"kind": "stdio", "stdin": "", "stdout": "/root\n"}]),
        Outcome::RuntimeError,
        None,
    )
    .await;
}

#[tokio::test]
async fn infinite_loop() {
    hostile("infinite_loop", stdio3(), Outcome::Timeout, SHORT).await;
}

#[tokio::test]
async fn memory_bomb() {
    hostile("memory_bomb", stdio3(), Outcome::MemoryLimit, None).await;
}

#[tokio::test]
async fn output_flood() {
    hostile("output_flood", stdio3(), Outcome::OutputLimit, None).await;
}

#[tokio::test]
async fn deep_recursion() {
    // Under the default limit: RecursionError. With the limit lifted, the frames exhaust the
    // memory cap first (CPython 3.14 keeps Python frames on its own heap, not the wasm stack).
    let r = hostile(
        "recursion_default_limit",
        stdio3(),
        Outcome::RuntimeError,
        None,
    )
    .await;
    assert!(r.message.unwrap().contains("RecursionError"));
    hostile("deep_recursion", stdio3(), Outcome::MemoryLimit, None).await;
}

#[tokio::test]
async fn fork_threads_sockets_system_subprocess() {
    for name in ["fork", "threads", "sockets", "os_system", "subprocess_run"] {
        hostile(name, stdio3(), Outcome::RuntimeError, None).await;
    }
}

#[tokio::test]
async fn long_sleep() {
    let start = std::time::Instant::now();
    hostile("long_sleep", stdio3(), Outcome::Timeout, SHORT).await;
    assert!(start.elapsed().as_millis() < 3_000, "{:?}", start.elapsed());
}

#[tokio::test]
async fn trace_hooks_are_gone() {
    hostile("frame_tamper", assert_add(), Outcome::RuntimeError, None).await;
}

#[tokio::test]
async fn many_hostile_runs_at_once_leave_the_service_healthy() {
    let names = [
        "infinite_loop",
        "memory_bomb",
        "output_flood",
        "long_sleep",
        "deep_recursion",
        "eq_always_true",
    ];
    let runs = names.iter().map(|n| async move {
        let src = fixture(n);
        run_with(&src, &tests(stdio3()), SHORT).await
    });
    let reports = futures::future::join_all(runs).await;
    assert!(reports.iter().all(|r| r.tests.passed == 0), "{reports:#?}");
    healthy().await;
}
