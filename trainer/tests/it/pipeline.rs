use std::path::Path;

use verdict_trainer::backend::{CpuBackend, CpuTrainBackend};
use verdict_trainer::checkpoint;
use verdict_trainer::config::{AttentionConfig, TrainConfig};
use verdict_trainer::eval;
use verdict_trainer::generate::SamplingConfig;
use verdict_trainer::train::{self, Stage, StageOptions, StageReport};

/// The tiny preset shrunk so a few steps take seconds.
pub(crate) fn micro() -> TrainConfig {
    let mut config = TrainConfig::load("tiny").unwrap();
    let p = &mut config.policy;
    p.vocab_size = 400;
    p.d_model = 32;
    p.n_layers = 2;
    p.n_heads = 2;
    p.attention = AttentionConfig::Mha { head_dim: 16 };
    p.dense_ffn_dim = 64;
    p.moe.n_routed = 4;
    p.moe.expert_ffn_dim = 32;
    config.optim.warmup_steps = 2;
    config.optim.lr = 1e-2;
    config.data.problems = 300;
    config.data.seq_len = 64;
    config.data.batch_size = 8;
    config.run.eval_every = 4;
    config.run.checkpoint_every = 4;
    config.run.eval_batches = 2;
    config
}

fn stage(
    stage: Stage,
    config: &TrainConfig,
    dir: &Path,
    steps: usize,
    stop_after: Option<usize>,
) -> StageReport {
    let init = (stage == Stage::Sft)
        .then(|| checkpoint::latest(&dir.join("pretrain/checkpoints")))
        .flatten();
    let options = StageOptions {
        steps: Some(steps),
        stop_after,
        init,
        fresh: false,
        progress: false,
    };
    train::run_stage::<CpuTrainBackend>(stage, config, dir, &options, &Default::default()).unwrap()
}

#[test]
fn pretrain_resume_sft_and_sample() {
    let config = micro();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();

    // Pretraining, interrupted after 4 of 8 steps.
    let first = stage(Stage::Pretrain, &config, run, 8, Some(4));
    assert_eq!((first.start_step, first.end_step), (0, 4));
    let before = first.heldout_before.unwrap();
    assert!(before.is_finite() && first.train_first.unwrap().is_finite());
    assert!(run
        .join("pretrain/checkpoints/step-0000004/model.safetensors")
        .is_file());
    assert!(run
        .join("pretrain/checkpoints/step-0000004/config.json")
        .is_file());
    assert!(run.join("tokenizer.json").is_file());
    assert!(run.join("problems/heldout.jsonl").is_file());

    // Resumed: picks up at step 4 and ends at 8 with a lower held-out loss.
    let resumed = stage(Stage::Pretrain, &config, run, 8, None);
    assert_eq!((resumed.start_step, resumed.end_step), (4, 8));
    assert!(resumed.heldout_before.is_none());
    assert!(
        resumed.heldout_after < before - 0.5,
        "held-out {before} -> {}",
        resumed.heldout_after
    );
    assert!(run.join("pretrain/loss.svg").is_file());
    let records = verdict_trainer::metrics::read(&run.join("pretrain/metrics.jsonl")).unwrap();
    assert_eq!(records.iter().filter(|r| r.split == "train").count(), 8);

    // The resumed run matches an uninterrupted one (same data stream, optimizer state restored).
    // Same tokenizer: BPE merges among equal counts need not come out in the same order.
    let straight_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        run.join("tokenizer.json"),
        straight_dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let straight = stage(Stage::Pretrain, &config, straight_dir.path(), 8, None);
    assert!(
        (straight.heldout_after - resumed.heldout_after).abs() < 1e-4,
        "uninterrupted {} vs resumed {}",
        straight.heldout_after,
        resumed.heldout_after
    );

    // SFT from the pretrained checkpoint.
    let sft = stage(Stage::Sft, &config, run, 4, None);
    let sft_before = sft.heldout_before.unwrap();
    assert!(
        sft.heldout_after < sft_before,
        "{sft_before} -> {}",
        sft.heldout_after
    );

    // The SFT checkpoint reloads (weights checked against config.json) and samples.
    let loaded = checkpoint::load::<CpuBackend>(&sft.checkpoint, &Default::default()).unwrap();
    assert_eq!(loaded.state.step, 4);
    assert_eq!(loaded.config, config);
    let prepared = train::prepare(&config, run).unwrap();
    let sampling = SamplingConfig {
        temperature: 0.7,
        top_p: 0.95,
        max_new_tokens: 8,
        stop_tokens: vec![prepared.tokenizer.eos()],
        seed: 0,
    };
    let answers = eval::sample_answers(
        &loaded.model,
        &prepared.tokenizer,
        &prepared.heldout[..3],
        &sampling,
        2,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(
        answers[0].rollout["problem_id"],
        prepared.heldout[0].id.as_str()
    );
}
