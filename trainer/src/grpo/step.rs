//! The phases of one GRPO step (see the module documentation of [`super`]): generate the
//! groups and send them to verdict, collect their rewards and advantages as [`Row`]s, take
//! `log π_old` (and `log π_ref`) of the rows, and update the policy on them.

use std::time::Instant;

use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::objective::{group_advantages_with, grpo_loss, LossInputs, LossSettings};
use super::{GrpoError, StepRecord};
use crate::batches::{right_padded, Batch};
use crate::config::GrpoConfig;
use crate::data::Problem;
use crate::generate::{generate, Sample, SamplingConfig};
use crate::model::MoeTransformer;
use crate::reward::client::{self as rewards, GroupOutcome, Reading, Rewards};
use crate::tokenizer::Tokenizer;

/// What every step reads: the stage's settings, the training problems, the tokenizer and the
/// reward client.
pub(super) struct StepContext<'a> {
    pub(super) grpo: &'a GrpoConfig,
    pub(super) problems: &'a [Problem],
    pub(super) tokenizer: &'a Tokenizer,
    pub(super) rewards: &'a Rewards,
}

/// The step's RNG: seeded by the step, so a resumed run draws what an uninterrupted one would.
pub(super) fn step_rng(seed: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0x27d4_eb2f_1656_67c5 ^ (step as u64).wrapping_mul(0x9e37_79b9))
}

/// A group as generated: the prompt, the samples, and its pending rewards.
pub(super) struct Generated {
    prompt: Vec<u32>,
    /// The rollout ids, in the order of `samples`.
    ids: Vec<String>,
    samples: Vec<Sample>,
    pending: rewards::Pending,
}

/// The groups of a step as generated, and what generating them took.
pub(super) struct Generation {
    pub(super) groups: Vec<Generated>,
    /// Seconds generating.
    pub(super) seconds: f64,
    /// Tokens generated.
    pub(super) tokens: usize,
}

/// Phases 1–2: draw `groups` training problems from `rng`, sample a group of
/// `grpo.group_size` completions to each from `policy` (a seed from `rng` per group), and send
/// each group to verdict as soon as it is generated. The groups are numbered from
/// `first_group` in the rollout ids (`problem#step.group.sample`).
pub(super) fn generate_groups<B: Backend>(
    policy: &MoeTransformer<B>,
    ctx: &StepContext<'_>,
    step: usize,
    groups: std::ops::Range<usize>,
    rng: &mut StdRng,
    device: &B::Device,
) -> Result<Generation, GrpoError> {
    let grpo = ctx.grpo;
    let tokenizer = ctx.tokenizer;
    let pad = tokenizer.eos();
    let mut generated: Vec<Generated> = Vec::with_capacity(groups.len());
    let mut step_generate = 0.0;
    let mut generated_tokens = 0usize;
    for g in groups {
        let problem = &ctx.problems[rng.random_range(0..ctx.problems.len())];
        let prompt = tokenizer.encode(&problem.prompt())?;
        let sampling = SamplingConfig {
            temperature: grpo.temperature,
            top_p: 1.0,
            max_new_tokens: grpo.max_new_tokens,
            stop_tokens: vec![pad],
            seed: rng.random(),
        };
        let t0 = Instant::now();
        let prompts = vec![prompt.clone(); grpo.group_size];
        let samples = generate(policy, &prompts, &sampling, pad, device);
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
            pending: ctx.rewards.send(rollouts),
            prompt,
            samples,
        });
    }
    Ok(Generation {
        groups: generated,
        seconds: step_generate,
        tokens: generated_tokens,
    })
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

/// One completion the update trains on.
pub(super) struct Row {
    /// Length of the prompt at the front of `tokens`.
    prompt_len: usize,
    /// The prompt, then the completion.
    tokens: Vec<u32>,
    /// The completion's group-relative advantage.
    advantage: f64,
    /// Generation's log-probs of the completion tokens (a diagnostic).
    generation_log_probs: Vec<f32>,
}

/// A step's rewards: what verdict answered for its groups, and the rows with signal.
pub(super) struct StepRewards {
    /// The readings of every scored completion.
    pub(super) readings: Vec<Reading>,
    /// The scored groups' reward latencies, seconds.
    pub(super) latencies: Vec<f64>,
    /// Groups skipped (deadline or failed call).
    pub(super) skipped: usize,
    /// Scored groups without signal.
    pub(super) zero_signal: usize,
    /// Groups scored.
    pub(super) scored_groups: usize,
    /// Completions masked out (`error` outcome).
    pub(super) masked: usize,
    /// Why the last skipped group was skipped.
    pub(super) last_skip: String,
    /// The completions of the groups with signal, with their advantages.
    pub(super) rows: Vec<Row>,
    /// Completion tokens over all groups.
    pub(super) response_tokens: usize,
    /// Completions over all groups.
    pub(super) responses: usize,
    /// Tokens inside `<think>…</think>` over the completions that close it.
    pub(super) reasoning_tokens: usize,
    /// Completions that open `<think>` and close it.
    pub(super) reasoning_closed: usize,
    /// Seconds blocked on the rewards.
    pub(super) wait_s: f64,
}

impl StepRewards {
    /// Groups scored with signal (kept for the update).
    pub(super) fn signal_groups(&self) -> usize {
        self.scored_groups - self.zero_signal
    }

    /// Add the rewards of more groups of the same step (dynamic sampling).
    pub(super) fn merge(&mut self, more: StepRewards) {
        self.readings.extend(more.readings);
        self.latencies.extend(more.latencies);
        self.skipped += more.skipped;
        self.zero_signal += more.zero_signal;
        self.scored_groups += more.scored_groups;
        self.masked += more.masked;
        if !more.last_skip.is_empty() {
            self.last_skip = more.last_skip;
        }
        self.rows.extend(more.rows);
        self.response_tokens += more.response_tokens;
        self.responses += more.responses;
        self.reasoning_tokens += more.reasoning_tokens;
        self.reasoning_closed += more.reasoning_closed;
        self.wait_s += more.wait_s;
    }
}

/// Tokens strictly between the first `open` and the first `close` after it; `None` when the
/// completion does not open and then close its reasoning.
pub(super) fn reasoning_len(tokens: &[u32], open: u32, close: u32) -> Option<usize> {
    let start = tokens.iter().position(|t| *t == open)?;
    let end = tokens[start + 1..].iter().position(|t| *t == close)?;
    Some(end)
}

/// Phase 3: collect the groups' rewards (in the order sent), and the advantages per group
/// (normalised as `grpo.advantage_norm` says); a skipped group is logged, a group without
/// signal counted.
pub(super) fn collect_rewards(
    generated: Vec<Generated>,
    ctx: &StepContext<'_>,
    step: usize,
) -> StepRewards {
    let rewards = ctx.rewards;
    let (open, close) = (ctx.tokenizer.think_open(), ctx.tokenizer.think_close());
    let (mut reasoning_tokens, mut reasoning_closed) = (0usize, 0usize);
    let t0 = Instant::now();
    let mut readings: Vec<Reading> = Vec::new();
    let mut step_latencies = Vec::new();
    let (mut skipped, mut zero_signal, mut scored_groups, mut masked) = (0, 0, 0, 0);
    let mut last_skip = String::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut response_tokens = 0usize;
    let mut responses = 0usize;
    for (g, group) in generated.into_iter().enumerate() {
        response_tokens += group.samples.iter().map(|s| s.tokens.len()).sum::<usize>();
        responses += group.samples.len();
        for sample in &group.samples {
            if let Some(n) = reasoning_len(&sample.tokens, open, close) {
                reasoning_tokens += n;
                reasoning_closed += 1;
            }
        }
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
                let adv = group_advantages_with(
                    &group_rewards,
                    ctx.grpo.adv_eps,
                    ctx.grpo.advantage_norm,
                );
                if !adv.signal {
                    zero_signal += 1;
                    continue;
                }
                for (sample, a) in group.samples.iter().zip(&adv.advantages) {
                    if let Some(a) = a {
                        let tokens: Vec<u32> =
                            group.prompt.iter().chain(&sample.tokens).copied().collect();
                        rows.push(Row {
                            prompt_len: group.prompt.len(),
                            tokens,
                            advantage: *a,
                            generation_log_probs: sample.log_probs.clone(),
                        });
                    }
                }
            }
        }
    }
    StepRewards {
        readings,
        latencies: step_latencies,
        skipped,
        zero_signal,
        scored_groups,
        masked,
        last_skip,
        rows,
        response_tokens,
        responses,
        reasoning_tokens,
        reasoning_closed,
        wait_s: t0.elapsed().as_secs_f64(),
    }
}

/// The rows as one right-padded batch, with `log π_old` and `log π_ref` of their targets.
pub(super) struct UpdateBatch<B: AutodiffBackend> {
    batch: Batch<B>,
    /// `[rows, 1]`.
    advantages: Tensor<B, 2>,
    old_log_probs: Tensor<B, 2>,
    ref_log_probs: Option<Tensor<B, 2>>,
    /// Real (not padding) tokens of the batch.
    pub(super) real_tokens: usize,
}

/// Phase 4a: right-pad `rows` into one batch and take `log π_old` from one no-grad forward of
/// `policy` on the training path (and `log π_ref` from `reference`); the entropy of `π_old` and
/// its largest difference to generation's log-probs go into `record`.
pub(super) fn old_policy_pass<B: AutodiffBackend>(
    policy: &MoeTransformer<B::InnerBackend>,
    reference: Option<&MoeTransformer<B::InnerBackend>>,
    rows: &[Row],
    temperature: f32,
    pad: u32,
    record: &mut StepRecord,
    device: &B::Device,
) -> UpdateBatch<B> {
    let host_rows: Vec<(usize, Vec<u32>)> = rows
        .iter()
        .map(|r| (r.prompt_len, r.tokens.clone()))
        .collect();
    let host = right_padded(&host_rows, usize::MAX, pad);
    let inner_batch = host.to_device::<B::InnerBackend>(device);
    let old = policy_pass(policy, &inner_batch, temperature);
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
    for (r, row) in rows.iter().enumerate() {
        for (i, lp) in row.generation_log_probs.iter().enumerate() {
            let t = row.prompt_len - 1 + i;
            if t < host.seq {
                let d = (old_host[r * host.seq + t] - lp).abs();
                gen_diff = gen_diff.max(f64::from(d));
            }
        }
    }
    record.generation_log_prob_max_diff = Some(gen_diff);
    let ref_log_probs = reference.map(|r| policy_pass(r, &inner_batch, temperature).log_probs);

    let batch = host.to_device::<B>(device);
    let advantages: Vec<f32> = rows.iter().map(|r| r.advantage as f32).collect();
    let advantages =
        Tensor::<B, 2>::from_data(TensorData::new(advantages, [rows.len(), 1]), device);
    let old_log_probs = Tensor::<B, 2>::from_inner(old.log_probs);
    let ref_log_probs = ref_log_probs.map(Tensor::<B, 2>::from_inner);
    UpdateBatch {
        batch,
        advantages,
        old_log_probs,
        ref_log_probs,
        real_tokens: host.valid.iter().filter(|v| **v).count(),
    }
}

/// Phase 4b: `grpo.epochs` epochs of forward, the clipped objective (plus the balance loss),
/// backward, global-norm clipping, an optimizer step at `lr` and the router-bias update; the
/// first epoch's loss, KL, gradient norm, ratio deviation and expert loads, and the mean clip
/// fraction, go into `record`. Fails when the first epoch's loss is not finite.
pub(super) fn optimize<B: AutodiffBackend, O: Optimizer<MoeTransformer<B>, B>>(
    mut model: MoeTransformer<B>,
    optim: &mut O,
    update: UpdateBatch<B>,
    grpo: &GrpoConfig,
    lr: f64,
    record: &mut StepRecord,
) -> Result<MoeTransformer<B>, GrpoError> {
    let UpdateBatch {
        batch,
        advantages,
        old_log_probs,
        ref_log_probs,
        ..
    } = update;
    let mut clip_sum = 0.0;
    let settings = LossSettings::of(grpo);
    for epoch in 0..grpo.epochs {
        let pass = policy_pass(&model, &batch, grpo.temperature);
        let loss = grpo_loss(
            LossInputs {
                log_probs: pass.log_probs,
                old_log_probs: old_log_probs.clone(),
                ref_log_probs: ref_log_probs.clone(),
                advantages: advantages.clone(),
                mask: batch.mask.clone(),
            },
            &settings,
        );
        let objective = match pass.balance {
            Some(balance) => loss.loss.clone() + balance,
            None => loss.loss.clone(),
        };
        let grads = GradientsParams::from_grads(objective.backward(), &model);
        let (grads, grad_norm) =
            crate::grad_norm::clip_global_norm(&model, grads, f64::from(grpo.optim.grad_clip));
        clip_sum += scalar(loss.clip_fraction);
        if epoch == 0 {
            let value = scalar(loss.loss);
            if !value.is_finite() {
                return Err(GrpoError::NonFinite(record.step));
            }
            record.loss = Some(value);
            record.kl = loss.kl.map(scalar);
            record.grad_norm = Some(grad_norm);
            record.first_epoch_max_ratio_deviation = Some(scalar(loss.max_ratio_deviation));
            if let Some((max, min)) = load_spread(&pass.loads) {
                record.expert_load_max = Some(max);
                record.expert_load_min = Some(min);
            }
        }
        model = optim.step(lr, model, grads);
        model.update_router_biases(&pass.loads);
    }
    record.clip_fraction = Some(clip_sum / grpo.epochs as f64);
    Ok(model)
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
    fn reasoning_is_counted_between_the_tags_only_when_closed() {
        let (open, close) = (1, 2);
        assert_eq!(reasoning_len(&[1, 7, 7, 7, 2, 9, 0], open, close), Some(3));
        assert_eq!(reasoning_len(&[1, 2, 9], open, close), Some(0));
        assert_eq!(reasoning_len(&[1, 7, 7], open, close), None, "never closed");
        assert_eq!(
            reasoning_len(&[2, 7, 1, 7], open, close),
            None,
            "closed before opened"
        );
        assert_eq!(reasoning_len(&[9, 9], open, close), None);
    }
}
