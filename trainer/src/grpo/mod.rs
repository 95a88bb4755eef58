//! GRPO with verdict's rewards (DeepSeekMath, arXiv:2402.03300, §4.1; the R1-Zero recipe of
//! DeepSeek-R1, arXiv:2501.12948, §2.2, in miniature).
//!
//! One step:
//! 1. draw `prompts_per_step` training problems (from an RNG seeded by the step, so a resumed
//!    run draws what an uninterrupted one would);
//! 2. for each, sample a group of `G` completions at temperature `T` (no nucleus cut) and send
//!    the group to verdict with `ScoreBatch` at once ([`rewards`]), so scoring runs while the
//!    next group is generated;
//! 3. collect the groups' scores (each within its deadline; a late or failed group is skipped
//!    and logged), compute group-relative advantages with masked `error` scores left out, and
//!    drop the groups without signal ([`objective::group_advantages`]);
//! 4. right-pad the kept completions into one batch (to its longest row), take `log π_old` from
//!    one no-grad forward on the training path (and `log π_ref` from the frozen reference), then
//!    run `μ` epochs of: forward, the loss of [`objective`], backward, global-norm clipping
//!    ([`crate::grad_norm`]), AdamW at the step's learning rate, and the router-bias update from
//!    the real tokens' expert loads.
//!
//! Every step appends a line to `grpo/metrics.jsonl`; held-out problems are scored every
//! `eval_every` steps; checkpoints under `grpo/checkpoints/` resume exactly (weights, AdamW
//! moments, step; the data and sampling seeds follow from the step).

pub mod objective;
pub mod rewards;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::batches::{right_padded, Batch};
use crate::checkpoint::{self, CheckpointError, TrainerState};
use crate::config::{GrpoInit, RewardConfig, TrainConfig};
use crate::data::Problem;
use crate::eval::{self, RewardEval};
use crate::generate::{generate, SamplingConfig};
use crate::metrics::{self, MetricsError, MetricsLog};
use crate::model::MoeTransformer;
use crate::tokenizer::{Tokenizer, TokenizerError};
use crate::train::{self, TrainError};
use objective::{group_advantages, grpo_loss, LossInputs};
use rewards::{quantile, GroupOutcome, Reading, RewardError, RewardSummary, Rewards};
use server::{LocalServer, ServerError};

/// How long a local `verdict serve` may take to print its address.
const SERVER_START: Duration = Duration::from_secs(120);
/// Consecutive steps without a single scored group after which the run stops.
const MAX_STEPS_WITHOUT_REWARDS: usize = 5;

/// Errors of the GRPO stage.
#[derive(Debug, thiserror::Error)]
pub enum GrpoError {
    /// Preparing the run directory, a checkpoint or the metrics failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The metrics log or a plot failed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The local reward server could not be started.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The reward client could not be set up.
    #[error(transparent)]
    Rewards(#[from] RewardError),
    /// There is no checkpoint to start from.
    #[error("no checkpoint to start GRPO from under {0}; run the stage first or set grpo.init")]
    NoInit(PathBuf),
    /// A generated rollout does not fit verdict's rollout format (a bug).
    #[error("rollout {id} is not a valid verdict rollout: {source}")]
    Rollout {
        /// The rollout id.
        id: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The loss stopped being a finite number.
    #[error("GRPO loss is not finite at step {0}")]
    NonFinite(usize),
    /// The reward service answered no group for several steps in a row.
    #[error("no group was scored in {steps} consecutive steps (last: {reason}); is the reward service up?")]
    NoRewards {
        /// Steps without rewards.
        steps: usize,
        /// The last skip reason.
        reason: String,
    },
    /// A run-directory file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Options of one `grpo` invocation.
#[derive(Debug, Clone, Default)]
pub struct GrpoOptions {
    /// Total steps (default: `grpo.steps`).
    pub steps: Option<usize>,
    /// Stop after this many steps in this invocation (resume later).
    pub stop_after: Option<usize>,
    /// Discard this stage's checkpoints and metrics and start over.
    pub fresh: bool,
    /// Reward endpoints; overrides `grpo.reward.endpoints`. Empty: the config's, and if those
    /// are empty too, a local `verdict serve`.
    pub endpoints: Vec<String>,
    /// Draw a progress bar.
    pub progress: bool,
    /// Stop cleanly (checkpoint, server stopped) on ctrl-c.
    pub handle_ctrl_c: bool,
}

/// Held-out evaluation at one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldoutPoint {
    /// The step.
    pub step: usize,
    /// Share of held-out problems whose answer passed every test.
    pub pass_rate: f64,
    /// Share that passed the parse gate.
    pub parse_rate: f64,
    /// Mean reward.
    pub mean_reward: f64,
    /// Answers per problem behind these rates.
    pub samples: usize,
    /// Pass rate of the greedy answers, when the evaluation samples at a positive temperature.
    pub greedy_pass_rate: Option<f64>,
}

/// What a `grpo` invocation did.
#[derive(Debug, Clone, Serialize)]
pub struct GrpoReport {
    /// The step it started from (non-zero after a resume).
    pub start_step: usize,
    /// The step it reached.
    pub end_step: usize,
    /// Whether ctrl-c stopped it early.
    pub interrupted: bool,
    /// The checkpoint the policy and the reference started from.
    pub init: PathBuf,
    /// The reward endpoints used.
    pub endpoints: Vec<String>,
    /// Held-out evaluations of the whole stage (earlier invocations included).
    pub heldout: Vec<HeldoutPoint>,
    /// Seconds spent generating (this invocation).
    pub generate_s: f64,
    /// Seconds blocked waiting for rewards after generating.
    pub reward_wait_s: f64,
    /// Seconds in the update (π_old/π_ref forwards and the μ epochs).
    pub update_s: f64,
    /// Seconds in held-out evaluations.
    pub eval_s: f64,
    /// Wall-clock seconds of this invocation.
    pub wall_s: f64,
    /// Reward latency of a group (send → answer), median, seconds.
    pub reward_latency_p50_s: f64,
    /// Reward latency, 99th percentile, seconds.
    pub reward_latency_p99_s: f64,
    /// Groups generated.
    pub groups: usize,
    /// Groups skipped (no reward within the deadline, or a failed call).
    pub groups_skipped: usize,
    /// Groups dropped for carrying no signal (all rewards equal).
    pub groups_zero_signal: usize,
    /// Completions masked out (verdict's `error` outcome).
    pub rollouts_masked: usize,
    /// Largest `|ρ − 1|` seen in a first epoch (0: π_old is the training path's own).
    pub first_epoch_max_ratio_deviation: f64,
    /// Largest `|log π_old − log p_generation|` seen (KV-cache path vs training path).
    pub generation_log_prob_max_diff: f64,
    /// The last checkpoint written.
    pub checkpoint: PathBuf,
}

/// One line of `grpo/metrics.jsonl` for a training step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepRecord {
    /// `grpo`.
    pub stage: String,
    /// `train`.
    pub split: String,
    /// Steps completed.
    pub step: usize,
    /// The loss of the first epoch (absent when no group had signal).
    pub loss: Option<f64>,
    /// The step's learning rate.
    pub lr: f64,
    /// Mean reward of the scored completions (masked ones excluded).
    pub mean_reward: f64,
    /// Share of scored completions that passed every test.
    pub pass_rate: f64,
    /// Mean `format` verifier score.
    pub format_score: Option<f64>,
    /// Mean score per verifier.
    pub verifiers: std::collections::BTreeMap<String, f64>,
    /// Mean k3 KL to the reference over completion tokens (first epoch).
    pub kl: Option<f64>,
    /// Mean per-token entropy of π_old over completion tokens, nats.
    pub entropy: Option<f64>,
    /// Share of completion tokens clipped, averaged over the epochs.
    pub clip_fraction: Option<f64>,
    /// `max |ρ − 1|` in the first epoch (0 by construction).
    pub first_epoch_max_ratio_deviation: Option<f64>,
    /// `max |log π_old − log p_generation|`.
    pub generation_log_prob_max_diff: Option<f64>,
    /// Global gradient norm before clipping (first epoch).
    pub grad_norm: Option<f64>,
    /// Mean completion length in tokens.
    pub response_len: f64,
    /// Groups generated.
    pub groups: usize,
    /// Groups skipped (reward deadline or failed call).
    pub groups_skipped: usize,
    /// Share of scored groups without signal.
    pub zero_signal_share: f64,
    /// Completions masked out (`error` outcome).
    pub rollouts_masked: usize,
    /// Busiest expert's load over the mean, averaged over MoE blocks (first epoch).
    pub expert_load_max: Option<f64>,
    /// Idlest expert's load over the mean, averaged over MoE blocks (first epoch).
    pub expert_load_min: Option<f64>,
    /// Generated tokens per second of generation.
    pub gen_tokens_per_s: f64,
    /// Trained tokens (real, all epochs) per second of update.
    pub train_tokens_per_s: Option<f64>,
    /// Seconds generating.
    pub generate_s: f64,
    /// Seconds blocked on rewards after generating.
    pub reward_wait_s: f64,
    /// Seconds updating.
    pub update_s: f64,
    /// Median group reward latency, seconds.
    pub reward_latency_p50_s: f64,
    /// 99th-percentile group reward latency, seconds.
    pub reward_latency_p99_s: f64,
}

/// One line of `grpo/metrics.jsonl` for a held-out evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldoutRecord {
    stage: String,
    split: String,
    step: usize,
    #[serde(flatten)]
    eval: RewardEval,
}

/// Which checkpoint GRPO starts from, written once per run directory so a resume keeps the same
/// reference policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reference {
    init: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> GrpoError + '_ {
    move |source| GrpoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The checkpoint `init` names in `run_dir`.
pub fn resolve_init(init: &GrpoInit, run_dir: &Path) -> Result<PathBuf, GrpoError> {
    let under = |stage: &str| {
        let dir = run_dir.join(stage).join("checkpoints");
        checkpoint::latest(&dir).ok_or(GrpoError::NoInit(dir))
    };
    match init {
        GrpoInit::Sft => under("sft"),
        GrpoInit::SftStep(step) => {
            let dir = checkpoint::step_dir(&run_dir.join("sft").join("checkpoints"), *step);
            if checkpoint::is_complete(&dir) {
                Ok(dir)
            } else {
                Err(GrpoError::NoInit(dir))
            }
        }
        GrpoInit::Pretrain => under("pretrain"),
        GrpoInit::Path(path) if path.join(checkpoint::WEIGHTS).is_file() => Ok(path.clone()),
        GrpoInit::Path(path) => Err(GrpoError::NoInit(path.clone())),
    }
}

/// The reward client, and the local server behind it when one was started: `endpoints` (else
/// `reward.endpoints`) load-balanced, or with neither a `verdict serve` on a free port whose
/// stderr goes to `log_dir/verdict-serve.log`, its chain `reward.verdict_config` or
/// `reward.verdict_chain` (written to `log_dir/verdict-chain.toml`). The server stops when the
/// handle is dropped.
pub fn reward_service(
    reward: &RewardConfig,
    endpoints: &[String],
    log_dir: &Path,
) -> Result<(Rewards, Option<LocalServer>), GrpoError> {
    let deadline = Duration::from_secs_f64(reward.deadline_s);
    let endpoints = if endpoints.is_empty() {
        reward.endpoints.clone()
    } else {
        endpoints.to_vec()
    };
    if !endpoints.is_empty() {
        return Ok((Rewards::connect(&endpoints, deadline)?, None));
    }
    let bin = server::find_verdict(reward.verdict_bin.as_deref())?;
    let chain = match &reward.verdict_chain {
        Some(text) => {
            std::fs::create_dir_all(log_dir).map_err(io(log_dir))?;
            let path = log_dir.join("verdict-chain.toml");
            std::fs::write(&path, text).map_err(io(&path))?;
            Some(path)
        }
        None => reward.verdict_config.clone(),
    };
    let server = LocalServer::start(
        &bin,
        chain.as_deref(),
        &log_dir.join("verdict-serve.log"),
        SERVER_START,
    )?;
    let rewards = Rewards::connect(&[server.endpoint()], deadline)?;
    Ok((rewards, Some(server)))
}

/// Log-probs of a batch's targets at temperature `T`, and what the forward reports.
struct PolicyPass<B: Backend> {
    /// `log softmax(z / T)[target]`, `[batch, seq]`.
    log_probs: Tensor<B, 2>,
    /// The full `log softmax(z / T)`, `[batch, seq, vocab]`.
    all: Tensor<B, 3>,
    loads: Vec<Vec<usize>>,
    balance: Option<Tensor<B, 1>>,
}

fn policy_pass<B: Backend>(
    model: &MoeTransformer<B>,
    batch: &Batch<B>,
    temperature: f32,
) -> PolicyPass<B> {
    let out = model.forward_masked(batch.inputs.clone(), &batch.valid);
    let loads = out.loads();
    let balance = out.balance_loss();
    let [rows, seq, _] = out.logits.dims();
    let all = log_softmax(out.logits.div_scalar(temperature), 2);
    let log_probs = all
        .clone()
        .gather(2, batch.targets.clone().reshape([rows, seq, 1]))
        .reshape([rows, seq]);
    PolicyPass {
        log_probs,
        all,
        loads,
        balance,
    }
}

/// Mean over MoE blocks of (max load / mean load, min load / mean load).
fn load_spread(loads: &[Vec<usize>]) -> Option<(f64, f64)> {
    let ratios: Vec<(f64, f64)> = loads
        .iter()
        .filter(|l| l.iter().sum::<usize>() > 0)
        .map(|l| {
            let mean = l.iter().sum::<usize>() as f64 / l.len() as f64;
            let max = *l.iter().max().unwrap_or(&0) as f64;
            let min = *l.iter().min().unwrap_or(&0) as f64;
            (max / mean, min / mean)
        })
        .collect();
    let n = ratios.len() as f64;
    (!ratios.is_empty()).then(|| {
        (
            ratios.iter().map(|r| r.0).sum::<f64>() / n,
            ratios.iter().map(|r| r.1).sum::<f64>() / n,
        )
    })
}

fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap_or_default()
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}

/// A group as generated: the prompt, the samples, and its pending rewards.
struct Generated {
    prompt: Vec<u32>,
    /// The rollout ids, in the order of `samples`.
    ids: Vec<String>,
    samples: Vec<crate::generate::Sample>,
    pending: rewards::Pending,
}

/// Turn a sample into the rollout verdict scores.
fn rollout_of(
    problem: &Problem,
    id: String,
    tokens: &[u32],
    tokenizer: &Tokenizer,
) -> Result<verdict::Rollout, GrpoError> {
    let kept: Vec<u32> = tokens
        .iter()
        .copied()
        .filter(|t| *t != tokenizer.eos())
        .collect();
    let completion = tokenizer.decode(&kept)?;
    serde_json::from_value(problem.rollout_json(&id, &completion))
        .map_err(|source| GrpoError::Rollout { id, source })
}

/// Score the held-out problems with the current policy: `grpo.eval_samples` answers per problem
/// at `grpo.eval_temperature` (and, when that is positive, the greedy answers too, returned
/// second), with the rollouts' token budget.
pub fn heldout_eval<B: Backend>(
    model: &MoeTransformer<B>,
    config: &TrainConfig,
    tokenizer: &Tokenizer,
    problems: &[Problem],
    rewards: &Rewards,
    device: &B::Device,
) -> Result<(RewardEval, Option<RewardEval>), GrpoError> {
    let sampling = |temperature: f32| SamplingConfig {
        temperature,
        top_p: 1.0,
        max_new_tokens: config.grpo.max_new_tokens,
        stop_tokens: vec![tokenizer.eos()],
        seed: config.data.seed,
    };
    let temperature = config.grpo.eval_temperature;
    let samples = if temperature > 0.0 {
        config.grpo.eval_samples
    } else {
        1
    };
    let main = eval::reward_eval(
        model,
        tokenizer,
        problems,
        &sampling(temperature),
        samples,
        32,
        rewards,
        device,
    )?;
    let greedy = (temperature > 0.0)
        .then(|| {
            eval::reward_eval(
                model,
                tokenizer,
                problems,
                &sampling(0.0),
                1,
                32,
                rewards,
                device,
            )
        })
        .transpose()?;
    Ok((main, greedy))
}

/// Run (or resume) GRPO in `run_dir/grpo`.
pub fn run_grpo<B: AutodiffBackend>(
    config: &TrainConfig,
    run_dir: &Path,
    options: &GrpoOptions,
    device: &B::Device,
) -> Result<GrpoReport, GrpoError> {
    let started = Instant::now();
    let grpo = &config.grpo;
    let prepared = train::prepare(config, run_dir)?;
    let tokenizer = &prepared.tokenizer;
    let stage_dir = run_dir.join("grpo");
    let checkpoints = stage_dir.join("checkpoints");
    if options.fresh && stage_dir.exists() {
        std::fs::remove_dir_all(&stage_dir).map_err(io(&stage_dir))?;
    }
    std::fs::create_dir_all(&stage_dir).map_err(io(&stage_dir))?;
    let total = options.steps.unwrap_or(grpo.steps);
    let mut heldout_problems = prepared.heldout.clone();
    if grpo.eval_problems > 0 {
        heldout_problems.truncate(grpo.eval_problems);
    }

    // The reference policy: the checkpoint the stage started from, kept across resumes.
    let reference_path = stage_dir.join("reference.json");
    let init = match std::fs::read_to_string(&reference_path) {
        Ok(text) => {
            serde_json::from_str::<Reference>(&text)
                .map_err(|e| GrpoError::Io {
                    path: reference_path.clone(),
                    source: std::io::Error::other(e),
                })?
                .init
        }
        Err(_) => {
            let init = resolve_init(&grpo.init, run_dir)?;
            let json =
                serde_json::to_string_pretty(&Reference { init: init.clone() }).unwrap_or_default();
            std::fs::write(&reference_path, json).map_err(io(&reference_path))?;
            init
        }
    };
    let load_init = || {
        checkpoint::load_weights(
            MoeTransformer::<B>::new(&config.policy, device),
            &init.join(checkpoint::WEIGHTS),
        )
    };
    let reference = (grpo.kl_beta > 0.0)
        .then(|| load_init().map(|m| m.valid()))
        .transpose()?;

    let mut optim = train::adamw(&grpo.optim).init::<B, MoeTransformer<B>>();
    let resume = checkpoint::latest(&checkpoints);
    let (mut model, mut state) = match &resume {
        Some(dir) => {
            let (model, state, restored) = train::load_resumable(dir, optim, device)?;
            optim = restored;
            tracing::info!(checkpoint = %dir.display(), step = state.step, "Resuming GRPO.");
            (model, state)
        }
        None => (
            load_init()?,
            TrainerState {
                stage: "grpo".into(),
                ..TrainerState::default()
            },
        ),
    };

    let (rewards, _server) = reward_service(&grpo.reward, &options.endpoints, &stage_dir)?;
    let interrupt = Arc::new(AtomicBool::new(false));
    if options.handle_ctrl_c {
        rewards.stop_on_ctrl_c(Arc::clone(&interrupt));
    }
    let endpoints = rewards.endpoints();
    tracing::info!(?endpoints, init = %init.display(), "GRPO rewards from verdict.");

    let metrics_path = stage_dir.join("metrics.jsonl");
    let mut log = MetricsLog::open(&metrics_path)?;
    let mut eval_s = 0.0;
    let mut evaluate = |model: &MoeTransformer<B>,
                        step: usize,
                        log: &mut MetricsLog|
     -> Result<RewardEval, GrpoError> {
        let t0 = Instant::now();
        let policy = model.valid();
        let (result, greedy) = heldout_eval(
            &policy,
            config,
            tokenizer,
            &heldout_problems,
            &rewards,
            device,
        )?;
        eval_s += t0.elapsed().as_secs_f64();
        log.write(&HeldoutRecord {
            stage: "grpo".into(),
            split: "heldout".into(),
            step,
            eval: result.clone(),
        })?;
        if let Some(greedy) = greedy {
            log.write(&HeldoutRecord {
                stage: "grpo".into(),
                split: "heldout_greedy".into(),
                step,
                eval: greedy,
            })?;
        }
        Ok(result)
    };
    if resume.is_none() {
        let before = evaluate(&model, 0, &mut log)?;
        tracing::info!(
            pass_rate = before.summary.pass_rate,
            parse_rate = before.summary.parse_rate,
            mean_reward = before.summary.mean_reward,
            "Held-out before GRPO."
        );
    }

    let start_step = state.step;
    let end_step = options
        .stop_after
        .map_or(total, |n| (start_step + n).min(total));
    let bar = if options.progress {
        ProgressBar::new(end_step.saturating_sub(start_step) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("grpo");

    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let clock_offset = state.elapsed_s;
    let (mut generate_s, mut reward_wait_s, mut update_s) = (0.0, 0.0, 0.0);
    let mut latencies: Vec<f64> = Vec::new();
    let (mut groups_total, mut groups_skipped, mut groups_zero, mut masked_total) = (0, 0, 0, 0);
    let (mut max_ratio_dev, mut max_gen_diff) = (0.0f64, 0.0f64);
    let mut steps_without_rewards = 0;
    let mut last_checkpoint = resume.clone().unwrap_or_default();
    let mut interrupted = false;
    let pad = tokenizer.eos();
    let temperature = grpo.temperature;

    for step in start_step..end_step {
        if interrupt.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        let lr = grpo.optim.lr_at(step, total);
        let mut rng = StdRng::seed_from_u64(
            config.data.seed ^ 0x27d4_eb2f_1656_67c5 ^ (step as u64).wrapping_mul(0x9e37_79b9),
        );
        let policy = model.valid();

        // 1–2. Generate each group and send it for scoring at once.
        let mut generated: Vec<Generated> = Vec::with_capacity(grpo.prompts_per_step);
        let mut step_generate = 0.0;
        let mut generated_tokens = 0usize;
        for g in 0..grpo.prompts_per_step {
            let problem = &prepared.train[rng.random_range(0..prepared.train.len())];
            let prompt = tokenizer.encode(&problem.prompt())?;
            let sampling = SamplingConfig {
                temperature,
                top_p: 1.0,
                max_new_tokens: grpo.max_new_tokens,
                stop_tokens: vec![pad],
                seed: rng.random(),
            };
            let t0 = Instant::now();
            let prompts = vec![prompt.clone(); grpo.group_size];
            let samples = generate(&policy, &prompts, &sampling, pad, device);
            step_generate += t0.elapsed().as_secs_f64();
            generated_tokens += samples.iter().map(|s| s.tokens.len()).sum::<usize>();
            let rollouts = samples
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let id = format!("{}#{step}.{g}.{i}", problem.id);
                    rollout_of(problem, id, &s.tokens, tokenizer)
                })
                .collect::<Result<Vec<_>, _>>()?;
            generated.push(Generated {
                ids: rollouts.iter().map(|r| r.id.clone()).collect(),
                pending: rewards.send(rollouts),
                prompt,
                samples,
            });
        }

        // 3. Collect the rewards; advantages per group.
        let t0 = Instant::now();
        let mut readings: Vec<Reading> = Vec::new();
        let mut step_latencies = Vec::new();
        let (mut skipped, mut zero_signal, mut scored_groups, mut masked) = (0, 0, 0, 0);
        let mut last_skip = String::new();
        // (prompt length, tokens, advantage, generation log-probs)
        let mut rows: Vec<(usize, Vec<u32>, f64, Vec<f32>)> = Vec::new();
        let mut response_tokens = 0usize;
        let mut responses = 0usize;
        for (g, group) in generated.into_iter().enumerate() {
            response_tokens += group.samples.iter().map(|s| s.tokens.len()).sum::<usize>();
            responses += group.samples.len();
            let outcome = match rewards.wait(group.pending) {
                GroupOutcome::Scored { scores, latency } => {
                    match rewards::in_sent_order(scores, &group.ids) {
                        Ok(scores) => GroupOutcome::Scored { scores, latency },
                        Err(reason) => GroupOutcome::Skipped { reason },
                    }
                }
                skipped => skipped,
            };
            match outcome {
                GroupOutcome::Skipped { reason } => {
                    tracing::warn!(step = step + 1, group = g, %reason, "Group skipped.");
                    skipped += 1;
                    last_skip = reason;
                }
                GroupOutcome::Scored { scores, latency } => {
                    scored_groups += 1;
                    step_latencies.push(latency.as_secs_f64());
                    let group_readings: Vec<Reading> = scores.iter().map(Reading::of).collect();
                    let group_rewards: Vec<Option<f64>> =
                        group_readings.iter().map(|r| r.reward).collect();
                    masked += group_rewards.iter().filter(|r| r.is_none()).count();
                    for score in scores
                        .iter()
                        .filter(|s| s.outcome == verdict::Outcome::Error)
                    {
                        tracing::warn!(id = %score.id, error = ?score.error, "Reward masked: verdict could not judge the rollout.");
                    }
                    readings.extend(group_readings);
                    let adv = group_advantages(&group_rewards, grpo.adv_eps);
                    if !adv.signal {
                        zero_signal += 1;
                        continue;
                    }
                    for (sample, a) in group.samples.iter().zip(&adv.advantages) {
                        if let Some(a) = a {
                            let tokens: Vec<u32> =
                                group.prompt.iter().chain(&sample.tokens).copied().collect();
                            rows.push((group.prompt.len(), tokens, *a, sample.log_probs.clone()));
                        }
                    }
                }
            }
        }
        let step_wait = t0.elapsed().as_secs_f64();
        if scored_groups == 0 {
            steps_without_rewards += 1;
            if steps_without_rewards >= MAX_STEPS_WITHOUT_REWARDS {
                return Err(GrpoError::NoRewards {
                    steps: steps_without_rewards,
                    reason: last_skip,
                });
            }
        } else {
            steps_without_rewards = 0;
        }

        // 4. The update.
        let t0 = Instant::now();
        let mut record = StepRecord {
            stage: "grpo".into(),
            split: "train".into(),
            step: step + 1,
            lr,
            groups: grpo.prompts_per_step,
            groups_skipped: skipped,
            zero_signal_share: zero_signal as f64 / scored_groups.max(1) as f64,
            rollouts_masked: masked,
            response_len: response_tokens as f64 / responses.max(1) as f64,
            ..StepRecord::default()
        };
        if !rows.is_empty() {
            let host_rows: Vec<(usize, Vec<u32>)> =
                rows.iter().map(|(p, t, _, _)| (*p, t.clone())).collect();
            let host = right_padded(&host_rows, usize::MAX, pad);
            let inner_batch = host.to_device::<B::InnerBackend>(device);
            let old = policy_pass(&policy, &inner_batch, temperature);
            let mask_inner = inner_batch.mask.clone();
            let counted = host.counted_tokens().max(1) as f64;
            // Entropy of π_old per completion token: −Σ_v p log p.
            let entropy = (old.all.clone().exp() * old.all.clone())
                .sum_dim(2)
                .neg()
                .reshape([host.batch, host.seq])
                * mask_inner.clone();
            record.entropy = Some(scalar(entropy.sum()) / counted);
            // Diagnostic: the training path's log-probs against generation's cached ones.
            let old_host = to_vec(old.log_probs.clone());
            let mut gen_diff = 0.0f64;
            for (r, (prompt_len, _, _, cached)) in rows.iter().enumerate() {
                for (i, lp) in cached.iter().enumerate() {
                    let t = prompt_len - 1 + i;
                    if t < host.seq {
                        let d = (old_host[r * host.seq + t] - lp).abs();
                        gen_diff = gen_diff.max(f64::from(d));
                    }
                }
            }
            record.generation_log_prob_max_diff = Some(gen_diff);
            max_gen_diff = max_gen_diff.max(gen_diff);
            let ref_log_probs = reference
                .as_ref()
                .map(|r| policy_pass(r, &inner_batch, temperature).log_probs);

            let batch = host.to_device::<B>(device);
            let advantages: Vec<f32> = rows.iter().map(|r| r.2 as f32).collect();
            let advantages =
                Tensor::<B, 2>::from_data(TensorData::new(advantages, [rows.len(), 1]), device);
            let old_log_probs = Tensor::<B, 2>::from_inner(old.log_probs);
            let ref_log_probs = ref_log_probs.map(Tensor::<B, 2>::from_inner);
            let mut clip_sum = 0.0;
            for epoch in 0..grpo.epochs {
                let pass = policy_pass(&model, &batch, temperature);
                let loss = grpo_loss(
                    LossInputs {
                        log_probs: pass.log_probs,
                        old_log_probs: old_log_probs.clone(),
                        ref_log_probs: ref_log_probs.clone(),
                        advantages: advantages.clone(),
                        mask: batch.mask.clone(),
                    },
                    grpo.clip_eps,
                    grpo.kl_beta,
                );
                let objective = match pass.balance {
                    Some(balance) => loss.loss.clone() + balance,
                    None => loss.loss.clone(),
                };
                let grads = GradientsParams::from_grads(objective.backward(), &model);
                let (grads, grad_norm) = crate::grad_norm::clip_global_norm(
                    &model,
                    grads,
                    f64::from(grpo.optim.grad_clip),
                );
                clip_sum += scalar(loss.clip_fraction);
                if epoch == 0 {
                    let value = scalar(loss.loss);
                    if !value.is_finite() {
                        return Err(GrpoError::NonFinite(step + 1));
                    }
                    record.loss = Some(value);
                    record.kl = loss.kl.map(scalar);
                    record.grad_norm = Some(grad_norm);
                    let dev = scalar(loss.max_ratio_deviation);
                    record.first_epoch_max_ratio_deviation = Some(dev);
                    max_ratio_dev = max_ratio_dev.max(dev);
                    if let Some((max, min)) = load_spread(&pass.loads) {
                        record.expert_load_max = Some(max);
                        record.expert_load_min = Some(min);
                    }
                }
                model = optim.step(lr, model, grads);
                model.update_router_biases(&pass.loads);
            }
            record.clip_fraction = Some(clip_sum / grpo.epochs as f64);
            let real_tokens = host.valid.iter().filter(|v| **v).count();
            let secs = t0.elapsed().as_secs_f64();
            record.train_tokens_per_s = Some((real_tokens * grpo.epochs) as f64 / secs.max(1e-9));
        }
        let step_update = t0.elapsed().as_secs_f64();

        let summary = RewardSummary::of(&readings);
        record.mean_reward = summary.mean_reward;
        record.pass_rate = summary.pass_rate;
        record.format_score = summary.format_score;
        record.verifiers = summary.verifiers;
        record.generate_s = step_generate;
        record.reward_wait_s = step_wait;
        record.update_s = step_update;
        record.gen_tokens_per_s = generated_tokens as f64 / step_generate.max(1e-9);
        record.reward_latency_p50_s = quantile(&step_latencies, 0.5);
        record.reward_latency_p99_s = quantile(&step_latencies, 0.99);
        log.write(&record)?;

        generate_s += step_generate;
        reward_wait_s += step_wait;
        update_s += step_update;
        latencies.extend(step_latencies);
        groups_total += grpo.prompts_per_step;
        groups_skipped += skipped;
        groups_zero += zero_signal;
        masked_total += masked;
        state.step = step + 1;
        state.tokens += generated_tokens as u64;
        state.elapsed_s = clock_offset + started.elapsed().as_secs_f64();
        bar.set_message(format!(
            "reward {:.3} pass {:.2} zero-signal {}/{}",
            record.mean_reward, record.pass_rate, zero_signal, scored_groups
        ));
        bar.inc(1);

        let last = state.step == end_step;
        let stopping = interrupt.load(Ordering::SeqCst);
        if (grpo.eval_every > 0 && state.step % grpo.eval_every == 0) || last {
            let point = evaluate(&model, state.step, &mut log)?;
            bar.println(format!(
                "grpo step {}: held-out pass rate {:.3}, parse rate {:.3}, mean reward {:.3}",
                state.step,
                point.summary.pass_rate,
                point.summary.parse_rate,
                point.summary.mean_reward
            ));
        }
        if state.step % grpo.checkpoint_every.max(1) == 0 || last || stopping {
            let dir = checkpoint::step_dir(&checkpoints, state.step);
            train::save_with_optimizer(&dir, &model, &optim, &recorder, config, &state)?;
            last_checkpoint = dir;
        }
    }
    bar.finish_and_clear();
    let heldout = plot(&metrics_path, &stage_dir)?;
    Ok(GrpoReport {
        start_step,
        end_step: state.step,
        interrupted,
        init,
        endpoints,
        heldout,
        generate_s,
        reward_wait_s,
        update_s,
        eval_s,
        wall_s: started.elapsed().as_secs_f64(),
        reward_latency_p50_s: quantile(&latencies, 0.5),
        reward_latency_p99_s: quantile(&latencies, 0.99),
        groups: groups_total,
        groups_skipped,
        groups_zero_signal: groups_zero,
        rollouts_masked: masked_total,
        first_epoch_max_ratio_deviation: max_ratio_dev,
        generation_log_prob_max_diff: max_gen_diff,
        checkpoint: last_checkpoint,
    })
}

/// Draw `reward.svg` (train mean reward and pass rate, held-out pass rate) and `loss.svg` from
/// the stage's metrics; returns the held-out curve.
pub fn plot(metrics_path: &Path, stage_dir: &Path) -> Result<Vec<HeldoutPoint>, MetricsError> {
    let lines = metrics::read_values(metrics_path)?;
    let series = |split: &str, field: &str| -> Vec<(f64, f64)> {
        lines
            .iter()
            .filter(|v| v["split"] == split)
            .filter_map(|v| Some((v["step"].as_f64()?, v[field].as_f64()?)))
            .collect()
    };
    let greedy = series("heldout_greedy", "pass_rate");
    let heldout: Vec<HeldoutPoint> = lines
        .iter()
        .filter(|v| v["split"] == "heldout")
        .filter_map(|v| {
            let step = v["step"].as_u64()? as usize;
            Some(HeldoutPoint {
                step,
                pass_rate: v["pass_rate"].as_f64()?,
                parse_rate: v["parse_rate"].as_f64()?,
                mean_reward: v["mean_reward"].as_f64()?,
                samples: v["samples"].as_u64().unwrap_or(1) as usize,
                greedy_pass_rate: greedy
                    .iter()
                    .rev()
                    .find(|(s, _)| *s as usize == step)
                    .map(|(_, p)| *p),
            })
        })
        .collect();
    metrics::plot_lines(
        &stage_dir.join("reward.svg"),
        "grpo: rewards per step",
        "reward / rate",
        &[
            ("train mean reward", series("train", "mean_reward"), false),
            ("train pass rate", series("train", "pass_rate"), false),
            ("held-out pass rate", series("heldout", "pass_rate"), true),
            (
                "held-out mean reward",
                series("heldout", "mean_reward"),
                true,
            ),
            ("held-out pass rate, greedy", greedy, true),
        ],
    )?;
    metrics::plot_lines(
        &stage_dir.join("loss.svg"),
        "grpo: loss per step (first epoch)",
        "loss",
        &[
            ("loss", series("train", "loss"), false),
            ("kl", series("train", "kl"), false),
        ],
    )?;
    Ok(heldout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_spread_is_max_and_min_over_the_mean() {
        let (max, min) = load_spread(&[vec![4, 2, 2, 0], vec![2, 2, 2, 2]]).unwrap();
        assert!((max - 1.5).abs() < 1e-12 && (min - 0.5).abs() < 1e-12);
        assert_eq!(load_spread(&[vec![0, 0]]), None);
    }

    #[test]
    fn init_names_the_newest_sft_checkpoint_or_the_one_of_a_step() {
        let run = tempfile::tempdir().unwrap();
        let sft = run.path().join("sft").join("checkpoints");
        for step in [100, 200] {
            let dir = checkpoint::step_dir(&sft, step);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(checkpoint::STATE), "{}").unwrap();
        }
        let newest = resolve_init(&GrpoInit::Sft, run.path()).unwrap();
        assert_eq!(newest, checkpoint::step_dir(&sft, 200));
        let early = resolve_init(&GrpoInit::SftStep(100), run.path()).unwrap();
        assert_eq!(early, checkpoint::step_dir(&sft, 100));
        let missing = resolve_init(&GrpoInit::SftStep(300), run.path()).unwrap_err();
        assert!(missing.to_string().contains("step-0000300"), "{missing}");
        let parsed: GrpoInit = serde_json::from_str(r#"{"sft_step": 100}"#).unwrap();
        assert_eq!(parsed, GrpoInit::SftStep(100));
    }
}
