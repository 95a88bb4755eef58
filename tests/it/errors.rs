//! When verdict itself fails, the score says so: a sandbox worker killed mid-run gives that
//! rollout the `error` outcome and a maskable reward (`null`), never a 0 that looks like a wrong
//! answer; the run goes on and the summary counts it apart from `failed`.

use std::time::Duration;

use verdict::batch::{score_lines, BatchOptions, Resumed, Scorer};
use verdict::{Config, Outcome, Score};

use crate::sandbox::worker_pids;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_gives_the_error_outcome_and_a_masked_reward() {
    const SEED: u64 = 515_151;
    let mut config = Config::parse(
        "[[verifier]]\nkind = \"parse\"\ngate = true\nweight = 0.0\n[[verifier]]\nkind = \"tests\"\n",
        "test",
    )
    .unwrap();
    config.sandbox.engine.workers = Some(1);
    config.sandbox.engine.worker_exe = Some(env!("CARGO_BIN_EXE_verdict").into());
    config.sandbox.limits.seed = Some(SEED);
    let chain = std::sync::Arc::new(config.build().unwrap());
    let line = |id: &str, code: &str| {
        serde_json::json!({
            "id": id,
            "completion": format!("```python\n{code}\n```"),
            "tests": [{"kind": "stdio", "stdin": "", "stdout": "1\n"}],
        })
        .to_string()
    };
    let input = format!(
        "{}\n{}\n",
        line("loops", "while True:\n    pass"),
        line("prints", "print(1)")
    );
    // Kill the worker once the looping rollout is running in it.
    let killer = tokio::spawn(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let pid = loop {
            if let Some(pid) = worker_pids(SEED).first().copied() {
                break pid;
            }
            assert!(tokio::time::Instant::now() < deadline, "no worker started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    });
    let mut out = Vec::new();
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        score_lines(
            Scorer::local(chain, 1),
            std::io::Cursor::new(input.into_bytes()),
            &mut out,
            Resumed::default(),
            &BatchOptions {
                jobs: 1,
                progress: false,
                group_window: 512,
            },
            None,
        ),
    )
    .await
    .expect("no hang")
    .unwrap();
    killer.await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "loops");
    assert_eq!(lines[0]["outcome"], "error", "{}", lines[0]);
    assert!(
        lines[0]["reward"].is_null(),
        "maskable, not 0: {}",
        lines[0]
    );
    let reason = lines[0]["error"].as_str().unwrap();
    assert!(reason.contains("worker"), "{reason}");
    let score: Score = serde_json::from_value(lines[0].clone()).unwrap();
    assert_eq!((score.outcome, score.reward), (Outcome::Error, None));
    // The next rollout gets a new worker and its real verdict.
    assert_eq!(lines[1]["outcome"], "passed", "{}", lines[1]);
    assert_eq!(lines[1]["reward"], 1.0);
    assert_eq!(summary.errors, 1);
    assert_eq!(summary.outcomes.get(&Outcome::Failed), None);
    assert_eq!(summary.mean_reward, 1.0, "errors stay out of the mean");
    assert!(summary.to_string().contains("1 not judged"), "{summary}");
}
