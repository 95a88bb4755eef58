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
//!    drop the groups without signal ([`objective::group_advantages_with`]); with
//!    `dynamic_sampling_rounds` (DAPO), draw new prompts for as many groups as lacked signal and
//!    repeat phases 1–3 for them, up to that many rounds;
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
mod step;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, CheckpointError, TrainerState};
use crate::config::{GrpoInit, RewardConfig, TrainConfig};
use crate::data::Problem;
use crate::eval::{self, RewardEval};
use crate::generate::SamplingConfig;
use crate::metrics::{self, MetricsError, MetricsLog};
use crate::model::MoeTransformer;
use crate::reward::server::{self, LocalServer, ServerError};
use crate::reward::{quantile, RewardError, RewardSummary, Rewards};
use crate::tokenizer::{Tokenizer, TokenizerError};
use crate::train::{self, TrainError};
use step::{Generation, StepContext, StepRewards};

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
    /// Mean reasoning length in tokens (inside `<think>…</think>`), over the completions that
    /// open and close it; absent when none does.
    pub reasoning_len: Option<f64>,
    /// Share of scored completions the `format` verifier found well formed (one
    /// `<think>…</think>` at the start, then an answer).
    pub think_rate: Option<f64>,
    /// Mean language consistency of the reasoning (the `format` verifier's), over the
    /// completions that have some.
    pub language_consistency: Option<f64>,
    /// Pass rate per problem family, over the step's completions.
    pub family_pass_rates: std::collections::BTreeMap<String, f64>,
    /// Groups generated (dynamic sampling's extra groups included).
    pub groups: usize,
    /// Groups drawn by dynamic sampling to replace groups without signal.
    #[serde(default)]
    pub groups_resampled: usize,
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

/// The checkpoint GRPO starts from in `stage_dir`: the one `reference.json` names, else the
/// one `init` names, recorded there so that a resume keeps the same reference policy.
fn reference_init(init: &GrpoInit, run_dir: &Path, stage_dir: &Path) -> Result<PathBuf, GrpoError> {
    let reference_path = stage_dir.join("reference.json");
    match std::fs::read_to_string(&reference_path) {
        Ok(text) => Ok(serde_json::from_str::<Reference>(&text)
            .map_err(|e| GrpoError::Io {
                path: reference_path.clone(),
                source: std::io::Error::other(e),
            })?
            .init),
        Err(_) => {
            let init = resolve_init(init, run_dir)?;
            let json =
                serde_json::to_string_pretty(&Reference { init: init.clone() }).unwrap_or_default();
            std::fs::write(&reference_path, json).map_err(io(&reference_path))?;
            Ok(init)
        }
    }
}

/// The held-out evaluation during GRPO: each result logged to the metrics (`heldout`, and
/// `heldout_greedy` when sampling), the time it takes summed.
struct Heldout<'a> {
    config: &'a TrainConfig,
    tokenizer: &'a Tokenizer,
    problems: Vec<Problem>,
    rewards: &'a Rewards,
    /// Seconds spent evaluating.
    seconds: f64,
}

impl Heldout<'_> {
    /// Score the held-out problems with `model` after `step` steps and log the result.
    fn evaluate<B: AutodiffBackend>(
        &mut self,
        model: &MoeTransformer<B>,
        step: usize,
        log: &mut MetricsLog,
        device: &B::Device,
    ) -> Result<RewardEval, GrpoError> {
        let t0 = Instant::now();
        let policy = model.valid();
        let (result, greedy) = heldout_eval(
            &policy,
            self.config,
            self.tokenizer,
            &self.problems,
            self.rewards,
            device,
        )?;
        self.seconds += t0.elapsed().as_secs_f64();
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
    }
}

/// What the run's steps add up to, for the report.
#[derive(Debug, Default)]
struct Totals {
    generate_s: f64,
    reward_wait_s: f64,
    update_s: f64,
    latencies: Vec<f64>,
    groups: usize,
    groups_skipped: usize,
    groups_zero_signal: usize,
    rollouts_masked: usize,
    max_ratio_deviation: f64,
    max_generation_diff: f64,
}

impl Totals {
    /// Add a step: its record and its rewards.
    fn add(&mut self, record: &StepRecord, rewards: StepRewards) {
        self.generate_s += record.generate_s;
        self.reward_wait_s += record.reward_wait_s;
        self.update_s += record.update_s;
        self.latencies.extend(rewards.latencies);
        self.groups += record.groups;
        self.groups_skipped += rewards.skipped;
        self.groups_zero_signal += rewards.zero_signal;
        self.rollouts_masked += rewards.masked;
        if let Some(dev) = record.first_epoch_max_ratio_deviation {
            self.max_ratio_deviation = self.max_ratio_deviation.max(dev);
        }
        if let Some(diff) = record.generation_log_prob_max_diff {
            self.max_generation_diff = self.max_generation_diff.max(diff);
        }
    }
}

/// The record of a step's rewards, before the update.
fn step_record(step: usize, lr: f64, groups: usize, rewards: &StepRewards) -> StepRecord {
    StepRecord {
        stage: "grpo".into(),
        split: "train".into(),
        step: step + 1,
        lr,
        groups,
        groups_skipped: rewards.skipped,
        zero_signal_share: rewards.zero_signal as f64 / rewards.scored_groups.max(1) as f64,
        rollouts_masked: rewards.masked,
        response_len: rewards.response_tokens as f64 / rewards.responses.max(1) as f64,
        reasoning_len: (rewards.reasoning_closed > 0)
            .then(|| rewards.reasoning_tokens as f64 / rewards.reasoning_closed as f64),
        ..StepRecord::default()
    }
}

/// Phase 5: the step's reward summary and timings into `record`.
fn complete_record(
    record: &mut StepRecord,
    rewards: &StepRewards,
    generate_s: f64,
    generated_tokens: usize,
    update_s: f64,
) {
    let summary = RewardSummary::of(&rewards.readings);
    record.mean_reward = summary.mean_reward;
    record.pass_rate = summary.pass_rate;
    record.format_score = summary.format_score;
    record.verifiers = summary.verifiers;
    record.think_rate = summary.think_rate;
    record.language_consistency = summary.language_consistency;
    record.family_pass_rates = summary.family_pass_rates;
    record.generate_s = generate_s;
    record.reward_wait_s = rewards.wait_s;
    record.update_s = update_s;
    record.gen_tokens_per_s = generated_tokens as f64 / generate_s.max(1e-9);
    record.reward_latency_p50_s = quantile(&rewards.latencies, 0.5);
    record.reward_latency_p99_s = quantile(&rewards.latencies, 0.99);
}

/// The progress bar over `steps` steps, hidden unless `visible`.
fn progress_bar(visible: bool, steps: usize) -> ProgressBar {
    let bar = if visible {
        ProgressBar::new(steps as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("grpo");
    bar
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
    let init = reference_init(&grpo.init, run_dir, &stage_dir)?;
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
    let mut heldout = Heldout {
        config,
        tokenizer,
        problems: heldout_problems,
        rewards: &rewards,
        seconds: 0.0,
    };
    if resume.is_none() {
        let before = heldout.evaluate(&model, 0, &mut log, device)?;
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
    let bar = progress_bar(options.progress, end_step.saturating_sub(start_step));

    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let clock_offset = state.elapsed_s;
    let mut totals = Totals::default();
    let mut steps_without_rewards = 0;
    let mut last_checkpoint = resume.clone().unwrap_or_default();
    let mut interrupted = false;
    let ctx = StepContext {
        grpo,
        problems: &prepared.train,
        tokenizer,
        rewards: &rewards,
    };

    for step in start_step..end_step {
        if interrupt.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        let lr = grpo.optim.lr_at(step, total);
        let mut rng = step::step_rng(config.data.seed, step);
        let policy = model.valid();

        // 1–2. Generate each group and send it for scoring at once.
        let Generation {
            groups,
            seconds: mut step_generate,
            tokens: mut generated_tokens,
        } = step::generate_groups(
            &policy,
            &ctx,
            step,
            0..grpo.prompts_per_step,
            &mut rng,
            device,
        )?;

        // 3. Collect the rewards; advantages per group.
        let mut scored = step::collect_rewards(groups, &ctx, step);
        // Dynamic sampling: replace the groups without signal by new prompts' groups.
        let mut drawn = grpo.prompts_per_step;
        for _ in 0..grpo.dynamic_sampling_rounds {
            let missing = grpo.prompts_per_step.saturating_sub(scored.signal_groups());
            if missing == 0 || scored.scored_groups == 0 {
                break;
            }
            let more = step::generate_groups(
                &policy,
                &ctx,
                step,
                drawn..drawn + missing,
                &mut rng,
                device,
            )?;
            drawn += missing;
            step_generate += more.seconds;
            generated_tokens += more.tokens;
            scored.merge(step::collect_rewards(more.groups, &ctx, step));
        }
        if scored.scored_groups == 0 {
            steps_without_rewards += 1;
            if steps_without_rewards >= MAX_STEPS_WITHOUT_REWARDS {
                return Err(GrpoError::NoRewards {
                    steps: steps_without_rewards,
                    reason: scored.last_skip,
                });
            }
        } else {
            steps_without_rewards = 0;
        }

        // 4. The update.
        let t0 = Instant::now();
        let mut record = step_record(step, lr, drawn, &scored);
        record.groups_resampled = drawn - grpo.prompts_per_step;
        if !scored.rows.is_empty() {
            let batch = step::old_policy_pass::<B>(
                &policy,
                reference.as_ref(),
                &scored.rows,
                grpo.temperature,
                tokenizer.eos(),
                &mut record,
                device,
            );
            let real_tokens = batch.real_tokens;
            model = step::optimize(model, &mut optim, batch, grpo, lr, &mut record)?;
            let secs = t0.elapsed().as_secs_f64();
            record.train_tokens_per_s = Some((real_tokens * grpo.epochs) as f64 / secs.max(1e-9));
        }
        let step_update = t0.elapsed().as_secs_f64();

        // 5. Log the step.
        complete_record(
            &mut record,
            &scored,
            step_generate,
            generated_tokens,
            step_update,
        );
        log.write(&record)?;
        let (zero_signal, scored_groups) = (scored.zero_signal, scored.scored_groups);
        totals.add(&record, scored);
        state.step = step + 1;
        state.tokens += generated_tokens as u64;
        state.elapsed_s = clock_offset + started.elapsed().as_secs_f64();
        bar.set_message(format!(
            "reward {:.3} pass {:.2} zero-signal {}/{}",
            record.mean_reward, record.pass_rate, zero_signal, scored_groups
        ));
        bar.inc(1);

        // 6. Evaluate and checkpoint when due.
        let last = state.step == end_step;
        let stopping = interrupt.load(Ordering::SeqCst);
        if (grpo.eval_every > 0 && state.step % grpo.eval_every == 0) || last {
            let point = heldout.evaluate(&model, state.step, &mut log, device)?;
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
    let curve = plot(&metrics_path, &stage_dir)?;
    Ok(GrpoReport {
        start_step,
        end_step: state.step,
        interrupted,
        init,
        endpoints,
        heldout: curve,
        generate_s: totals.generate_s,
        reward_wait_s: totals.reward_wait_s,
        update_s: totals.update_s,
        eval_s: heldout.seconds,
        wall_s: started.elapsed().as_secs_f64(),
        reward_latency_p50_s: quantile(&totals.latencies, 0.5),
        reward_latency_p99_s: quantile(&totals.latencies, 0.99),
        groups: totals.groups,
        groups_skipped: totals.groups_skipped,
        groups_zero_signal: totals.groups_zero_signal,
        rollouts_masked: totals.rollouts_masked,
        first_epoch_max_ratio_deviation: totals.max_ratio_deviation,
        generation_log_prob_max_diff: totals.max_generation_diff,
        checkpoint: last_checkpoint,
    })
}

/// Draw `reward.svg` (train mean reward, pass rate and well-formed `<think>` share; held-out
/// pass rate, parse rate and mean reward), `lengths.svg` (completion and reasoning length) and
/// `loss.svg` from the stage's metrics; returns the held-out curve.
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
            ("held-out parse rate", series("heldout", "parse_rate"), true),
            (
                "train well-formed <think> share",
                series("train", "think_rate"),
                false,
            ),
        ],
    )?;
    metrics::plot_lines(
        &stage_dir.join("lengths.svg"),
        "grpo: completion and reasoning length per step",
        "tokens",
        &[
            ("completion length", series("train", "response_len"), false),
            (
                "reasoning length (inside <think>, closed ones)",
                series("train", "reasoning_len"),
                false,
            ),
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
