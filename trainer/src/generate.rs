//! Batched sampling with a KV cache, and the log-probabilities a GRPO update needs.
//!
//! Prompts are left-padded to a common length; padding is masked out of attention, so each row
//! sees only its own tokens. Each step samples from `softmax(logits / T)` restricted to the
//! nucleus of mass `top_p` (Holtzman et al. 2020, "The Curious Case of Neural Text
//! Degeneration", §3.1); `T = 0` is greedy.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::model::{KvCache, MoeTransformer};

/// How to sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f32,
    /// Nucleus mass in (0, 1]; 1 disables the cut.
    pub top_p: f32,
    /// Most tokens generated per row.
    pub max_new_tokens: usize,
    /// Tokens that end a row (kept as its last token).
    pub stop_tokens: Vec<u32>,
    /// Seed of the sampler.
    pub seed: u64,
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The generated tokens, the stop token included when one ended the row.
    pub tokens: Vec<u32>,
    /// `log softmax(logits / T)[token]` of each generated token (the sampling temperature `T`,
    /// 1 when greedy; no nucleus cut), computed on the host from the KV-cache path. GRPO keeps
    /// these only as a diagnostic: its `π_old` comes from a forward on the training path.
    pub log_probs: Vec<f32>,
    /// Whether a stop token ended the row (rather than the token budget).
    pub stopped: bool,
}

/// Pick a token from `logits` (one row).
fn sample_row(logits: &[f32], config: &SamplingConfig, rng: &mut StdRng) -> usize {
    if config.temperature <= 0.0 {
        return argmax(logits);
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(usize, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i, ((l - max) / config.temperature).exp()))
        .collect();
    let total: f32 = probs.iter().map(|(_, p)| p).sum();
    probs.iter_mut().for_each(|(_, p)| *p /= total);
    probs.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Keep the smallest prefix whose mass reaches top_p.
    let mut mass = 0.0;
    let mut keep = probs.len();
    for (n, (_, p)) in probs.iter().enumerate() {
        mass += p;
        if mass >= config.top_p {
            keep = n + 1;
            break;
        }
    }
    let kept = &probs[..keep];
    let kept_mass: f32 = kept.iter().map(|(_, p)| p).sum();
    let mut draw = rng.random::<f32>() * kept_mass;
    for &(i, p) in kept {
        if draw < p {
            return i;
        }
        draw -= p;
    }
    kept[kept.len() - 1].0
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// `log softmax(logits / temperature)[index]`.
fn log_softmax_at(logits: &[f32], index: usize, temperature: f32) -> f32 {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) / t;
    let log_total = logits.iter().map(|l| (l / t - max).exp()).sum::<f32>().ln() + max;
    logits[index] / t - log_total
}

/// Continue each prompt. `pad` fills the left padding (it is masked out).
pub fn generate<B: Backend>(
    model: &MoeTransformer<B>,
    prompts: &[Vec<u32>],
    config: &SamplingConfig,
    pad: u32,
    device: &B::Device,
) -> Vec<Sample> {
    let batch = prompts.len();
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let mut samples = vec![
        Sample {
            tokens: Vec::new(),
            log_probs: Vec::new(),
            stopped: false,
        };
        batch
    ];
    if batch == 0 || width == 0 || config.max_new_tokens == 0 {
        return samples;
    }
    let mut ids = Vec::with_capacity(batch * width);
    let mut valid = Vec::with_capacity(batch);
    for prompt in prompts {
        let padding = width - prompt.len();
        ids.extend(std::iter::repeat_n(i64::from(pad), padding));
        ids.extend(prompt.iter().map(|&t| i64::from(t)));
        valid.push(
            std::iter::repeat_n(false, padding)
                .chain(std::iter::repeat_n(true, prompt.len()))
                .collect::<Vec<_>>(),
        );
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut cache = KvCache::new(model.n_layers(), batch);
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch, width]), device);
    let mut logits = model
        .forward_cached(tokens, &mut cache, Some(&valid))
        .logits;
    for _ in 0..config.max_new_tokens {
        let [_, seq, vocab] = logits.dims();
        let last: Vec<f32> = logits
            .slice([0..batch, seq - 1..seq, 0..vocab])
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap_or_default();
        let mut next = Vec::with_capacity(batch);
        for (row, sample) in samples.iter_mut().enumerate() {
            if sample.stopped {
                next.push(i64::from(pad));
                continue;
            }
            let row_logits = &last[row * vocab..(row + 1) * vocab];
            let token = sample_row(row_logits, config, &mut rng);
            sample
                .log_probs
                .push(log_softmax_at(row_logits, token, config.temperature));
            sample.tokens.push(token as u32);
            sample.stopped = config.stop_tokens.contains(&(token as u32));
            next.push(token as i64);
        }
        if samples.iter().all(|s| s.stopped) {
            break;
        }
        let step = Tensor::<B, 2, Int>::from_data(TensorData::new(next, [batch, 1]), device);
        logits = model.forward_cached(step, &mut cache, None).logits;
    }
    samples
}

/// `log p(tokens[t + 1] | tokens[..=t])` for every position: `[batch, seq - 1]`.
///
/// This is the differentiable quantity of a policy-gradient update (GRPO's ratio
/// `π_θ(o_t | q, o_<t) / π_old(o_t | q, o_<t)`).
pub fn token_log_probs<B: Backend>(
    model: &MoeTransformer<B>,
    tokens: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let [batch, seq] = tokens.dims();
    let inputs = tokens.clone().slice([0..batch, 0..seq - 1]);
    let targets = tokens
        .slice([0..batch, 1..seq])
        .reshape([batch, seq - 1, 1]);
    let log_probs = log_softmax(model.forward(inputs).logits, 2);
    log_probs.gather(2, targets).reshape([batch, seq - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::config::TrainConfig;

    type B = CpuBackend;

    fn model() -> MoeTransformer<B> {
        let mut config = TrainConfig::load("tiny").unwrap().policy;
        config.vocab_size = 40;
        config.d_model = 32;
        config.n_layers = 2;
        config.n_heads = 2;
        config.attention = crate::config::AttentionConfig::Mha { head_dim: 8 };
        MoeTransformer::new(&config, &Default::default())
    }

    fn config(temperature: f32) -> SamplingConfig {
        SamplingConfig {
            temperature,
            top_p: 0.9,
            max_new_tokens: 6,
            stop_tokens: vec![],
            seed: 1,
        }
    }

    #[test]
    fn greedy_generation_of_a_padded_batch_matches_each_prompt_alone() {
        let model = model();
        let device = Default::default();
        let prompts = vec![vec![1, 2, 3, 4, 5], vec![7, 8]];
        let together = generate(&model, &prompts, &config(0.0), 0, &device);
        for (prompt, sample) in prompts.iter().zip(&together) {
            let alone = generate(
                &model,
                std::slice::from_ref(prompt),
                &config(0.0),
                0,
                &device,
            );
            assert_eq!(alone[0].tokens, sample.tokens);
            assert_eq!(sample.tokens.len(), 6);
        }
    }

    #[test]
    fn sampled_log_probs_match_a_full_forward() {
        let model = model();
        let device = Default::default();
        let prompt = vec![3u32, 9, 4];
        let sample = generate(
            &model,
            std::slice::from_ref(&prompt),
            &config(1.0),
            0,
            &device,
        )
        .remove(0);
        let all: Vec<i64> = prompt
            .iter()
            .chain(&sample.tokens)
            .map(|&t| t as i64)
            .collect();
        let n = all.len();
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(all, [1, n]), &device);
        let full: Vec<f32> = token_log_probs(&model, tokens)
            .into_data()
            .to_vec()
            .unwrap();
        for (i, lp) in sample.log_probs.iter().enumerate() {
            let reference = full[prompt.len() - 1 + i];
            assert!(
                (lp - reference).abs() < 1e-4,
                "token {i}: {lp} vs {reference}"
            );
        }
    }

    #[test]
    fn stop_tokens_end_a_row() {
        let model = model();
        let device = Default::default();
        let first = generate(&model, &[vec![5, 6]], &config(0.0), 0, &device).remove(0);
        let mut stopping = config(0.0);
        stopping.stop_tokens = vec![first.tokens[1]];
        let stopped = generate(&model, &[vec![5, 6]], &stopping, 0, &device).remove(0);
        assert!(stopped.stopped);
        let end = first
            .tokens
            .iter()
            .position(|t| *t == first.tokens[1])
            .unwrap();
        assert_eq!(stopped.tokens, first.tokens[..=end].to_vec());
    }

    #[test]
    fn nucleus_keeps_only_the_top_mass() {
        let logits = [10.0f32, 9.5, -5.0, -6.0];
        let config = SamplingConfig {
            temperature: 1.0,
            top_p: 0.5,
            max_new_tokens: 1,
            stop_tokens: vec![],
            seed: 0,
        };
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..200 {
            assert_eq!(sample_row(&logits, &config, &mut rng), 0);
        }
        let wide = SamplingConfig {
            top_p: 1.0,
            ..config
        };
        let picks: Vec<usize> = (0..200)
            .map(|_| sample_row(&logits, &wide, &mut rng))
            .collect();
        assert!(picks.contains(&1));
    }
}
