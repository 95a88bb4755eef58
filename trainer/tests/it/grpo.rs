//! A few GRPO steps against a real `verdict serve` (started by the trainer, stopped at the end):
//! rewards arrive, the loss is finite, the ratio is exactly 1 in the first epoch, a checkpoint
//! is written and the stage resumes from it.
//!
//! Needs the `verdict` binary (`cargo build --bin verdict`, as `.ci/run` does) and its sandbox
//! runtime (`verdict runtime install`); `VERDICT_BIN` points elsewhere.

use std::path::PathBuf;

use verdict_trainer::checkpoint::{self, TrainerState};
use verdict_trainer::config::GrpoInit;
use verdict_trainer::grpo::{self, GrpoOptions};
use verdict_trainer::train::{self, Stage, StageOptions};
use verdict_trainer::MoeTransformer;

use verdict_trainer::backend::CpuTrainBackend;

/// The `verdict` binary: `$VERDICT_BIN`, else `target/<profile>/verdict`.
pub(crate) fn verdict_bin() -> PathBuf {
    let bin = std::env::var_os("VERDICT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/<profile>/deps/it-… → target/<profile>/verdict
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().join("verdict")
        });
    assert!(
        bin.is_file(),
        "{} not found: build it with `cargo build --bin verdict` (and run `verdict runtime \
         install`), or set VERDICT_BIN",
        bin.display()
    );
    bin
}

/// A chain whose reward varies with the structure and language of an early policy's text (the
/// default chain's parse gate would give every completion of a barely trained model 0); the
/// R1-Zero test (`zero.rs`) rewards with it too.
pub(crate) const CHAIN: &str = r#"
[[verifier]]
kind = "format"
weight = 1.0
language = "eng"
language_weight = 0.5

[[verifier]]
kind = "parse"
weight = 0.5
"#;

#[test]
fn grpo_steps_score_with_a_real_verdict_serve_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();

    let mut config = crate::pipeline::micro();
    config.optim.lr = 1e-2;
    let g = &mut config.grpo;
    g.init = GrpoInit::Sft;
    g.steps = 3;
    g.prompts_per_step = 2;
    g.group_size = 5;
    g.epochs = 2;
    g.max_new_tokens = 28;
    g.eval_problems = 4;
    g.eval_every = 0;
    g.eval_temperature = 1.0;
    g.eval_samples = 2;
    g.checkpoint_every = 2;
    g.optim.warmup_steps = 1;
    g.reward.verdict_bin = Some(verdict_bin());
    g.reward.verdict_chain = Some(CHAIN.to_string());

    // A short SFT from a fresh model, so completions open and close `<think>` some of the time.
    let device = Default::default();
    let fresh = MoeTransformer::<CpuTrainBackend>::new(&config.policy, &device);
    let pretrain = checkpoint::step_dir(&run.join("pretrain/checkpoints"), 0);
    checkpoint::save(&pretrain, &fresh, &config, &TrainerState::default()).unwrap();
    let options = StageOptions {
        steps: Some(24),
        init: Some(pretrain),
        ..StageOptions::default()
    };
    train::run_stage::<CpuTrainBackend>(Stage::Sft, &config, run, &options, &device).unwrap();

    let options = GrpoOptions {
        stop_after: Some(2),
        ..GrpoOptions::default()
    };
    let first = grpo::run_grpo::<CpuTrainBackend>(&config, run, &options, &device).unwrap();
    assert_eq!((first.start_step, first.end_step), (0, 2));
    assert_eq!(first.groups, 4);
    assert!(
        first.groups_skipped < first.groups,
        "rewards arrived: {first:?}"
    );
    assert!(first.endpoints[0].starts_with("http://127.0.0.1:"));
    assert!(first.reward_latency_p50_s > 0.0);
    assert!(
        first.first_epoch_max_ratio_deviation == 0.0,
        "π_old is the training path's own: ratio exactly 1 in epoch 1, got {}",
        first.first_epoch_max_ratio_deviation
    );
    assert!(first.generation_log_prob_max_diff.is_finite());
    let ckpt = run.join("grpo/checkpoints/step-0000002");
    assert!(ckpt.join("model.safetensors").is_file() && ckpt.join("optim.bin").is_file());
    assert_eq!(first.checkpoint, ckpt);
    // The held-out evaluation at step 0 and at the end, scored by verdict.
    assert_eq!(
        first.heldout.iter().map(|p| p.step).collect::<Vec<_>>(),
        vec![0, 2]
    );
    for point in &first.heldout {
        assert_eq!(point.samples, 2, "{point:?}");
        assert!(
            point
                .greedy_pass_rate
                .is_some_and(|p| (0.0..=1.0).contains(&p)),
            "the greedy answers are scored beside the sampled ones: {point:?}"
        );
    }

    let lines = verdict_trainer::metrics::read_values(&run.join("grpo/metrics.jsonl")).unwrap();
    let steps: Vec<&serde_json::Value> = lines.iter().filter(|v| v["split"] == "train").collect();
    assert_eq!(steps.len(), 2);
    let mut updated = 0;
    for line in &steps {
        let reward = line["mean_reward"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&reward), "{line}");
        assert!(
            line["verifiers"]["format"].is_number(),
            "breakdown kept: {line}"
        );
        assert!(
            line["verifiers"].get("tests").is_none(),
            "the server scores with the config's inline chain (format + parse), not the default: {line}"
        );
        if let Some(loss) = line["loss"].as_f64() {
            updated += 1;
            assert!(loss.is_finite(), "{line}");
            assert_eq!(line["first_epoch_max_ratio_deviation"], 0.0, "{line}");
            assert!(line["entropy"].as_f64().unwrap() > 0.0, "{line}");
            assert!(line["kl"].as_f64().unwrap() >= 0.0, "{line}");
        }
        for key in [
            "generate_s",
            "reward_wait_s",
            "update_s",
            "gen_tokens_per_s",
        ] {
            assert!(line[key].is_number(), "{key}: {line}");
        }
    }
    assert!(updated > 0, "at least one group had signal: {steps:?}");
    assert_eq!(
        std::fs::read_to_string(run.join("grpo/verdict-chain.toml")).unwrap(),
        CHAIN
    );
    assert!(run.join("grpo/reward.svg").is_file() && run.join("grpo/loss.svg").is_file());

    // Resume: picks up at step 2 with the saved optimizer state and finishes the stage.
    let resumed =
        grpo::run_grpo::<CpuTrainBackend>(&config, run, &GrpoOptions::default(), &device).unwrap();
    assert_eq!((resumed.start_step, resumed.end_step), (2, 3));
    let state = checkpoint::load::<verdict_trainer::backend::CpuBackend>(
        &run.join("grpo/checkpoints/step-0000003"),
        &Default::default(),
    )
    .unwrap()
    .state;
    assert_eq!((state.stage.as_str(), state.step), ("grpo", 3));
    let steps = verdict_trainer::metrics::read_values(&run.join("grpo/metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|v| v["split"] == "train")
        .count();
    assert_eq!(steps, 3);
}
