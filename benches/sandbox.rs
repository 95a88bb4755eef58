//! Sandbox speed, with in-run baselines.
//!
//! ```text
//! cargo bench --bench sandbox                  # latency + corpus throughput + baselines
//! BENCH_RSS_RUNS=100000 cargo bench --bench sandbox   # also: RSS over many runs
//! ```
//!
//! 1. Latency: a trivial program (one call test), end to end through `Sandbox::run`, one at a
//!    time: median, p90 and p99, with instances made ahead (`prewarm`, the default) and, as the
//!    in-run baseline, instantiating on demand (`prewarm = 0`).
//!    Instance cost: CPU time of this thread per trivial rollout made on demand, one instance
//!    (a call test) and two (an assert test: candidate and judge), as instances per CPU-second;
//!    and many-test rollouts (40 call or assert tests), whose marginal CPU time per test is the
//!    price of a fresh candidate instance per test (tests cannot see each other).
//!    Compute: fixed pure-Python kernels (loop, dict/str, recursion) in the sandbox against the
//!    host's `python3`, CPU time of the running thread on both sides (robust to a busy machine),
//!    best of interleaved rounds, as a slowdown factor.
//! 2. Throughput on fixtures/problems/problems.jsonl (≥150 problems, a right and a wrong
//!    solution each): the sandbox on a multi-thread runtime with one worker per core, stopping
//!    at a program's first failing test as the baselines do and, separately, running every test;
//!    then, in the same run, the unsandboxed fork harness and a python3 subprocess per program
//!    (benches/baseline.py, with as many workers). Prints programs/s and the ratios, and how
//!    often the verdicts agree.
//! 3. Optional: RSS every 10% of `BENCH_RSS_RUNS` trivial runs.
#![allow(clippy::print_stdout)]

use std::process::Command;
use std::time::Instant;

use futures::StreamExt;
use serde::Deserialize;
use verdict::sandbox::{RunJob, Sandbox, SandboxConfig};
use verdict::{Outcome, TestCase};

#[derive(Deserialize)]
struct Problem {
    id: String,
    right: String,
    wrong: String,
    tests: Vec<TestCase>,
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

/// CPU time this thread has run, in milliseconds.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// The pure-Python kernels timed against the host's `python3` (each defines `f()`).
const KERNELS: &[(&str, &str)] = &[
    (
        "loop (s += i*i % 7, 2M)",
        "def f():\n    s = 0\n    for i in range(2000000):\n        s += i * i % 7\n    return s\n",
    ),
    (
        "dict/str (200k updates)",
        "def f():\n    d = {}\n    for i in range(200000):\n        k = 'k' + str(i % 5000)\n        d[k] = d.get(k, 0) + len(k)\n    return sum(d.values())\n",
    ),
    (
        "recursion (fib 27)",
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\ndef f():\n    return fib(27)\n",
    ),
];

/// Sandbox/host CPU-time ratio of each kernel: the best of `rounds` interleaved rounds. The
/// sandbox side is one call test (load + call, all on this thread); the host side is `f()` in a
/// `python3` started once per round, timed with `time.thread_time`.
fn kernels(rt: &tokio::runtime::Runtime, sandbox: &Sandbox, rounds: usize) {
    let tests: Vec<TestCase> =
        serde_json::from_str(r#"[{"kind": "call", "fn": "f", "args": [], "expected": 0}]"#)
            .unwrap();
    let mut ratios = Vec::new();
    for (name, program) in KERNELS {
        let job = RunJob {
            id: "kernel",
            program,
            setup: None,
            judge_setup: None,
            tests: &tests,
            limits: None,
            stop_on_failure: false,
        };
        let host_script = format!(
            "import time\n{program}\nf()\nt = time.thread_time()\nf()\nprint((time.thread_time() - t) * 1e3)\n"
        );
        let (mut sandbox_best, mut host_best) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..rounds {
            let c = thread_cpu_ms();
            rt.block_on(sandbox.run(&job)).unwrap();
            sandbox_best = sandbox_best.min(thread_cpu_ms() - c);
            let Ok(out) = Command::new("python3").args(["-c", &host_script]).output() else {
                println!("kernels: python3 not available");
                return;
            };
            if let Ok(ms) = String::from_utf8_lossy(&out.stdout).trim().parse::<f64>() {
                host_best = host_best.min(ms);
            }
        }
        let ratio = sandbox_best / host_best;
        ratios.push(ratio);
        println!(
            "  kernel {name:<24} sandbox {sandbox_best:7.1} ms CPU, host python3 {host_best:6.1} ms \
             — slowdown {ratio:.2}×"
        );
    }
    let geo = ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64;
    println!(
        "  pure-Python compute: geometric-mean slowdown {:.2}× the host's python3 (best of {rounds} rounds)",
        geo.exp()
    );
}

/// CPU time of this thread per rollout of `job`, run one at a time on a sandbox that makes
/// instances on demand: the median over `runs`.
fn rollout_cpu(
    rt: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    job: &RunJob<'_>,
    runs: usize,
) -> f64 {
    let mut cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let c = thread_cpu_ms();
        let r = rt.block_on(sandbox.run(job)).unwrap();
        cpu.push(thread_cpu_ms() - c);
        assert_eq!(r.outcome, Outcome::Passed);
    }
    cpu.sort_by(f64::total_cmp);
    percentile(&cpu, 0.5)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers: usize = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cores);
    let sandbox = Sandbox::new(&SandboxConfig::default()).expect("sandbox");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();

    // 1. Latency of a trivial program.
    let trivial_tests: Vec<TestCase> =
        serde_json::from_str(r#"[{"kind": "call", "fn": "f", "args": [], "expected": 1}]"#)
            .unwrap();
    let trivial = RunJob {
        id: "trivial",
        program: "def f():\n    return 1\n",
        setup: None,
        judge_setup: None,
        tests: &trivial_tests,
        limits: None,
        stop_on_failure: false,
    };
    let trivial_runs: usize = std::env::var("BENCH_TRIVIAL_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    // Without instances made ahead (every rollout waits for its instantiation), then with.
    let cold = Sandbox::new(&SandboxConfig {
        engine: verdict::sandbox::EngineConfig {
            prewarm: 0,
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let (cold_median, cold_p90, _, _) = trivial_latency(&rt, &cold, &trivial, trivial_runs);
    // Instance cost: the same rollout (one instance) and an assert rollout (two), made on
    // demand, in CPU time of this thread (the run's future is driven here).
    let assert_tests: Vec<TestCase> =
        serde_json::from_str(r#"[{"kind": "assert", "code": "assert f() == 1"}]"#).unwrap();
    let trivial_assert = RunJob {
        tests: &assert_tests,
        ..trivial
    };
    let one = rollout_cpu(&rt, &cold, &trivial, 200);
    let two = rollout_cpu(&rt, &cold, &trivial_assert, 200);
    // Many tests per rollout: every test gets a fresh candidate instance (tests cannot see each
    // other), so a rollout's cost grows by one instance per test; measured as the marginal CPU
    // time of a test against the one-test rollouts above.
    let many_calls: Vec<TestCase> = (0..40).map(|_| trivial_tests[0].clone()).collect();
    let many_asserts: Vec<TestCase> = (0..40).map(|_| assert_tests[0].clone()).collect();
    let calls40 = rollout_cpu(
        &rt,
        &cold,
        &RunJob {
            tests: &many_calls,
            ..trivial
        },
        30,
    );
    let asserts40 = rollout_cpu(
        &rt,
        &cold,
        &RunJob {
            tests: &many_asserts,
            ..trivial
        },
        30,
    );
    drop(cold);
    // Worker processes (one per core) instead of threads of this process: `verdict score`
    // and `verdict serve` run rollouts this way.
    let processes = Sandbox::new(&SandboxConfig {
        engine: verdict::sandbox::EngineConfig {
            workers: Some(workers as u32),
            worker_exe: Some(env!("CARGO_BIN_EXE_verdict").into()),
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .expect("sandbox with workers");
    let (median, p90, p99, fuel) = trivial_latency(&rt, &sandbox, &trivial, trivial_runs);
    println!(
        "many tests per rollout (a fresh candidate instance per test, on demand): 40 call tests \
         {calls40:.2} ms CPU per rollout, {:.3} ms per extra test; 40 assert tests {asserts40:.2} \
         ms, {:.3} ms per extra test (one test: {one:.3} / {two:.3} ms)",
        (calls40 - one) / 39.0,
        (asserts40 - two) / 39.0
    );
    println!(
        "trivial program, end to end: median {median:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms \
         ({trivial_runs} runs, {fuel} fuel total; prewarm {})",
        sandbox.config().engine.prewarm
    );
    println!(
        "  same, instantiating on demand (prewarm 0): median {cold_median:.3} ms, p90 {cold_p90:.3} ms \
         — ratio {:.2}",
        median / cold_median
    );
    let (proc_median, proc_p90, proc_p99, _) =
        trivial_latency(&rt, &processes, &trivial, trivial_runs);
    println!(
        "  same, in {workers} worker processes (what `verdict score`/`serve` do): median \
         {proc_median:.3} ms, p90 {proc_p90:.3} ms, p99 {proc_p99:.3} ms — ratio {:.2}",
        proc_median / median
    );
    println!(
        "instance cost (made on demand, CPU of the running thread, median of 200): a call \
         rollout (1 instance) {one:.2} ms, an assert rollout (candidate + judge) {two:.2} ms — \
         ratio {:.2}; {:.0} trivial one-instance rollouts per CPU-second (instances/s per core)",
        two / one,
        1e3 / one
    );
    let kernel_rounds: usize = std::env::var("BENCH_KERNEL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    kernels(&rt, &sandbox, kernel_rounds);

    if std::env::var_os("BENCH_TRIVIAL_ONLY").is_some() {
        rss(&rt, &sandbox, &trivial_tests, workers);
        return;
    }

    // Per test style: where the fuel goes (one right solution of each style, sequentially).
    let corpus_path = format!("{root}/fixtures/problems/problems.jsonl");
    let sample: Vec<serde_json::Value> = std::fs::read_to_string(&corpus_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for style in ["call", "assert", "humaneval", "stdio"] {
        let p = sample.iter().find(|p| p["style"] == style).unwrap();
        let tests: Vec<TestCase> = serde_json::from_value(p["tests"].clone()).unwrap();
        let program = p["right"].as_str().unwrap();
        let job = RunJob {
            id: "style",
            program,
            setup: None,
            judge_setup: None,
            tests: &tests,
            limits: None,
            stop_on_failure: false,
        };
        let mut walls = Vec::new();
        let mut last = None;
        rt.block_on(async {
            for _ in 0..30 {
                let t = Instant::now();
                last = Some(sandbox.run(&job).await.unwrap());
                walls.push(t.elapsed().as_secs_f64() * 1e3);
            }
        });
        walls.sort_by(f64::total_cmp);
        let r = last.unwrap();
        println!(
            "{style:>9}: {} tests, median {:.2} ms per program, candidate fuel {}, overhead fuel {}",
            tests.len(),
            percentile(&walls, 0.5),
            r.fuel,
            r.overhead_fuel
        );
    }

    // 2. Corpus throughput.
    let path = format!("{root}/fixtures/problems/problems.jsonl");
    let problems: Vec<Problem> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let programs: Vec<(String, &str, &[TestCase])> = problems
        .iter()
        .flat_map(|p| {
            [
                (
                    format!("{}-right", p.id),
                    p.right.as_str(),
                    p.tests.as_slice(),
                ),
                (
                    format!("{}-wrong", p.id),
                    p.wrong.as_str(),
                    p.tests.as_slice(),
                ),
            ]
        })
        .collect();
    let tests_total: usize = programs.iter().map(|p| p.2.len()).sum();
    // The corpus through the sandbox: the best of two rounds, in programs/s, and whether each
    // program passed. `stop_on_failure` is what the baselines do (they stop at a program's
    // first failing test); without it every test runs, for per-test results.
    // One pass over the corpus through a sandbox: programs/s and whether each program passed.
    // `stop_on_failure` is what the baselines do (they stop at a program's first failing
    // test); without it every test runs, for per-test results.
    let corpus = |sandbox: &Sandbox, stop_on_failure: bool| -> (f64, Vec<bool>) {
        let start = Instant::now();
        let results = rt.block_on(async {
            futures::stream::iter(programs.iter().map(|(id, program, tests)| {
                let sandbox = sandbox.clone();
                let (id, program, tests) = (id.to_string(), program.to_string(), tests.to_vec());
                // Spawned, so the runs spread over the runtime's worker threads.
                tokio::spawn(async move {
                    let job = RunJob {
                        id: &id,
                        program: &program,
                        setup: None,
                        judge_setup: None,
                        tests: &tests,
                        limits: None,
                        stop_on_failure,
                    };
                    sandbox.run(&job).await.unwrap().outcome == Outcome::Passed
                })
            }))
            .buffered(workers * 4)
            .map(|r| r.unwrap())
            .collect::<Vec<bool>>()
            .await
        });
        (
            programs.len() as f64 / start.elapsed().as_secs_f64(),
            results,
        )
    };
    // One pass of a baseline (benches/baseline.py): programs/s and verdicts.
    let baseline = |mode: &str| -> Option<(f64, Vec<bool>)> {
        let out = Command::new("python3")
            .arg(format!("{root}/benches/baseline.py"))
            .args([mode, &path, &workers.to_string()])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let results = v["results"]
            .as_array()?
            .iter()
            .map(|b| b.as_bool().unwrap_or(false))
            .collect();
        Some((v["per_second"].as_f64()?, results))
    };
    // Rounds interleave every configuration with the fork baseline, so a slow spell of this
    // (shared, noisy) machine hits them alike; each rate is the best of its rounds.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut best = [0.0f64; 5];
    let mut verdicts: Vec<Vec<bool>> = vec![Vec::new(); 5];
    for _ in 0..rounds {
        let passes = [
            Some(corpus(&sandbox, true)),
            Some(corpus(&sandbox, false)),
            Some(corpus(&processes, true)),
            Some(corpus(&processes, false)),
            baseline("fork"),
        ];
        for (i, pass) in passes.into_iter().enumerate() {
            if let Some((rate, results)) = pass {
                best[i] = best[i].max(rate);
                verdicts[i] = results;
            }
        }
    }
    drop(processes);
    let [threads, threads_all, procs, procs_all, fork] = best;
    for (i, name) in [
        (1, "every test run"),
        (2, "worker processes"),
        (3, "processes, every test"),
    ] {
        assert_eq!(verdicts[0], verdicts[i], "same verdicts: {name}");
    }
    println!(
        "corpus: {} problems, {} programs, {} tests ({:.2} tests per program on average); \
         best of {rounds} interleaved rounds",
        problems.len(),
        programs.len(),
        tests_total,
        tests_total as f64 / programs.len() as f64
    );
    println!(
        "sandbox, {workers} threads, stopping at the first failing test like the baselines: \
         {threads:.1} programs/s, {} passed",
        verdicts[0].iter().filter(|b| **b).count()
    );
    println!("sandbox, {workers} threads, every test run (per-test results): {threads_all:.1} programs/s");
    println!(
        "sandbox, {workers} worker processes: {procs:.1} programs/s stopping at the first failure \
         ({:.2}× threads), {procs_all:.1} every test run ({:.2}× threads)",
        procs / threads,
        procs_all / threads_all
    );
    let agree = |results: &[bool]| {
        results
            .iter()
            .zip(&verdicts[0])
            .filter(|(a, b)| a == b)
            .count()
    };
    if verdicts[4].is_empty() {
        println!("      fork baseline: python3 not available or failed");
    } else {
        println!(
            "      fork baseline ({workers} workers): {fork:.1} programs/s — sandbox/fork = {:.2} \
             (every test run {:.2}; worker processes {:.2}, every test run {:.2}); \
             verdicts agree on {}/{}",
            threads / fork,
            threads_all / fork,
            procs / fork,
            procs_all / fork,
            agree(&verdicts[4]),
            verdicts[4].len()
        );
    }
    match baseline("subprocess") {
        Some((rate, results)) => println!(
            "subprocess baseline ({workers} workers, one round): {rate:.1} programs/s — \
             sandbox/subprocess = {:.2}; verdicts agree on {}/{}",
            threads / rate,
            agree(&results),
            results.len()
        ),
        None => println!("subprocess baseline: python3 not available or failed"),
    }

    rss(&rt, &sandbox, &trivial_tests, workers);
}

/// Median, p90 and p99 wall time of `runs` trivial rollouts run one at a time (after 50
/// warm-up runs), and the fuel of one.
fn trivial_latency(
    rt: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    trivial: &RunJob<'_>,
    runs: usize,
) -> (f64, f64, f64, u64) {
    let mut lat = Vec::new();
    let mut fuel = 0;
    rt.block_on(async {
        for i in 0..runs + 50 {
            let t = Instant::now();
            let r = sandbox.run(trivial).await.unwrap();
            if i >= 50 {
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            assert_eq!(r.outcome, Outcome::Passed);
            fuel = r.fuel + r.overhead_fuel;
        }
    });
    lat.sort_by(f64::total_cmp);
    (
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        fuel,
    )
}

/// RSS every 10% of `BENCH_RSS_RUNS` trivial runs (none when unset).
fn rss(
    rt: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    trivial_tests: &[TestCase],
    workers: usize,
) {
    // 3. RSS over many runs.
    let n: usize = std::env::var("BENCH_RSS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if n > 0 {
        let step = (n / 10).max(1);
        let start = Instant::now();
        rt.block_on(async {
            let mut done = 0;
            while done < n {
                let batch = step.min(n - done);
                futures::stream::iter(0..batch)
                    .map(|_| {
                        let sandbox = sandbox.clone();
                        let tests = trivial_tests.to_vec();
                        tokio::spawn(async move {
                            let job = RunJob {
                                id: "rss",
                                program: "def f():\n    return 1\n",
                                setup: None,
                                judge_setup: None,
                                tests: &tests,
                                limits: None,
                                stop_on_failure: false,
                            };
                            sandbox.run(&job).await.unwrap().outcome
                        })
                    })
                    .buffer_unordered(workers * 4)
                    .for_each(|o| async move { assert_eq!(o.unwrap(), Outcome::Passed) })
                    .await;
                done += batch;
                println!("rss after {done:>7} runs: {:.1} MiB", rss_mib());
            }
        });
        println!(
            "{n} runs in {:.1} s ({:.0} runs/s)",
            start.elapsed().as_secs_f64(),
            n as f64 / start.elapsed().as_secs_f64()
        );
    }
}
