//! R1-Zero in miniature, end to end: a micro base model pretrained on code only, then GRPO with
//! the R1-Zero template (no SFT) against a real `verdict serve`, and the reward's format
//! component rises from what the base produces by chance.

use verdict_trainer::backend::CpuTrainBackend;
use verdict_trainer::config::{GrpoInit, TrainConfig};
use verdict_trainer::data::PromptTemplate;
use verdict_trainer::grpo::{self, GrpoOptions};
use verdict_trainer::train::{self, Stage, StageOptions};

/// Steps averaged at each end of the run to compare the format component.
const WINDOW: usize = 8;

/// The micro model with the R1-Zero template, its base corpus marking a share of statements
/// with the tags (as `tiny-zero` does).
fn micro_zero(seed: u64) -> TrainConfig {
    let mut config = crate::pipeline::micro();
    config.data.seed = seed;
    config.data.template = PromptTemplate::R1Zero;
    config.data.tagged_statement_share = 0.25;
    config.policy.max_seq_len = 160;
    let g = &mut config.grpo;
    g.init = GrpoInit::Pretrain;
    g.steps = 40;
    g.prompts_per_step = 4;
    g.group_size = 8;
    g.epochs = 1;
    g.kl_beta = 0.0;
    g.max_new_tokens = 40;
    g.eval_problems = 8;
    g.eval_every = 0;
    g.eval_temperature = 1.0;
    g.eval_samples = 1;
    g.checkpoint_every = 100;
    g.optim.lr = 3e-3;
    g.optim.warmup_steps = 2;
    g.reward.verdict_bin = Some(crate::grpo::verdict_bin());
    g.reward.verdict_chain = Some(crate::grpo::CHAIN.to_string());
    config
}

#[test]
fn r1_zero_from_a_base_checkpoint_learns_the_format_from_rewards_alone() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let config = micro_zero(17);
    let device = Default::default();

    // The base: next-token prediction on code documents only (no template, no SFT).
    let options = StageOptions {
        steps: Some(60),
        ..StageOptions::default()
    };
    train::run_stage::<CpuTrainBackend>(Stage::Pretrain, &config, run, &options, &device).unwrap();
    assert!(!run.join("sft").exists());

    let report =
        grpo::run_grpo::<CpuTrainBackend>(&config, run, &GrpoOptions::default(), &device).unwrap();
    assert_eq!(report.end_step, config.grpo.steps);
    assert!(report.init.starts_with(run.join("pretrain/checkpoints")));
    assert_eq!(report.groups_skipped, 0, "{report:?}");
    assert_eq!(report.first_epoch_max_ratio_deviation, 0.0);

    let lines = verdict_trainer::metrics::read_values(&run.join("grpo/metrics.jsonl")).unwrap();
    let steps: Vec<&serde_json::Value> = lines.iter().filter(|v| v["split"] == "train").collect();
    assert_eq!(steps.len(), config.grpo.steps);
    let format: Vec<f64> = steps
        .iter()
        .map(|v| v["verifiers"]["format"].as_f64().unwrap())
        .collect();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let first = mean(&format[..WINDOW]);
    let last = mean(&format[format.len() - WINDOW..]);
    eprintln!("format component: first {WINDOW} steps {first:.3}, last {WINDOW} steps {last:.3}");
    // Measured over data seeds 1–7 and 17 (release build): first 8 steps 0.105–0.324, last 8
    // steps 0.488–0.500, rises 0.17–0.40 (this seed: 0.148 -> 0.488); with the format step
    // scoring a reasoning of no words 0 (semantics 3), seeds 1, 3, 5 and 17 (dev profile): first
    // 0.102–0.189, last 0.492–0.500 (this seed: 0.111 -> 0.494). The base never opens
    // `<think>` here; what it learns is to end its prose with `</think>` and write code after
    // it, which earns the language-consistency half of the format score.
    assert!(
        last > first + 0.1 && last > 0.4,
        "the format component rises: {first:.3} -> {last:.3} ({format:?})"
    );
    // The R1-Zero signatures are logged every step.
    for line in &steps {
        assert!(line["response_len"].as_f64().unwrap() > 0.0, "{line}");
        assert!(
            (0.0..=1.0).contains(&line["think_rate"].as_f64().unwrap()),
            "{line}"
        );
        assert!(line["family_pass_rates"].is_object(), "{line}");
        assert!(line.get("reasoning_len").is_some(), "{line}");
    }
    assert!(steps.iter().any(|v| v["language_consistency"].is_number()));
    assert!(run.join("grpo/lengths.svg").is_file() && run.join("grpo/reward.svg").is_file());
}
