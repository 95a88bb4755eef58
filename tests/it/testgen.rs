//! LLM-generated tests against a stand-in LLM on a real socket: retries and failures of the
//! client, validation with and without a reference, single-flight and the SQLite cache through
//! `verdict score` and `verdict serve` (several processes on one file, a corrupt file),
//! `tests_unavailable`, `verdict tests show` and `verdict tests eval`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use verdict::pb;
use verdict::pb::reward_service_client::RewardServiceClient;
use verdict::testgen::sqlite::{Access, SqliteCache, FILE_NAME};
use verdict::testgen::{ChatClient, LlmError, Testgen, TestgenConfig};
use verdict::{Config, Outcome, Rollout};

use crate::standin::{fixture_answers, Reply, StandIn};

/// Four right tests and one wrong one (`add(10, 5) == 16`), with prose around two fences.
const ADD_ANSWER: &str = "Sure, here are tests.\n\n```python\nassert add(1, 2) == 3\n\
assert add(2, 2) == 4\nassert add(10, 5) == 16\n```\n\nAnd:\n\n```python\nassert add(-3, 3) == 0\n\
assert add(0, 7) == 7\n```\nThese cover the basics.";

fn verdict_bin() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("verdict"));
    cmd.env_remove("VERDICT_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY");
    cmd
}

/// The built-in chain plus a `[testgen]` section for `url`, caching in `cache`.
fn config_text(url: &str, cache: &Path, extra: &str) -> String {
    format!(
        "{}\n[testgen]\nbase_url = \"{url}\"\nmodel = \"stand-in\"\ncache_dir = \"{}\"\n\
         backoff_ms = 50\n{extra}\n",
        verdict::config::DEFAULT_CONFIG,
        cache.display()
    )
}

fn completion(code: &str) -> String {
    format!("<think>\nStraightforward.\n</think>\n```python\n{code}\n```\n")
}

fn add_rollout(id: &str, code: &str, reference: bool) -> Rollout {
    Rollout {
        id: id.into(),
        problem_id: Some("add".into()),
        prompt: "Write a Python function add(a, b) that returns the sum of a and b.".into(),
        completion: completion(code),
        entry_point: Some("add".into()),
        reference: reference.then(|| "def add(a, b):\n    return a + b".into()),
        ..Rollout::default()
    }
}

/// 12 right and 4 wrong programs for `add`, with a reference.
fn add_group(prefix: &str) -> Vec<Rollout> {
    (0..16)
        .map(|i| {
            let code = if i % 4 == 3 {
                "def add(a, b):\n    return a - b"
            } else {
                "def add(a, b):\n    return a + b"
            };
            add_rollout(&format!("{prefix}-{i}"), code, true)
        })
        .collect()
}

fn write_jsonl(path: &Path, rollouts: &[Rollout]) {
    let text: String = rollouts
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(path, text).unwrap();
}

fn records(stdout: &[u8]) -> Vec<Value> {
    std::str::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn step<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["verifiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} step in {record}"))
}

fn score_cli(config: &Path, input: &Path) -> Vec<Value> {
    let out = verdict_bin()
        .args(["score", "--jobs", "16", "--config"])
        .arg(config)
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verdict score failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    records(&out.stdout)
}

/// The generations in the cache file of `dir`, after checking the file's integrity.
fn cached_generations(dir: &Path) -> usize {
    let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.query_row("SELECT count(*) FROM generations", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as usize
}

/// `verdict tests show` with `args` and `config`: exit status, stdout, stderr.
fn tests_show(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = verdict_bin()
        .args(["tests", "show", "--config"])
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_add_scores(recs: &[Value]) {
    assert_eq!(recs.len(), 16);
    for r in recs {
        let g = step(r, "generated");
        assert_eq!(g["details"]["validation"], "reference", "{r}");
        assert_eq!(g["details"]["kept"], 4, "the wrong test is dropped: {r}");
        assert_eq!(g["details"]["dropped"]["reference_fails"], 1, "{r}");
        let id = r["id"].as_str().unwrap();
        let wrong =
            id.ends_with("-3") || id.ends_with("-7") || id.ends_with("-11") || id.ends_with("-15");
        if wrong {
            assert_eq!(r["outcome"], "failed", "{r}");
            assert!(g["score"].as_f64().unwrap() < 0.5, "{r}");
        } else {
            assert_eq!(r["outcome"], "passed", "{r}");
            assert_eq!(g["score"], 1.0, "{r}");
        }
    }
}

#[test]
fn sixteen_rollouts_of_one_problem_make_one_request_and_a_second_run_none() {
    let llm =
        StandIn::start(|_, _| Reply::Slow(Duration::from_millis(300), ADD_ANSWER.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("testgen-cache");
    let config = dir.path().join("verdict.toml");
    std::fs::write(&config, config_text(&llm.url(), &cache, "")).unwrap();
    let input = dir.path().join("in.jsonl");
    write_jsonl(&input, &add_group("cli"));

    let first = score_cli(&config, &input);
    assert_eq!(llm.requests(), 1, "one generation for the whole group");
    assert_add_scores(&first);
    assert_eq!(cached_generations(&cache), 1, "one cache row per problem");
    let (body, _) = llm.last().unwrap();
    assert_eq!(body["model"], "stand-in");
    assert_eq!(body["seed"], 0);

    let second = score_cli(&config, &input);
    assert_eq!(llm.requests(), 1, "the second run reads the cache");
    assert_add_scores(&second);
    assert_eq!(cached_generations(&cache), 1);

    // What was kept, and why the wrong test was dropped.
    let (code, text, err) = tests_show(&config, &["add"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains(&cache.join(FILE_NAME).display().to_string()),
        "{text}"
    );
    assert!(
        text.contains("model      stand-in, prompt v1, 8 tests asked"),
        "{text}"
    );
    assert!(text.contains("validation reference"), "{text}");
    assert!(text.contains("4 kept, 1 dropped"), "{text}");
    for kept in [
        "add(1, 2) == 3",
        "add(2, 2) == 4",
        "add(-3, 3) == 0",
        "add(0, 7) == 7",
    ] {
        assert!(
            text.contains(&format!("kept     assert {kept}")),
            "{kept} kept: {text}"
        );
    }
    assert!(
        text.contains(
            "[2] dropped  assert add(10, 5) == 16  (reference_fails: the reference solution \
             fails it)"
        ),
        "{text}"
    );
    let (code, json, err) = tests_show(&config, &["add", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&json).unwrap();
    let entry = &json["entries"][0];
    assert_eq!(entry["generated"]["key"]["model"], "stand-in");
    assert_eq!(entry["validations"][0]["method"], "reference");
    assert_eq!(
        entry["validations"][0]["kept"],
        serde_json::json!([0, 1, 3, 4])
    );
    assert_eq!(
        entry["validations"][0]["dropped"],
        serde_json::json!([[2, "reference_fails"]])
    );
    // The cache key from a score's details finds the same entry.
    let digest = step(&first[0], "generated")["details"]["cache_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(entry["digest"], digest.as_str());
    assert_eq!(tests_show(&config, &[&digest]).0, 0);

    let (code, _, err) = tests_show(&config, &["no-such-problem"]);
    assert_eq!(code, 2, "an unknown problem is an error");
    assert!(
        err.contains("no cached tests for problem \"no-such-problem\""),
        "{err}"
    );
    assert!(
        err.contains(&cache.join(FILE_NAME).display().to_string()),
        "{err}"
    );
}

/// `count` problems like `add`, each with a different text, two rollouts each (one right, one
/// wrong), with a reference.
fn add_problems(count: usize) -> Vec<Rollout> {
    (0..count)
        .flat_map(|p| {
            [
                "def add(a, b):\n    return a + b",
                "def add(a, b):\n    return a * b",
            ]
            .into_iter()
            .enumerate()
            .map(move |(i, code)| {
                let mut r = add_rollout(&format!("p{p}-{i}"), code, true);
                r.problem_id = Some(format!("add-{p}"));
                r.prompt = format!("{} (variant {p})", r.prompt);
                r
            })
        })
        .collect()
}

#[test]
fn two_processes_writing_one_cache_file_at_once_both_succeed_and_agree() {
    let llm = StandIn::start(|_, _| Reply::Slow(Duration::from_millis(50), ADD_ANSWER.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = dir.path().join("verdict.toml");
    std::fs::write(&config, config_text(&llm.url(), &cache, "")).unwrap();
    let input = dir.path().join("in.jsonl");
    let problems = 12;
    write_jsonl(&input, &add_problems(problems));
    let spawn = || {
        verdict_bin()
            .args(["score", "--jobs", "4", "--config"])
            .arg(&config)
            .arg(&input)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("not cached"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let requests = llm.requests();
    assert!(
        (problems..=2 * problems).contains(&requests),
        "each process generates what it does not find: {requests}"
    );
    // The generated step's verdicts (the reward also has the timing step's, which is noisy).
    let verdicts = |out: &std::process::Output| {
        records(&out.stdout)
            .iter()
            .map(|r| {
                let g = step(r, "generated");
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["outcome"].clone(),
                    g["score"].clone(),
                    g["details"]["kept"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(verdicts(&a), verdicts(&b), "both processes scored alike");
    for r in records(&a.stdout) {
        let wrong = r["id"].as_str().unwrap().ends_with("-1");
        assert_eq!(r["outcome"], if wrong { "failed" } else { "passed" }, "{r}");
    }
    assert_eq!(
        cached_generations(&cache),
        problems,
        "one row per key, file intact"
    );
    let third = score_cli(&config, &input);
    assert_eq!(llm.requests(), requests, "a third process finds every row");
    assert_eq!(third.len(), 2 * problems);
}

#[test]
fn a_corrupt_cache_file_is_reported_and_bypassed_and_show_names_it() {
    let llm = StandIn::start(|_, _| Reply::Answer(ADD_ANSWER.to_string(), "stop"));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let file = cache.join(FILE_NAME);
    std::fs::write(
        &file,
        "SQLite format 3\0 but then nothing a database would hold.".repeat(50),
    )
    .unwrap();
    let config = dir.path().join("verdict.toml");
    std::fs::write(&config, config_text(&llm.url(), &cache, "")).unwrap();
    let input = dir.path().join("in.jsonl");
    write_jsonl(&input, &add_group("corrupt")[..4]);
    let out = verdict_bin()
        .args(["score", "--config"])
        .arg(&config)
        .arg(&input)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("generated-tests cache cannot be used"),
        "{err}"
    );
    assert!(err.contains(&file.display().to_string()), "{err}");
    let recs = records(&out.stdout);
    assert_eq!(recs.len(), 4);
    assert_eq!(recs[0]["outcome"], "passed", "scored without the cache");
    assert_eq!(recs[3]["outcome"], "failed");
    assert_eq!(llm.requests(), 1);

    let (code, _, err) = tests_show(&config, &["add"]);
    assert_eq!(code, 2);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("not a usable SQLite database"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `verdict serve` with `config`; its address and the child.
fn serve(config: &Path) -> (String, std::process::Child) {
    use std::io::BufRead;
    let mut child = verdict_bin()
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--grace-secs",
            "2",
            "--config",
        ])
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (format!("http://{addr}"), child)
}

async fn score_concurrently(url: &str, rollouts: Vec<Rollout>) -> Vec<pb::Score> {
    let client = RewardServiceClient::connect(url.to_string()).await.unwrap();
    let calls = rollouts.into_iter().map(|r| {
        let mut client = client.clone();
        async move {
            client
                .score(pb::ScoreRequest {
                    rollout: Some(pb::Rollout::from(&r)),
                })
                .await
                .unwrap()
                .into_inner()
                .score
                .unwrap()
        }
    });
    futures::future::join_all(calls).await
}

fn stop(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_grpc_sixteen_concurrent_calls_make_one_request_and_a_restart_none() {
    let llm =
        StandIn::start(|_, _| Reply::Slow(Duration::from_millis(300), ADD_ANSWER.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = dir.path().join("verdict.toml");
    std::fs::write(&config, config_text(&llm.url(), &cache, "")).unwrap();

    let (url, child) = serve(&config);
    let scores = score_concurrently(&url, add_group("grpc")).await;
    assert_eq!(
        llm.requests(),
        1,
        "16 concurrent Score calls, one generation"
    );
    let passed = scores
        .iter()
        .filter(|s| s.outcome == pb::Outcome::Passed as i32)
        .count();
    assert_eq!(passed, 12, "{scores:?}");
    stop(child);

    let (url, child) = serve(&config);
    let again = score_concurrently(&url, add_group("grpc")).await;
    assert_eq!(llm.requests(), 1, "a restarted server reads the cache");
    let rewards = |s: &[pb::Score]| s.iter().map(|s| s.reward).collect::<Vec<_>>();
    assert_eq!(rewards(&again), rewards(&scores));
    stop(child);
}

/// Four right tests, one wrong (`is_even(5) == True`), one that passes by chance
/// (`random()`), in a truncated answer.
const EVEN_ANSWER: &str = "```python\nassert is_even(2) == True\nassert is_even(7) == False\n\
assert is_even(5) == True\nassert is_even(0) == True\n\
assert is_even(2 + (__import__('random').random() < 0.5))\nassert is_even(10) == True\n\
assert is_even(";

fn even_rollout(id: &str, code: &str) -> Rollout {
    Rollout {
        id: id.into(),
        problem_id: Some("even".into()),
        prompt: "Write a Python function is_even(n) that returns True when n is even.".into(),
        completion: completion(code),
        entry_point: Some("is_even".into()),
        ..Rollout::default()
    }
}

#[test]
fn without_a_reference_agreement_drops_the_wrong_and_the_random_test() {
    let llm = StandIn::start(|_, _| Reply::Answer(EVEN_ANSWER.to_string(), "length"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("verdict.toml");
    std::fs::write(&config, config_text(&llm.url(), &dir.path().join("c"), "")).unwrap();
    let right = [
        "def is_even(n):\n    return n % 2 == 0",
        "def is_even(n):\n    return not n % 2",
        "def is_even(n):\n    return (n & 1) == 0",
        "def is_even(n):\n    return n % 2 in (0,)",
    ];
    let mut rollouts: Vec<Rollout> = right
        .iter()
        .enumerate()
        .map(|(i, c)| even_rollout(&format!("right-{i}"), c))
        .collect();
    rollouts.push(even_rollout(
        "odd",
        "def is_even(n):\n    return n % 2 == 1",
    ));
    rollouts.push(even_rollout("true", "def is_even(n):\n    return True"));
    let input = dir.path().join("in.jsonl");
    write_jsonl(&input, &rollouts);
    let recs = score_cli(&config, &input);
    assert_eq!(llm.requests(), 1);
    for r in &recs {
        let g = step(r, "generated");
        let d = &g["details"];
        assert_eq!(d["validation"], "agreement", "{r}");
        assert_eq!(d["generated"], 6, "the cut-off seventh is not a test: {r}");
        assert_eq!(d["kept"], 4, "{r}");
        assert_eq!(d["dropped"]["disagreement"], 1, "{r}");
        assert_eq!(d["dropped"]["nondeterministic"], 1, "{r}");
        assert_eq!(d["dropped"]["syntax"], 1, "{r}");
        if r["id"].as_str().unwrap().starts_with("right") {
            assert_eq!(r["outcome"], "passed", "{r}");
            assert_eq!(g["score"], 1.0, "{r}");
        } else {
            assert_eq!(r["outcome"], "failed", "{r}");
            assert!(g["score"].as_f64().unwrap() < 1.0, "{r}");
        }
    }
    // The group's decision is in the cache, with the reason of every drop.
    let (code, text, err) = tests_show(&config, &["even"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("validation dual agreement"), "{text}");
    assert!(text.contains("4 of 6 rollouts agree on 4 tests"), "{text}");
    assert!(
        text.contains("dropped  assert is_even(5) == True  (disagreement:"),
        "{text}"
    );
    assert!(
        text.contains("random() < 0.5))  (nondeterministic:"),
        "{text}"
    );
    assert!(
        text.contains("kept     assert is_even(10) == True"),
        "{text}"
    );
    assert!(
        text.contains("syntax: assert is_even("),
        "the cut-off test, dropped while reading: {text}"
    );
}

fn build(text: &str) -> verdict::Chain {
    Config::parse(text, "test").unwrap().build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_silent_endpoint_is_an_error_within_the_timeout() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        &format!("http://{closed}/v1"),
        &dir.path().join("c"),
        "timeout_secs = 1.5\nbreaker_failures = 0",
    );
    let chain = tokio::task::spawn_blocking(move || build(&text))
        .await
        .unwrap();
    let rollout = add_rollout("down", "def add(a, b):\n    return a + b", true);
    let started = Instant::now();
    let score = chain.score(&rollout).await;
    let took = started.elapsed();
    assert_eq!(score.outcome, Outcome::Error, "{score:?}");
    assert_eq!(score.reward, None);
    assert!(
        score
            .error
            .as_deref()
            .unwrap()
            .contains("test generation failed"),
        "{score:?}"
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");

    let llm = StandIn::start(|_, _| Reply::Slow(Duration::from_secs(20), ADD_ANSWER.into()));
    let text = config_text(&llm.url(), &dir.path().join("c"), "timeout_secs = 1.0");
    let chain = tokio::task::spawn_blocking(move || build(&text))
        .await
        .unwrap();
    let started = Instant::now();
    let score = chain.score(&rollout).await;
    let took = started.elapsed();
    assert_eq!(score.outcome, Outcome::Error, "{score:?}");
    assert_eq!(score.reward, None);
    assert!(took < Duration::from_millis(2000), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_valid_tests_is_tests_unavailable_skipped_or_zero_never_a_silent_one() {
    // Garbage (no test at all) and an answer the reference mostly rejects (2 valid < 3).
    let llm = StandIn::start(|_, user| {
        if user.contains("mostly wrong") {
            Reply::Answer(
                "```python\nassert add(1, 1) == 2\nassert add(1, 2) == 4\nassert add(2, 2) == 5\nassert add(0, 0) == 0\n```".into(),
                "stop",
            )
        } else {
            Reply::Answer(
                "As an AI model I cannot do that. ¯\\_(ツ)_/¯ {{{".into(),
                "stop",
            )
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let chain_text = |unavailable: &str| {
        format!(
            "[[verifier]]\nkind = \"format\"\nweight = 0.2\n[[verifier]]\nkind = \"parse\"\n\
             gate = true\nweight = 0.0\n[[verifier]]\nkind = \"tests\"\n[[verifier]]\n\
             kind = \"generated\"\nunavailable = \"{unavailable}\"\n\
             [testgen]\nbase_url = \"{}\"\nmodel = \"m\"\ncache_dir = \"{}\"\n",
            llm.url(),
            dir.path().join("c").display()
        )
    };
    let (skip_text, zero_text) = (chain_text("skip"), chain_text("zero"));
    let (skip, zero) = tokio::task::spawn_blocking(move || (build(&skip_text), build(&zero_text)))
        .await
        .unwrap();
    let garbage = add_rollout("g", "def add(a, b):\n    return a + b", false);
    let mut mostly_wrong = add_rollout("w", "def add(a, b):\n    return a + b", true);
    mostly_wrong.prompt.push_str(" (mostly wrong)");
    for rollout in [&garbage, &mostly_wrong] {
        let s = skip.score(rollout).await;
        let z = zero.score(rollout).await;
        for score in [&s, &z] {
            assert_eq!(score.outcome, Outcome::TestsUnavailable, "{score:?}");
        }
        let gs = s.verifiers.iter().find(|v| v.name == "generated").unwrap();
        let gz = z.verifiers.iter().find(|v| v.name == "generated").unwrap();
        assert!(gs.skipped, "{s:?}");
        assert!(!gz.skipped && gz.score == 0.0, "{z:?}");
        // skip: the reward is format's alone; zero: the generated step's 0 weighs in.
        let format = s.verifiers[0].score;
        assert!((s.reward.unwrap() - format).abs() < 1e-9, "{s:?}");
        assert!(z.reward.unwrap() <= 0.2 * format / 1.2 + 1e-9, "{z:?}");
    }
    let z = zero.score(&mostly_wrong).await;
    let g = z.verifiers.iter().find(|v| v.name == "generated").unwrap();
    assert_eq!(g.details["kept"], 2, "{z:?}");
    assert_eq!(g.details["dropped"]["reference_fails"], 2, "{z:?}");
    assert_eq!(
        llm.requests(),
        2,
        "one generation per problem, both chains share the cache"
    );
}

fn client_config(extra: impl FnOnce(&mut TestgenConfig)) -> TestgenConfig {
    let mut c = TestgenConfig {
        model: Some("m".into()),
        backoff_ms: 10,
        timeout_secs: 5.0,
        ..TestgenConfig::default()
    };
    extra(&mut c);
    c
}

fn client(llm: &StandIn, config: &TestgenConfig) -> ChatClient {
    let mut config = config.clone();
    config.base_url = Some(llm.url());
    config.api_key = Some("sk-test".into());
    ChatClient::new(config.endpoint_with(|_| None).unwrap(), &config).unwrap()
}

#[tokio::test]
async fn the_client_retries_500_and_429_then_gives_up_and_the_circuit_opens() {
    let llm = StandIn::start(|i, _| match i {
        0 => Reply::Status(500, None),
        1 => Reply::Status(429, Some(0)),
        2 => Reply::Answer("hello".into(), "stop"),
        3 => Reply::Garbage("<html>bad gateway</html>".into()),
        _ => Reply::Status(503, None),
    });
    let config = client_config(|c| {
        c.max_retries = 2;
        c.breaker_failures = 2;
    });
    let c = client(&llm, &config);
    let done = c.complete("sys", "user").await.unwrap();
    assert_eq!((done.text.as_str(), done.attempts), ("hello", 3));
    assert_eq!(llm.requests(), 3);
    let (body, auth) = llm.last().unwrap();
    assert_eq!(body["messages"][1]["content"], "user");
    assert_eq!(auth.as_deref(), Some("Bearer sk-test"));

    let garbage = c.complete("sys", "user").await.unwrap_err();
    assert!(matches!(garbage, LlmError::Refused(_)), "{garbage}");
    assert_eq!(llm.requests(), 4, "an unreadable answer is not retried");

    let down = c.complete("sys", "user").await.unwrap_err();
    assert!(
        matches!(down, LlmError::Exhausted { attempts: 3, .. }),
        "{down}"
    );
    assert_eq!(llm.requests(), 7);
    let open = c.complete("sys", "user").await.unwrap_err();
    assert!(matches!(open, LlmError::CircuitOpen { .. }), "{open}");
    assert_eq!(llm.requests(), 7, "an open circuit sends nothing");
}

#[tokio::test]
async fn retry_after_is_honoured_within_the_budget() {
    let llm = StandIn::start(|i, _| match i {
        0 => Reply::Status(429, Some(1)),
        _ => Reply::Answer("ok".into(), "stop"),
    });
    let c = client(&llm, &client_config(|_| {}));
    let started = Instant::now();
    c.complete("s", "u").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950));

    let llm = StandIn::start(|_, _| Reply::Status(429, Some(30)));
    let c = client(&llm, &client_config(|c| c.timeout_secs = 1.0));
    let started = Instant::now();
    let e = c.complete("s", "u").await.unwrap_err();
    assert!(matches!(e, LlmError::Timeout { .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a wait past the budget is not begun"
    );
}

#[tokio::test]
async fn concurrent_generations_of_one_problem_share_one_request() {
    let llm = StandIn::start(|_, _| Reply::Slow(Duration::from_millis(200), ADD_ANSWER.into()));
    let dir = tempfile::tempdir().unwrap();
    let config = client_config(|c| c.base_url = Some(llm.url()));
    let file = dir.path().join(FILE_NAME);
    let testgen = Testgen::new(
        config.endpoint_with(|_| None).unwrap(),
        &config,
        Arc::new(SqliteCache::open(&file, Access::ReadWrite)),
    )
    .unwrap();
    let problem = verdict::testgen::Problem::of(
        &add_rollout("p", "", false),
        verdict::testgen::ShapeChoice::Auto,
    );
    let all = futures::future::join_all((0..16).map(|_| testgen.generate(&problem))).await;
    assert_eq!(llm.requests(), 1);
    let first = all[0].as_ref().unwrap();
    assert_eq!(first.extraction.tests.len(), 5);
    assert!(all.iter().all(|g| Arc::ptr_eq(g.as_ref().unwrap(), first)));
    // Another generator on the same file (another connection, as another process has) finds
    // the row.
    let other = Testgen::new(
        config.endpoint_with(|_| None).unwrap(),
        &config,
        Arc::new(SqliteCache::open(&file, Access::ReadWrite)),
    )
    .unwrap();
    other.generate(&problem).await.unwrap();
    assert_eq!(llm.requests(), 1);
    assert_eq!(other.stats().disk_hits, 1);
    assert_eq!(other.cache().entries("add", 5).await.unwrap().len(), 1);
}

#[test]
fn with_no_endpoint_the_chain_is_unchanged_and_with_one_it_gains_a_generated_step() {
    let config = Config::default_config();
    let kinds = |c: &Config| {
        c.verifiers
            .iter()
            .map(|v| v.kind.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&config.with_generated_step(None)), kinds(&config));
    let tg = client_config(|c| c.base_url = Some("http://127.0.0.1:9/v1".into()));
    let dir = tempfile::tempdir().unwrap();
    let testgen = Testgen::new(
        tg.endpoint_with(|_| None).unwrap(),
        &tg,
        Arc::new(SqliteCache::open(
            dir.path().join(FILE_NAME),
            Access::ReadWrite,
        )),
    )
    .unwrap();
    assert_eq!(
        kinds(&config.with_generated_step(Some(&testgen))),
        ["format", "parse", "tests", "generated", "timing"]
    );
    let out = verdict_bin().args(["verifiers"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("generated"), "{text}");
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

#[test]
fn tests_eval_reports_precision_and_recall_on_the_fixture_problems() {
    let llm = StandIn::start(fixture_answers());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("verdict.toml");
    std::fs::write(&config, config_text(&llm.url(), &dir.path().join("c"), "")).unwrap();
    let run = |json: bool| {
        let mut cmd = verdict_bin();
        cmd.args(["tests", "eval", "--config"])
            .arg(&config)
            .arg(fixture("testgen/eval.jsonl"));
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let report: Value = serde_json::from_str(&run(true)).unwrap();
    let text = run(false);
    eprintln!("{text}");
    assert_eq!(
        llm.requests(),
        5,
        "one generation per problem, then the cache"
    );
    assert_eq!(report["problems"], 5);
    assert_eq!(report["problems_unavailable"], 1);
    assert_eq!(report["programs"], 18);
    let by = |id: &str| {
        report["per_problem"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["problem"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by("add")["dropped"]["reference_fails"], 1);
    assert_eq!(by("sum_stdin")["dropped"]["reference_fails"], 1);
    assert_eq!(by("is_even")["dropped"]["disagreement"], 1);
    assert_eq!(
        by("max_of")["wrong_rejected"],
        0,
        "positive-only tests miss the bug"
    );
    assert_eq!(by("reverse_words")["unavailable"], true);
    let close = |k: &str, v: f64| {
        let got = report[k].as_f64().unwrap();
        assert!((got - v).abs() < 1e-9, "{k}: {got} ≠ {v}\n{text}");
    };
    close("recall_of_wrong", 5.0 / 6.0);
    close("pass_rate_of_correct", 1.0);
    close("precision_of_accept", 12.0 / 13.0);
    close("agreement", 17.0 / 18.0);
    close("unavailable", 0.2);
    assert!(text.contains("recall_of_wrong 83.3%"), "{text}");
}

#[test]
fn tests_generate_writes_validated_tests_that_score_without_an_llm() {
    let llm = StandIn::start(|_, user| {
        if user.contains("is_even") {
            Reply::Answer(EVEN_ANSWER.into(), "length")
        } else {
            Reply::Answer(ADD_ANSWER.into(), "stop")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("verdict.toml");
    std::fs::write(&config, config_text(&llm.url(), &dir.path().join("c"), "")).unwrap();
    let input = dir.path().join("problems.jsonl");
    let output = dir.path().join("with-tests.jsonl");
    write_jsonl(
        &input,
        &[
            add_rollout("add-right", "def add(a, b):\n    return a + b", true),
            add_rollout("add-wrong", "def add(a, b):\n    return a - b", true),
            even_rollout("even", "def is_even(n):\n    return n % 2 == 0"),
        ],
    );
    let out = verdict_bin()
        .args(["tests", "generate", "--config"])
        .arg(&config)
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("add: tests_written (5 generated, 4 kept"),
        "{stderr}"
    );
    assert!(stderr.contains("even: no_reference"), "{stderr}");
    assert_eq!(llm.requests(), 2);
    let written: Vec<Rollout> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written.len(), 3);
    assert_eq!(written[0].tests.len(), 4);
    assert!(!serde_json::to_string(&written[0].tests)
        .unwrap()
        .contains("16"));
    assert!(
        written[2].tests.is_empty(),
        "no reference, no tests shipped"
    );
    // Scored with the built-in chain, no [testgen]: the tests step judges them.
    let scored = verdict_bin().arg("score").arg(&output).output().unwrap();
    let recs = records(&scored.stdout);
    assert_eq!(recs[0]["outcome"], "passed", "{}", recs[0]);
    assert_eq!(step(&recs[0], "tests")["details"]["total"], 4);
    assert_eq!(recs[1]["outcome"], "failed", "{}", recs[1]);
    assert_eq!(llm.requests(), 2);
}
