//! The `timing` verifier: deterministic fuel, and pairs of correct solutions of known complexity
//! ordered correctly in every trial.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use verdict::chain::{Chain, Step};
use verdict::verifiers::parse::ParseConfig;
use verdict::verifiers::tests::TestsConfig;
use verdict::verifiers::timing::{Baseline, TimingConfig};
use verdict::{BuildContext, Rollout, Score};

use crate::sandbox::shared;

fn chain(baseline: Baseline) -> Arc<Chain> {
    let sandbox = shared();
    let step = |name: &str, verifier: Box<dyn verdict::Verifier>, weight: f64, gate: bool| Step {
        name: name.into(),
        verifier,
        weight,
        gate,
        min_score: 1.0,
    };
    let timing = TimingConfig {
        baseline,
        ..TimingConfig::default()
    };
    Arc::new(Chain::new(vec![
        step(
            "parse",
            Box::new(
                ParseConfig::default()
                    .build(&BuildContext::default())
                    .unwrap(),
            ),
            0.0,
            true,
        ),
        step(
            "tests",
            Box::new(
                TestsConfig::default()
                    .build(&BuildContext::new(Some(sandbox)))
                    .unwrap(),
            ),
            1.0,
            false,
        ),
        step(
            "timing",
            Box::new(timing.build(&BuildContext::new(Some(sandbox))).unwrap()),
            1.0,
            false,
        ),
    ]))
}

/// A correct pair: (problem, slow solution, fast solution, tests).
struct Pair {
    name: &'static str,
    slow: &'static str,
    fast: &'static str,
    tests: Value,
}

fn pairs() -> Vec<Pair> {
    let dup: Vec<i64> = (0..1500).map(|i| (i * 7) % 1000).collect();
    let dedup_expected: Vec<i64> = {
        let mut seen = std::collections::HashSet::new();
        dup.iter().copied().filter(|x| seen.insert(*x)).collect()
    };
    let unsorted: Vec<i64> = (0..250).map(|i| (i * 37) % 251).collect();
    let mut sorted = unsorted.clone();
    sorted.sort();
    let nums: Vec<i64> = (0..600).collect();
    vec![
        Pair {
            name: "dedup: list membership (quadratic) vs set (linear)",
            slow: "def dedup(xs):\n    out = []\n    for x in xs:\n        if x not in out:\n            out.append(x)\n    return out\n",
            fast: "def dedup(xs):\n    seen = set()\n    out = []\n    for x in xs:\n        if x not in seen:\n            seen.add(x)\n            out.append(x)\n    return out\n",
            tests: json!([
                {"kind": "call", "fn": "dedup", "args": [[1, 2, 1]], "expected": [1, 2]},
                {"kind": "call", "fn": "dedup", "args": [dup], "expected": dedup_expected, "timing": true}
            ]),
        },
        Pair {
            name: "fib: naive recursion vs memoized",
            slow: "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
            fast: "from functools import lru_cache\n\n@lru_cache(maxsize=None)\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
            tests: json!([
                {"kind": "call", "fn": "fib", "args": [10], "expected": 55},
                {"kind": "call", "fn": "fib", "args": [18], "expected": 2584, "timing": true}
            ]),
        },
        Pair {
            name: "digits: repeated string concatenation vs join",
            slow: "def digits(n):\n    s = ''\n    for i in range(n):\n        s = s + str(i % 10)\n    return s\n",
            fast: "def digits(n):\n    return ''.join([str(i % 10) for i in range(n)])\n",
            tests: json!([
                {"kind": "call", "fn": "digits", "args": [12], "expected": "012345678901"},
                {"kind": "assert", "code": "assert len(digits(20000)) == 20000", "timing": true}
            ]),
        },
        Pair {
            name: "sort: bubble sort vs sorted()",
            slow: "def sort(xs):\n    xs = list(xs)\n    for i in range(len(xs)):\n        for j in range(len(xs) - 1 - i):\n            if xs[j] > xs[j + 1]:\n                xs[j], xs[j + 1] = xs[j + 1], xs[j]\n    return xs\n",
            fast: "def sort(xs):\n    return sorted(xs)\n",
            tests: json!([
                {"kind": "call", "fn": "sort", "args": [[3, 1, 2]], "expected": [1, 2, 3]},
                {"kind": "call", "fn": "sort", "args": [unsorted], "expected": sorted, "timing": true}
            ]),
        },
        Pair {
            name: "two_sum: nested loops vs dict",
            slow: "def two_sum(xs, t):\n    for i in range(len(xs)):\n        for j in range(i + 1, len(xs)):\n            if xs[i] + xs[j] == t:\n                return [i, j]\n    return None\n",
            fast: "def two_sum(xs, t):\n    seen = {}\n    for i, x in enumerate(xs):\n        if t - x in seen:\n            return [seen[t - x], i]\n        seen[x] = i\n    return None\n",
            tests: json!([
                {"kind": "call", "fn": "two_sum", "args": [[2, 7, 11], 9], "expected": [0, 1]},
                {"kind": "call", "fn": "two_sum", "args": [nums, 1197], "expected": [598, 599], "timing": true}
            ]),
        },
        Pair {
            name: "sum of squares: loop vs closed form",
            slow: "def squares(n):\n    total = 0\n    for i in range(n):\n        total += i * i\n    return total\n",
            fast: "def squares(n):\n    return (n - 1) * n * (2 * n - 1) // 6\n",
            tests: json!([
                {"kind": "call", "fn": "squares", "args": [4], "expected": 14},
                {"kind": "call", "fn": "squares", "args": [30000], "expected": 8999550005000i64, "timing": true}
            ]),
        },
    ]
}

fn rollout(id: &str, problem: &str, code: &str, tests: &Value, reference: Option<&str>) -> Rollout {
    Rollout {
        id: id.into(),
        problem_id: Some(problem.into()),
        completion: format!("```python\n{code}```"),
        tests: serde_json::from_value(tests.clone()).unwrap(),
        reference: reference.map(str::to_string),
        ..Rollout::default()
    }
}

fn timing_of(score: &Score) -> (f64, u64, f64) {
    let t = score
        .verifiers
        .iter()
        .find(|v| v.name == "timing")
        .expect("timing ran");
    let wall = score
        .tests
        .as_ref()
        .map_or(0.0, |t| t.results.iter().map(|r| r.wall_ms).sum());
    (
        t.score,
        t.details["fuel"].as_u64().expect("fuel reported"),
        wall,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_of_known_complexity_are_ordered_in_every_trial() {
    let chain = chain(Baseline::Group);
    let mut report = Vec::new();
    for pair in pairs() {
        let mut fuels = (Vec::new(), Vec::new());
        let mut walls = (Vec::new(), Vec::new());
        for trial in 0..3 {
            let batch = vec![
                rollout(
                    &format!("slow-{trial}"),
                    pair.name,
                    pair.slow,
                    &pair.tests,
                    None,
                ),
                rollout(
                    &format!("fast-{trial}"),
                    pair.name,
                    pair.fast,
                    &pair.tests,
                    None,
                ),
            ];
            let scores = chain.score_batch(batch).await;
            for s in &scores {
                assert_eq!(s.outcome, verdict::Outcome::Passed, "{}: {s:?}", pair.name);
            }
            let (slow, fast) = (timing_of(&scores[0]), timing_of(&scores[1]));
            assert!(
                slow.0 < fast.0 && fast.0 == 1.0,
                "{}: slow scored {} (fuel {}), fast {} (fuel {})",
                pair.name,
                slow.0,
                slow.1,
                fast.0,
                fast.1
            );
            assert!(
                scores[0].reward < scores[1].reward,
                "{}: rewards ordered",
                pair.name
            );
            fuels.0.push(slow.1);
            fuels.1.push(fast.1);
            walls.0.push(slow.2);
            walls.1.push(fast.2);
        }
        report.push((pair.name, fuels, walls));
    }
    // Printed with --nocapture: the figures behind the closing note.
    for (name, fuels, walls) in report {
        let spread = |v: &[f64]| {
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
            format!("{lo:.2}..{hi:.2} ms")
        };
        eprintln!(
            "{name}: fuel slow {:?} fast {:?} (ratio {:.1}); wall slow {} fast {}",
            fuels.0,
            fuels.1,
            fuels.0[0] as f64 / fuels.1[0].max(1) as f64,
            spread(&walls.0),
            spread(&walls.1)
        );
        assert!(
            fuels.0.windows(2).all(|w| w[0] == w[1]),
            "{name}: slow fuel is deterministic"
        );
        assert!(
            fuels.1.windows(2).all(|w| w[0] == w[1]),
            "{name}: fast fuel is deterministic"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_rollout_gets_identical_fuel_and_score_twenty_times_under_load() {
    let chain = chain(Baseline::Reference);
    let pair = &pairs()[0];
    // Keep the other core busy while measuring.
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            x
        })
    };
    let mut seen = Vec::new();
    let mut walls = Vec::new();
    let started = Instant::now();
    for _ in 0..20 {
        let r = rollout("same", "dedup", pair.slow, &pair.tests, Some(pair.fast));
        let score = chain.score(&r).await;
        let (s, fuel, wall) = timing_of(&score);
        seen.push((s, fuel, score.cost.fuel));
        walls.push(wall);
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    assert!(
        seen.iter().all(|x| *x == seen[0]),
        "identical every time: {seen:?}"
    );
    let (score, fuel, _) = seen[0];
    assert!(
        score < 1.0 && score > 0.0,
        "slower than the reference: {score}"
    );
    assert!(fuel > 0);
    let (lo, hi) = walls
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    eprintln!(
        "20 runs in {:.1}s: timing score {score:.4}, fuel {fuel} every time; wall {lo:.2}..{hi:.2} ms",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_programs_earn_no_speed_bonus_and_no_tests_skip() {
    let chain = chain(Baseline::Reference);
    let pair = &pairs()[5];
    let wrong = "def squares(n):\n    return 0\n";
    let score = chain
        .score(&rollout("wrong", "sq", wrong, &pair.tests, Some(pair.fast)))
        .await;
    assert_eq!(timing_of_score(&score), 0.0);
    let mut none = rollout("none", "sq", pair.fast, &json!([]), Some(pair.fast));
    none.tests.clear();
    let score = chain.score(&none).await;
    let t = score.verifiers.iter().find(|v| v.name == "timing").unwrap();
    assert!(t.skipped, "{t:?}");
}

fn timing_of_score(score: &Score) -> f64 {
    score
        .verifiers
        .iter()
        .find(|v| v.name == "timing")
        .unwrap()
        .score
}

/// Fuel that never subtracts real work (PROTOCOL.md, "Fuel"): a generator whose items cost
/// work, iterated by the test one `next` at a time, is charged at least the work the same loop
/// costs in one call; a copy of it whose harness is patched with a fast `next` (skipping the
/// codec) hides none of that work either: the fuel subtracted per operation is the cheapest
/// answer any patched harness can give, not what the honest harness spends.
#[tokio::test]
async fn no_work_hides_behind_the_operations_that_serve_it() {
    let body = "        s = 0\n        for j in range(300):\n            s += j\n";
    let total = 200 * (0..300).sum::<u64>();
    let generator = format!("def gen(n):\n    for i in range(n):\n{body}        yield s\n");
    let one_call = format!(
        "def work(n):\n    t = 0\n    for i in range(n):\n{body}        t += s\n    return t\n"
    );
    let forged = format!(
        "import sys\n_h = next(m for m in list(sys.modules.values()) if hasattr(m, '_call_test'))\n\
         _orig = _h.WitWorld.serve\n_state = {{}}\n\
         def _fast(self, request, limit):\n    if request.startswith('[\"next\"'):\n        it = _state.get('it')\n        if it is not None:\n            try:\n                return '{{\"ok\":%d}}' % next(it)\n            except StopIteration:\n                return '{{\"stop\":true}}'\n    reply = _orig(self, request, limit)\n    if request.startswith('[\"iter\"'):\n        _state['it'] = gen_impl(200)\n    return reply\n\
         _h.WitWorld.serve = _fast\n\
         def gen_impl(n):\n    for i in range(n):\n{body}        yield s\n\
         def gen(n):\n    return gen_impl(n)\n"
    );
    let iterate = crate::sandbox::tests(json!([{"kind": "assert",
        "code": format!("assert sum(x for x in gen(200)) == {total}")}]));
    let call = crate::sandbox::tests(json!([{"kind": "assert",
        "code": format!("assert work(200) == {total}")}]));
    let work = crate::sandbox::run(&one_call, &call).await;
    let honest = crate::sandbox::run(&generator, &iterate).await;
    let patched = crate::sandbox::run(&forged, &iterate).await;
    for r in [&work, &honest, &patched] {
        assert_eq!(r.outcome, verdict::Outcome::Passed, "{r:#?}");
    }
    assert!(
        honest.fuel >= work.fuel,
        "the honest generator {} < the same work in one call {}",
        honest.fuel,
        work.fuel
    );
    assert!(
        patched.fuel * 10 >= work.fuel * 9,
        "the patched generator {} hides work: the same work in one call is {}",
        patched.fuel,
        work.fuel
    );
    assert!(
        patched.fuel * 10 >= honest.fuel * 9,
        "the patched generator {} < 0.9 × its honest twin {}",
        patched.fuel,
        honest.fuel
    );
}
