//! Plug-in verifiers from `verdict.toml`: a Python function (embedded CPython) and a wasm
//! component (componentize-py, built by `verdict plugin build`), each in a chain with built-in
//! verifiers, through the CLI and the gRPC service; every way they fail is that rollout's
//! `error` outcome, and the service keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use tokio::net::TcpListener;
use verdict::pb;
use verdict::pb::reward_service_client::RewardServiceClient;
use verdict::server::{run, ServeOptions};
use verdict::{Config, Registry, Rollout};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plugins")
}

/// Score `input` with `verdict score --config config`; the records by id.
fn score_cli(config: &Path, input: &Path) -> (i32, Vec<Value>) {
    let out = Command::cargo_bin("verdict")
        .unwrap()
        .args(["score", "--quiet", "--config"])
        .arg(config)
        .arg(input)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let records = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code().unwrap_or(-1), records)
}

fn by_id<'a>(records: &'a [Value], id: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no record {id}"))
}

fn assert_error(record: &Value, needle: &str) {
    assert_eq!(record["outcome"], "error", "{record}");
    assert_eq!(record["reward"], Value::Null, "maskable, never 0: {record}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(error.contains(needle), "`{needle}` not in `{error}`");
}

fn rollouts(file: &Path) -> Vec<Rollout> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| Rollout::from_json(l).unwrap())
        .collect()
}

/// Serve `config` (with its plug-ins) on an ephemeral port, as `verdict serve` does.
async fn serve(
    config: &Config,
) -> (
    RewardServiceClient<tonic::transport::Channel>,
    tokio::sync::oneshot::Sender<()>,
) {
    let registry = config.registry_in(&Registry::builtin()).unwrap();
    let chain = Arc::new(config.build_registered(&registry).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        registry,
        config_origin: config.origin.clone(),
        ..ServeOptions::default()
    };
    tokio::spawn(run(listener, chain, opts, async {
        let _ = stopped.await;
    }));
    (RewardServiceClient::connect(url).await.unwrap(), stop)
}

async fn score_batch(
    client: &mut RewardServiceClient<tonic::transport::Channel>,
    rollouts: &[Rollout],
) -> Vec<Value> {
    let scores = client
        .score_batch(pb::ScoreBatchRequest {
            rollouts: rollouts.iter().map(pb::Rollout::from).collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .scores;
    scores
        .iter()
        .map(|s| {
            let score = verdict::Score::try_from(s.clone()).unwrap();
            serde_json::to_value(score).unwrap()
        })
        .collect()
}

fn check_python_records(records: &[Value]) {
    let right = by_id(records, "right");
    assert_eq!(right["outcome"], "passed", "{right}");
    assert_eq!(right["reward"], 1.0, "{right}");
    let step = &right["verifiers"][1];
    assert_eq!(step["name"], "answer_check");
    assert_eq!(
        step["details"]["word_seen"], true,
        "settings reach the function"
    );
    assert_eq!(
        step["details"]["parse"],
        Value::Null,
        "no parse step ran before it"
    );
    let wrong = by_id(records, "wrong");
    assert_eq!(wrong["outcome"], "failed", "{wrong}");
    assert_eq!(wrong["reward"], 0.0);
    assert_error(
        by_id(records, "raise"),
        "answer_check: Python plug-in `answer_check`: the function raised ValueError: the \
         reference answer could not be parsed at verifiers.py",
    );
    assert_error(
        by_id(records, "garbage"),
        "the function returned a str ('very good')",
    );
    assert_error(
        by_id(records, "nan"),
        "the score nan, which is not a finite number",
    );
    assert_error(
        by_id(records, "forever"),
        "did not return within its timeout of 500 ms",
    );
    let after = by_id(records, "after");
    assert_eq!(after["reward"], 1.0, "{after}");
    assert_eq!(after["verifiers"][2]["details"]["from"], "boxed");
}

#[test]
fn python_verifiers_in_a_chain_through_the_cli() {
    let started = Instant::now();
    let (code, records) = score_cli(
        &fixtures().join("python.toml"),
        &fixtures().join("python.jsonl"),
    );
    assert_eq!(code, 1, "some rollouts could not be judged");
    assert_eq!(records.len(), 7);
    check_python_records(&records);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the endless function is bounded by its timeout"
    );

    let out = Command::cargo_bin("verdict")
        .unwrap()
        .args(["verifiers", "--kinds", "--config"])
        .arg(fixtures().join("python.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("answer_check"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("python"), "{line}");
    assert!(line.ends_with("fixtures/plugins/verifiers.py]"), "{line}");
    let format = text.lines().find(|l| l.starts_with("format ")).unwrap();
    assert!(format.contains("built-in"), "{format}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_verifiers_in_a_chain_through_grpc() {
    let config = Config::load(Some(&fixtures().join("python.toml"))).unwrap();
    let (mut client, stop) = serve(&config).await;
    let list = client
        .list_verifiers(pb::ListVerifiersRequest {})
        .await
        .unwrap()
        .into_inner();
    let kind = list
        .kinds
        .iter()
        .find(|k| k.kind == "answer_check")
        .unwrap();
    assert_eq!(kind.origin, pb::KindOrigin::Python as i32);
    assert!(kind.source.ends_with("fixtures/plugins/verifiers.py"));
    assert_eq!(
        kind.description,
        "the completion contains the answer (Python fixture)"
    );
    let builtin = list.kinds.iter().find(|k| k.kind == "match").unwrap();
    assert_eq!(builtin.origin, pb::KindOrigin::BuiltIn as i32);
    assert_eq!(list.chain[1].kind, "answer_check");

    let records = score_batch(&mut client, &rollouts(&fixtures().join("python.jsonl"))).await;
    check_python_records(&records);
    // Still serving after the failures.
    let again = score_batch(
        &mut client,
        &rollouts(&fixtures().join("python.jsonl"))[..1],
    )
    .await;
    assert_eq!(again[0]["reward"], 1.0);
    let _ = stop.send(());
}

/// A chain of one Python plug-in step from `table` (the `[plugins.p]` keys).
fn python_chain(table: &str) -> Arc<verdict::Chain> {
    let text = format!(
        "[plugins.p]\npython = \"{}\"\n{table}\n[[verifier]]\nkind = \"p\"\n",
        fixtures().join("verifiers.py").display()
    );
    Arc::new(
        Config::parse(&text, "test")
            .unwrap()
            .build_in(&Registry::builtin())
            .unwrap(),
    )
}

fn rollout(id: &str, prompt: &str, completion: &str, answer: Option<&str>) -> Rollout {
    Rollout {
        id: id.into(),
        prompt: prompt.into(),
        completion: completion.into(),
        answer: answer.map(str::to_string),
        ..Rollout::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trl_verl_and_batch_functions_plug_in_with_a_few_lines() {
    let batch = [
        rollout("a", "q", "it is 42", Some("42")),
        rollout("b", "q", "it is 41", Some("42")),
        rollout("c", "q", "no answer field", None),
    ];
    let trl = python_chain("function = \"accuracy_reward\"\ncall = \"trl\"");
    let scores = trl.score_batch(batch.to_vec()).await;
    assert_eq!(scores[0].reward, Some(1.0));
    assert_eq!(scores[1].reward, Some(0.0));
    assert!(scores[2].verifiers[0].skipped, "TRL's None: does not apply");
    // Alone in its batch, a rollout without `answer` still gets the column (of None).
    let alone = trl.score(&batch[2]).await;
    assert!(alone.verifiers[0].skipped, "{alone:?}");

    let verl = python_chain("function = \"compute_score\"\ncall = \"verl\"");
    let mut with_source = batch[0].clone();
    with_source
        .extra
        .insert("data_source".into(), "gsm8k".into());
    let score = verl.score(&with_source).await;
    assert_eq!(score.reward, Some(1.0), "{score:?}");
    assert_eq!(score.verifiers[0].details["source"], "gsm8k");
    assert_eq!(verl.score(&batch[1]).await.reward, Some(0.0));

    let lengths = python_chain("function = \"lengths\"\nbatch = true");
    let many: Vec<Rollout> = (0..40)
        .map(|i| rollout(&i.to_string(), "q", &"x".repeat(i), None))
        .collect();
    let scores = lengths.score_batch(many).await;
    for (i, s) in scores.iter().enumerate() {
        assert_eq!(s.reward, Some((i as f64 / 100.0).min(1.0)), "{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_ignores_the_interrupt_loses_its_thread_not_the_plugin() {
    let chain = python_chain("function = \"dispatch\"\ntimeout_ms = 200");
    let started = Instant::now();
    let stuck = chain.score(&rollout("s", "stubborn", "x", Some("x"))).await;
    let waited = started.elapsed();
    assert_eq!(stuck.outcome, verdict::Outcome::Error);
    assert!(
        stuck
            .error
            .as_deref()
            .unwrap()
            .contains("within its timeout of 200 ms"),
        "{stuck:?}"
    );
    assert!(
        waited < Duration::from_millis(1500),
        "answered at the deadline: {waited:?}"
    );
    // The stuck thread is given up one grace period later and a fresh worker serves this.
    let started = Instant::now();
    let next = chain
        .score(&rollout("n", "q", "it is 42", Some("42")))
        .await;
    assert_eq!(next.reward, Some(1.0), "{next:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn python_plugin_problems_are_reported_at_load() {
    let file = fixtures().join("verifiers.py");
    let text = format!(
        "[plugins.a]\npython = \"{f}\"\nfunction = \"missing\"\n\
         [plugins.b]\npython = \"/nonexistent/x.py\"\n\
         [plugins.c]\npython = \"{f}\"\nfuel = 5\n\
         [plugins.format]\npython = \"{f}\"\n\
         [[verifier]]\nkind = \"a\"\n",
        f = file.display()
    );
    let msg = Config::parse(&text, "bad.toml")
        .unwrap()
        .build_in(&Registry::builtin())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("[plugins.a]: ") && msg.contains("defines no `missing`"),
        "{msg}"
    );
    assert!(
        msg.contains("[plugins.b]: Python file /nonexistent/x.py does not exist"),
        "{msg}"
    );
    assert!(
        msg.contains("[plugins.c]: `fuel` applies to wasm plug-ins only"),
        "{msg}"
    );
    assert!(
        msg.contains("[plugins.format]: a verifier kind named `format` already exists"),
        "{msg}"
    );
}

/// Build a Python plug-in into a component with `verdict plugin build` (cached across runs:
/// the second build of the same sources is a copy).
fn built(source: &Path, name: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    // One build at a time: tests that need the same component wait for the first build.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let out = dir.path().join(format!("{name}.wasm"));
    if !out.exists() {
        let result = Command::cargo_bin("verdict")
            .unwrap()
            .args(["plugin", "build"])
            .arg(source)
            .arg("-o")
            .arg(&out)
            .timeout(Duration::from_secs(600))
            .output()
            .unwrap();
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    out
}

fn hostile_config(dir: &Path) -> PathBuf {
    let wasm = built(&fixtures().join("hostile.py"), "hostile");
    let config = dir.join("wasm.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins.hostile]\nwasm = \"{}\"\nmemory_mb = 64\nfuel = 300000000\ntimeout_ms = 3000\n\n\
             [[verifier]]\nkind = \"parse\"\nweight = 0.0\n\n\
             [[verifier]]\nkind = \"hostile\"\n",
            wasm.display()
        ),
    )
    .unwrap();
    config
}

fn check_wasm_records(records: &[Value]) {
    let ok = by_id(records, "ok");
    assert_eq!(ok["reward"], 1.0, "{ok}");
    assert_eq!(
        ok["verifiers"][1]["details"]["parse"], "python",
        "findings of earlier steps reach the plug-in"
    );
    assert_eq!(ok["verifiers"][1]["details"]["code"], "print('ok')\n");
    assert_eq!(by_id(records, "zero")["reward"], 0.0);
    let looped = by_id(records, "loop");
    assert_error(
        looped,
        "wasm plug-in `hostile`: stopped: it ran out of fuel",
    );
    assert_error(
        by_id(records, "memory"),
        "stopped: it tried to use more than its memory limit of 64 MiB",
    );
    assert_error(
        by_id(records, "nan"),
        "wasm plug-in `hostile`: returned the score NaN, which is not a finite number",
    );
    assert_error(
        by_id(records, "range"),
        "wasm plug-in `hostile`: returned the score 7, outside [0, 1]",
    );
    assert_error(
        by_id(records, "details"),
        "wasm plug-in `hostile`: returned details that are not JSON",
    );
    assert_error(
        by_id(records, "err"),
        "could not judge the rollout: no reference answer to compare with",
    );
    assert_eq!(by_id(records, "after")["reward"], 1.0);
}

#[test]
fn wasm_plugins_in_a_chain_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let config = hostile_config(dir.path());
    let (code, records) = score_cli(&config, &fixtures().join("wasm.jsonl"));
    assert_eq!(code, 1);
    assert_eq!(records.len(), 9);
    check_wasm_records(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_plugins_are_stopped_by_their_limits_and_the_service_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(Some(&hostile_config(dir.path()))).unwrap();
    let (mut client, stop) = serve(&config).await;
    let list = client
        .list_verifiers(pb::ListVerifiersRequest {})
        .await
        .unwrap()
        .into_inner();
    let kind = list.kinds.iter().find(|k| k.kind == "hostile").unwrap();
    assert_eq!(kind.origin, pb::KindOrigin::Wasm as i32);
    assert!(kind.source.ends_with("hostile.wasm"));
    let all = rollouts(&fixtures().join("wasm.jsonl"));
    // One at a time, so each failure is followed by a call that must still work.
    let ok = &all[0];
    for r in &all {
        let records = score_batch(&mut client, std::slice::from_ref(r)).await;
        let after = score_batch(&mut client, std::slice::from_ref(ok)).await;
        assert_eq!(after[0]["reward"], 1.0, "after {}: {}", r.id, after[0]);
        check_one(&records[0]);
    }
    let records = score_batch(&mut client, &all).await;
    check_wasm_records(&records);
    let _ = stop.send(());
}

/// The checks of [`check_wasm_records`] that apply to `record` alone.
fn check_one(record: &Value) {
    let id = record["id"].as_str().unwrap();
    if ["ok", "after"].contains(&id) {
        assert_eq!(record["reward"], 1.0, "{record}");
    } else if id == "zero" {
        assert_eq!(record["reward"], 0.0, "{record}");
    } else {
        assert_eq!(record["outcome"], "error", "{record}");
    }
}

#[test]
fn the_example_wasm_plugin_penalises_repetition() {
    let wasm = built(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/repetition/repetition.py"),
        "repetition",
    );
    let text = format!(
        "[plugins.repetition]\nwasm = \"{}\"\n[[verifier]]\nkind = \"repetition\"\nngram = 2\n",
        wasm.display()
    );
    let chain = Config::parse(&text, "t")
        .unwrap()
        .build_in(&Registry::builtin())
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let varied = rt.block_on(chain.score(&rollout("v", "", "one two three four five", None)));
    let repeated = rt.block_on(chain.score(&rollout("r", "", "go go go go go go go go", None)));
    assert_eq!(varied.reward, Some(1.0), "{varied:?}");
    let r = repeated.reward.unwrap();
    assert!(r < 0.3, "{repeated:?}");
    assert_eq!(repeated.verifiers[0].details["unique"], 1);
}

/// Counts 10 ms ticks of a task on the same runtime while `work` runs.
async fn ticks_during<F: std::future::Future>(work: F) -> (F::Output, usize) {
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let out = work.await;
    ticker.abort();
    (out, ticks.load(std::sync::atomic::Ordering::Relaxed))
}

#[tokio::test(flavor = "current_thread")]
async fn an_endless_python_call_does_not_block_the_async_runtime() {
    let chain = python_chain("function = \"dispatch\"\ntimeout_ms = 400");
    let (score, ticks) = ticks_during(chain.score(&rollout("f", "forever", "x", None))).await;
    assert_eq!(score.outcome, verdict::Outcome::Error);
    // On a single-threaded runtime the ticker only runs if the call yields the thread.
    assert!(ticks >= 20, "{ticks} ticks in 400 ms");
}

#[tokio::test(flavor = "current_thread")]
async fn an_endless_wasm_call_yields_and_stops_at_its_time_limit() {
    let wasm = built(&fixtures().join("hostile.py"), "hostile");
    let text = format!(
        "[plugins.hostile]\nwasm = \"{}\"\nfuel = 1000000000000\ntimeout_ms = 400\n\
         [[verifier]]\nkind = \"hostile\"\nmode = \"loop\"\n",
        wasm.display()
    );
    let chain = Config::parse(&text, "t")
        .unwrap()
        .build_in(&Registry::builtin())
        .unwrap();
    let started = Instant::now();
    let (score, ticks) = ticks_during(chain.score(&rollout("l", "", "x", None))).await;
    let error = score.error.unwrap_or_default();
    assert!(
        error.contains("stopped: it ran past its time limit of 400 ms"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The guest yields at every epoch tick; the single-threaded scheduler runs the ticker
    // between slices (its timers are polled less often while a task is busy, hence the low bar:
    // a call that did not yield would let it tick 0 times).
    assert!(ticks >= 3, "{ticks} ticks in 400 ms");
}
