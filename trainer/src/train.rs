//! The supervised loop shared by `pretrain` (next-token prediction on the base corpus) and `sft`
//! (prompt → `<think>…</think>` + fenced answer, loss on the completion only).
//!
//! Each step draws its batch from an RNG seeded by `(seed, stage, step)`, so a resumed run sees
//! the same data as an uninterrupted one. After every optimizer step the MoE router biases get
//! the aux-loss-free update (DeepSeek-V3 §2.1.2). Checkpoints (weights, config, trainer state,
//! optimizer state) are written every `checkpoint_every` steps and at the end; a later run of
//! the same stage resumes from the newest one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::batches::{Batch, BatchSource, HostBatch, PackedCorpus, SftExamples};
use crate::checkpoint::{self, CheckpointError, TrainerState};
use crate::config::{OptimConfig, TrainConfig};
use crate::data::{self, Problem};
use crate::metrics::{self, MetricsError, MetricsLog, Record};
use crate::model::MoeTransformer;
use crate::tokenizer::{Tokenizer, TokenizerError};

/// Errors of a training stage.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A checkpoint could not be saved or loaded.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The metrics log or plot failed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// A run-directory file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The loss stopped being a finite number.
    #[error("{stage} loss is not finite at step {step}")]
    NonFinite {
        /// The stage.
        stage: Stage,
        /// The step.
        step: usize,
    },
    /// The tokenizer and the policy disagree on the vocabulary.
    #[error("tokenizer has {tokenizer} tokens but the policy's vocab_size is {policy}")]
    Vocab {
        /// Tokens in the tokenizer.
        tokenizer: usize,
        /// `policy.vocab_size`.
        policy: usize,
    },
    /// SFT needs a pretrained checkpoint to start from and none was found.
    #[error("no checkpoint to start {0} from; run pretrain first or pass --init")]
    NoInit(Stage),
}

/// A supervised stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Next-token prediction on the base corpus.
    Pretrain,
    /// Supervised fine-tuning on prompt → reasoning + answer.
    Sft,
}

impl Stage {
    /// The stage's directory and metrics name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Pretrain => "pretrain",
            Stage::Sft => "sft",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Mean cross-entropy of `logits` (`[batch, seq, vocab]`) against `targets`, weighted by `mask`.
///
/// Reference: `loss = -sum_t m_t log softmax(z_t)[y_t] / sum_t m_t`
pub fn masked_cross_entropy<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    mask: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let [batch, seq, _] = logits.dims();
    let picked = log_softmax(logits, 2)
        .gather(2, targets.reshape([batch, seq, 1]))
        .reshape([batch, seq]);
    let count = mask.clone().sum().clamp_min(1.0);
    (picked * mask).sum().neg() / count
}

/// Everything the stages read from the run directory: the problems and the tokenizer.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Training problems.
    pub train: Vec<Problem>,
    /// Held-out problems (never trained on, not seen by the tokenizer).
    pub heldout: Vec<Problem>,
    /// The tokenizer (`run_dir/tokenizer.json`).
    pub tokenizer: Tokenizer,
}

fn write_file(path: &Path, text: &str) -> Result<(), TrainError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| TrainError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// AdamW with the stage's weight decay and `ε` (the learning rate is passed per step).
pub fn adamw(optim: &OptimConfig) -> AdamWConfig {
    AdamWConfig::new()
        .with_weight_decay(optim.weight_decay)
        .with_epsilon(optim.adam_eps)
}

/// Generate the problems, write them in rollout format (`problems/{train,heldout}.jsonl`), and
/// train the tokenizer on the training split (or load `tokenizer.json` if already there).
pub fn prepare(config: &TrainConfig, run_dir: &Path) -> Result<Prepared, TrainError> {
    let mut problems = data::generate(config.data.problems, config.data.seed);
    for problem in &mut problems {
        problem.template = config.data.template;
        if problem.in_share(config.data.tagged_statement_share) {
            problem.markup = data::StatementMarkup::Tags;
        }
    }
    let (train, heldout) = data::split(problems, config.data.heldout_fraction);
    for (name, set) in [("train", &train), ("heldout", &heldout)] {
        let lines: Vec<String> = set
            .iter()
            .map(|p| p.rollout_json(&p.id, "").to_string())
            .collect();
        write_file(
            &run_dir.join("problems").join(format!("{name}.jsonl")),
            &(lines.join("\n") + "\n"),
        )?;
    }
    let path = run_dir.join("tokenizer.json");
    let tokenizer = if path.is_file() {
        Tokenizer::load(&path)?
    } else {
        let texts = train
            .iter()
            .flat_map(|p| [p.corpus_document(), p.prompt() + &p.sft_completion()]);
        let tokenizer = Tokenizer::train(texts, config.policy.vocab_size)?;
        tokenizer.save(&path)?;
        tokenizer
    };
    if tokenizer.vocab_size() > config.policy.vocab_size {
        return Err(TrainError::Vocab {
            tokenizer: tokenizer.vocab_size(),
            policy: config.policy.vocab_size,
        });
    }
    Ok(Prepared {
        train,
        heldout,
        tokenizer,
    })
}

/// The batch sources of a stage.
pub struct StageSources {
    /// Training batches.
    pub train: Box<dyn BatchSource>,
    /// Held-out batches.
    pub heldout: Box<dyn BatchSource>,
}

/// The training and held-out batch sources of a stage.
pub fn sources(stage: Stage, prepared: &Prepared) -> Result<StageSources, TrainError> {
    let tok = &prepared.tokenizer;
    match stage {
        Stage::Pretrain => {
            let corpus = |set: &[Problem]| -> Result<PackedCorpus, TrainError> {
                let docs = set
                    .iter()
                    .map(|p| tok.encode(&p.corpus_document()))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(PackedCorpus::new(docs))
            };
            Ok(StageSources {
                train: Box::new(corpus(&prepared.train)?),
                heldout: Box::new(corpus(&prepared.heldout)?),
            })
        }
        Stage::Sft => {
            let examples = |set: &[Problem]| -> Result<SftExamples, TrainError> {
                let pairs = set
                    .iter()
                    .map(|p| Ok((tok.encode(&p.prompt())?, tok.encode(&p.sft_completion())?)))
                    .collect::<Result<Vec<_>, TokenizerError>>()?;
                Ok(SftExamples::new(pairs, tok.eos()))
            };
            Ok(StageSources {
                train: Box::new(examples(&prepared.train)?),
                heldout: Box::new(examples(&prepared.heldout)?),
            })
        }
    }
}

/// Mean loss of `model` over fixed batches, weighted by loss-bearing tokens.
pub fn evaluate<B: Backend>(
    model: &MoeTransformer<B>,
    batches: &[HostBatch],
    device: &B::Device,
) -> f64 {
    let (mut total, mut count) = (0.0, 0usize);
    for host in batches {
        let n = host.counted_tokens();
        if n == 0 {
            continue;
        }
        let batch = host.to_device::<B>(device);
        let logits = model.forward_masked(batch.inputs, &batch.valid).logits;
        let loss: f64 = masked_cross_entropy(logits, batch.targets, batch.mask)
            .into_scalar()
            .elem();
        total += loss * n as f64;
        count += n;
    }
    total / count.max(1) as f64
}

/// What one optimizer step reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// The masked cross-entropy of the batch (before the update).
    pub loss: f64,
    /// The sequence-wise balance loss, where enabled.
    pub balance_loss: Option<f64>,
    /// Tokens routed to each expert, per MoE block (real tokens only).
    pub loads: Vec<Vec<usize>>,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
}

/// One supervised optimizer step: masked cross-entropy plus the balance loss, backward, global
/// gradient-norm clipping to `max_grad_norm` (0: none), the optimizer update, then the
/// aux-loss-free router-bias update from this batch's expert loads (real tokens only).
pub fn supervised_step<B, O>(
    model: MoeTransformer<B>,
    optim: &mut O,
    batch: Batch<B>,
    lr: f64,
    max_grad_norm: f64,
) -> (MoeTransformer<B>, StepStats)
where
    B: AutodiffBackend,
    O: Optimizer<MoeTransformer<B>, B>,
{
    let out = model.forward_masked(batch.inputs, &batch.valid);
    let loads = out.loads();
    let balance = out.balance_loss();
    let ce = masked_cross_entropy(out.logits, batch.targets, batch.mask);
    let loss = match &balance {
        Some(b) => ce.clone() + b.clone(),
        None => ce.clone(),
    };
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let (grads, grad_norm) = crate::grad_norm::clip_global_norm(&model, grads, max_grad_norm);
    let mut model = optim.step(lr, model, grads);
    model.update_router_biases(&loads);
    let stats = StepStats {
        loss: ce.into_scalar().elem(),
        balance_loss: balance.map(|b| b.into_scalar().elem()),
        loads,
        grad_norm,
    };
    (model, stats)
}

/// Options of one invocation of a stage.
#[derive(Debug, Clone, Default)]
pub struct StageOptions {
    /// Total steps of the stage (default: from the config's `run` section).
    pub steps: Option<usize>,
    /// Stop after this many steps in this invocation (the stage can be resumed later).
    pub stop_after: Option<usize>,
    /// Weights to start from when not resuming (SFT: the pretrain checkpoint).
    pub init: Option<PathBuf>,
    /// Ignore existing checkpoints of this stage and start over.
    pub fresh: bool,
    /// Draw a progress bar.
    pub progress: bool,
}

/// What a stage invocation did.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// The stage.
    pub stage: Stage,
    /// The step it started from (non-zero after a resume).
    pub start_step: usize,
    /// The step it reached.
    pub end_step: usize,
    /// Held-out loss before the first step of the stage (absent on resume).
    pub heldout_before: Option<f64>,
    /// Held-out loss at the end.
    pub heldout_after: f64,
    /// Training loss of the first and last steps of this invocation.
    pub train_first: Option<f64>,
    /// Training loss of the last step.
    pub train_last: Option<f64>,
    /// Median milliseconds per step of this invocation.
    pub median_step_ms: f64,
    /// Wall-clock seconds of this invocation.
    pub wall_s: f64,
    /// The last checkpoint written.
    pub checkpoint: PathBuf,
}

/// Run (or resume) one stage in `run_dir/<stage>`.
pub fn run_stage<B: AutodiffBackend>(
    stage: Stage,
    config: &TrainConfig,
    run_dir: &Path,
    options: &StageOptions,
    device: &B::Device,
) -> Result<StageReport, TrainError> {
    let started = Instant::now();
    let prepared = prepare(config, run_dir)?;
    let StageSources { train, heldout } = sources(stage, &prepared)?;
    let data = &config.data;
    let eval_batches = heldout.fixed(config.run.eval_batches, data.batch_size, data.seq_len);
    let stage_dir = run_dir.join(stage.name());
    let checkpoints = stage_dir.join("checkpoints");
    let total = options.steps.unwrap_or(match stage {
        Stage::Pretrain => config.run.pretrain_steps,
        Stage::Sft => config.run.sft_steps,
    });

    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let mut optim = adamw(&config.optim).init::<B, MoeTransformer<B>>();
    let resume = (!options.fresh)
        .then(|| checkpoint::latest(&checkpoints))
        .flatten();
    if options.fresh && stage_dir.exists() {
        std::fs::remove_dir_all(&stage_dir).map_err(|source| TrainError::Io {
            path: stage_dir.clone(),
            source,
        })?;
    }
    let (mut model, mut state) = match &resume {
        Some(dir) => {
            let (model, state, restored) = load_resumable(dir, optim, device)?;
            optim = restored;
            tracing::info!(checkpoint = %dir.display(), step = state.step, "Resuming.");
            (model, state)
        }
        None => {
            let model = match &options.init {
                Some(init) => checkpoint::load_weights(
                    MoeTransformer::new(&config.policy, device),
                    &init.join(checkpoint::WEIGHTS),
                )?,
                None if stage == Stage::Sft => return Err(TrainError::NoInit(stage)),
                None => MoeTransformer::seeded(&config.policy, device, config.data.seed),
            };
            let state = TrainerState {
                stage: stage.name().to_string(),
                ..TrainerState::default()
            };
            (model, state)
        }
    };
    std::fs::create_dir_all(&stage_dir).map_err(|source| TrainError::Io {
        path: stage_dir.clone(),
        source,
    })?;
    let metrics_path = stage_dir.join("metrics.jsonl");
    let mut log = MetricsLog::open(&metrics_path)?;
    let heldout_record = |step: usize, loss: f64, tokens: u64| Record {
        stage: stage.name().to_string(),
        split: "heldout".into(),
        step,
        loss,
        lr: None,
        balance_loss: None,
        max_load_ratio: None,
        step_ms: None,
        tokens,
    };
    let heldout_before = if resume.is_none() {
        let loss = evaluate(&model.valid(), &eval_batches, device);
        log.write(&heldout_record(0, loss, 0))?;
        Some(loss)
    } else {
        None
    };

    let start_step = state.step;
    let end_step = options
        .stop_after
        .map_or(total, |n| (start_step + n).min(total));
    let bar = if options.progress {
        ProgressBar::new((end_step - start_step) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(stage.name());

    let stage_tag = match stage {
        Stage::Pretrain => 0x9e37_79b9_u64,
        Stage::Sft => 0x85eb_ca6b_u64,
    };
    let mut step_ms = Vec::new();
    let (mut train_first, mut train_last) = (None, None);
    let mut heldout_after = heldout_before.unwrap_or(f64::NAN);
    let mut last_checkpoint = resume.clone().unwrap_or_default();
    let clock_offset = state.elapsed_s;
    for step in start_step..end_step {
        let t0 = Instant::now();
        let mut rng =
            StdRng::seed_from_u64(data.seed ^ stage_tag ^ (step as u64).wrapping_mul(0x2545_f491));
        let host = train.sample(&mut rng, data.batch_size, data.seq_len);
        let lr = config.optim.lr_at(step, total);
        let (next, stats) = supervised_step(
            model,
            &mut optim,
            host.to_device::<B>(device),
            lr,
            f64::from(config.optim.grad_clip),
        );
        model = next;
        let ce_value = stats.loss;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if !ce_value.is_finite() {
            return Err(TrainError::NonFinite { stage, step });
        }
        step_ms.push(ms);
        state.step = step + 1;
        state.tokens += host.counted_tokens() as u64;
        state.elapsed_s = clock_offset + started.elapsed().as_secs_f64();
        train_first.get_or_insert(ce_value);
        train_last = Some(ce_value);
        log.write(&Record {
            stage: stage.name().to_string(),
            split: "train".into(),
            step: state.step,
            loss: ce_value,
            lr: Some(lr),
            balance_loss: stats.balance_loss,
            max_load_ratio: max_load_ratio(&stats.loads),
            step_ms: Some(ms),
            tokens: state.tokens,
        })?;
        bar.set_message(format!("loss {ce_value:.3}"));
        bar.inc(1);

        let last = state.step == end_step;
        if state.step % config.run.eval_every.max(1) == 0 || last {
            heldout_after = evaluate(&model.valid(), &eval_batches, device);
            log.write(&heldout_record(state.step, heldout_after, state.tokens))?;
            bar.println(format!(
                "{stage} step {}: train {ce_value:.3}, held-out {heldout_after:.3}",
                state.step
            ));
        }
        if state.step % config.run.checkpoint_every.max(1) == 0 || last {
            let dir = checkpoint::step_dir(&checkpoints, state.step);
            save_with_optimizer(&dir, &model, &optim, &recorder, config, &state)?;
            last_checkpoint = dir;
        }
    }
    bar.finish_and_clear();
    let records = metrics::read(&metrics_path)?;
    metrics::plot(
        &records,
        &format!("{stage}: loss per step"),
        &stage_dir.join("loss.svg"),
    )?;
    step_ms.sort_by(f64::total_cmp);
    Ok(StageReport {
        stage,
        start_step,
        end_step,
        heldout_before,
        heldout_after,
        train_first,
        train_last,
        median_step_ms: step_ms.get(step_ms.len() / 2).copied().unwrap_or(0.0),
        wall_s: started.elapsed().as_secs_f64(),
        checkpoint: last_checkpoint,
    })
}

/// Load a checkpoint written by [`save_with_optimizer`]: the model (with the parameter ids the
/// optimizer's moments are keyed by), its state, and `optim` with the saved moments.
pub fn load_resumable<B, O>(
    dir: &Path,
    optim: O,
    device: &B::Device,
) -> Result<(MoeTransformer<B>, TrainerState, O), TrainError>
where
    B: AutodiffBackend,
    O: Optimizer<MoeTransformer<B>, B>,
{
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let loaded = checkpoint::load::<B>(dir, device)?;
    // The optimizer's moments are keyed by parameter id, which safetensors does not keep:
    // restore the ids from burn's own record of the model.
    let ids_path = dir.join(checkpoint::RESUME_MODEL);
    let model_record =
        recorder
            .load(ids_path.clone(), device)
            .map_err(|e| CheckpointError::Optimizer {
                path: ids_path,
                message: e.to_string(),
            })?;
    let model = loaded.model.load_record(model_record);
    let optim_path = dir.join(checkpoint::OPTIM);
    let record =
        recorder
            .load(optim_path.clone(), device)
            .map_err(|e| CheckpointError::Optimizer {
                path: optim_path,
                message: e.to_string(),
            })?;
    Ok((model, loaded.state, optim.load_record(record)))
}

/// Write a resumable checkpoint: optimizer moments, burn's model record (parameter ids), then
/// weights, config and state (`state.json` last: it marks the checkpoint complete).
pub fn save_with_optimizer<B, O>(
    dir: &Path,
    model: &MoeTransformer<B>,
    optim: &O,
    recorder: &BinFileRecorder<FullPrecisionSettings>,
    config: &TrainConfig,
    state: &TrainerState,
) -> Result<(), TrainError>
where
    B: AutodiffBackend,
    O: Optimizer<MoeTransformer<B>, B>,
{
    // The optimizer state goes first: the state file written by `checkpoint::save` marks a
    // checkpoint complete.
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let optim_path = dir.join(checkpoint::OPTIM);
    recorder
        .record(optim.to_record(), optim_path.clone())
        .map_err(|e| CheckpointError::Optimizer {
            path: optim_path,
            message: e.to_string(),
        })?;
    let model_path = dir.join(checkpoint::RESUME_MODEL);
    recorder
        .record(model.clone().into_record(), model_path.clone())
        .map_err(|e| CheckpointError::Optimizer {
            path: model_path,
            message: e.to_string(),
        })?;
    checkpoint::save(dir, model, config, state)?;
    Ok(())
}

/// The busiest expert's load over the mean load, averaged over MoE blocks.
fn max_load_ratio(loads: &[Vec<usize>]) -> Option<f64> {
    let ratios: Vec<f64> = loads
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mean = l.iter().sum::<usize>() as f64 / l.len() as f64;
            *l.iter().max().unwrap_or(&0) as f64 / mean.max(1e-9)
        })
        .collect();
    (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;

    type B = CpuBackend;

    #[test]
    fn masked_cross_entropy_ignores_masked_positions() {
        let device = Default::default();
        // Two positions over a 3-token vocabulary; only the first counts.
        let logits = Tensor::<B, 3>::from_data(
            TensorData::new(vec![2.0f32, 0.0, 0.0, 0.0, 0.0, 9.0], [1, 2, 3]),
            &device,
        );
        let targets =
            Tensor::<B, 2, Int>::from_data(TensorData::new(vec![0i64, 0], [1, 2]), &device);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 0.0], [1, 2]), &device);
        let loss: f32 = masked_cross_entropy(logits, targets, mask).into_scalar();
        let expected = -(2f32.exp() / (2f32.exp() + 2.0)).ln();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn load_ratio_is_one_when_balanced() {
        assert_eq!(max_load_ratio(&[vec![4, 4, 4, 4]]), Some(1.0));
        assert_eq!(max_load_ratio(&[vec![8, 0, 0, 0]]), Some(4.0));
        assert_eq!(max_load_ratio(&[]), None);
    }
}
