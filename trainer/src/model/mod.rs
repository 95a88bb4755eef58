//! The policy: a DeepSeek-V3-style decoder (arXiv:2412.19437 §2.1) in burn.
//!
//! - [`rope`]: rotary position embedding (RoFormer).
//! - [`attention`]: causal multi-head and multi-head latent attention with a KV cache.
//! - [`ffn`]: the SwiGLU feed-forward of dense blocks and experts.
//! - [`moe`]: DeepSeekMoE routing, aux-loss-free balancing and the sequence-wise balance loss.
//!
//! Each block is pre-norm (RMSNorm, Zhang & Sennrich 2019, arXiv:1910.07467):
//! `h = x + Attn(RMSNorm(x))`, `out = h + FFN(RMSNorm(h))`; the first `first_dense_layers` blocks
//! use a dense FFN and the rest a MoE FFN, as in DeepSeek-V3 §4.2.

pub mod attention;
pub mod ffn;
pub mod moe;
pub mod rope;

use std::sync::{Mutex, PoisonError};

use burn::module::{ModuleVisitor, Param};
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, RmsNorm, RmsNormConfig,
};
use burn::prelude::*;

use crate::config::MoeConfig;
use attention::{Attention, LayerCache};
use ffn::SwiGlu;
use moe::{MoeLayer, MoeStats};

/// Standard deviation of the normal initialisation of every projection (GPT-2/DeepSeek: 0.02).
const INIT_STD: f64 = 0.02;

/// A bias-free linear layer initialised `N(0, 0.02²)`.
pub(crate) fn init_linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(d_in, d_out)
        .with_bias(false)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: INIT_STD,
        })
        .init(device)
}

/// Large negative logit used to mask attention (finite, so fully masked rows stay defined).
const MASKED: f32 = -1e9;

/// The additive attention mask of one forward pass and the position of its first query.
#[derive(Debug, Clone)]
pub struct AttentionMask<B: Backend> {
    /// `0` where a query may attend to a key, a large negative number elsewhere;
    /// `[batch or 1, 1, queries, keys]`.
    pub additive: Tensor<B, 4>,
    /// Absolute position of the first query (the number of cached keys).
    pub offset: usize,
}

/// Whether query `i` (at absolute position `offset + i`) may see key `j`: causal order and, where
/// given, the key is a real token rather than padding.
pub fn causal_allowed(offset: usize, i: usize, j: usize, key_valid: Option<&[bool]>) -> bool {
    j <= offset + i && key_valid.is_none_or(|valid| valid[j])
}

impl<B: Backend> AttentionMask<B> {
    /// Build the mask for `queries` new positions after `offset` cached ones. `key_valid` gives,
    /// per batch row, which of the `offset + queries` keys are real tokens (left padding is false).
    pub fn causal(
        queries: usize,
        offset: usize,
        key_valid: Option<&[Vec<bool>]>,
        device: &B::Device,
    ) -> Self {
        let keys = offset + queries;
        let rows: Vec<Option<&[bool]>> = match key_valid {
            Some(valid) => valid.iter().map(|v| Some(v.as_slice())).collect(),
            None => vec![None],
        };
        let mut values = Vec::with_capacity(rows.len() * queries * keys);
        for valid in &rows {
            for i in 0..queries {
                for j in 0..keys {
                    let ok = causal_allowed(offset, i, j, *valid);
                    values.push(if ok { 0.0 } else { MASKED });
                }
            }
        }
        let additive = Tensor::from_data(
            TensorData::new(values, [rows.len(), 1, queries, keys]),
            device,
        );
        Self { additive, offset }
    }
}

/// Incremental decoding state of the whole model.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<LayerCache<B>>,
    /// Per batch row: which cached positions hold real tokens.
    key_valid: Vec<Vec<bool>>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `n_layers` blocks and `batch` rows.
    pub fn new(n_layers: usize, batch: usize) -> Self {
        Self {
            layers: vec![LayerCache::Empty; n_layers],
            key_valid: vec![Vec::new(); batch],
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.key_valid.first().map_or(0, Vec::len)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One pre-norm decoder block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    attn_norm: RmsNorm<B>,
    attn: Attention<B>,
    ffn_norm: RmsNorm<B>,
    dense: Option<SwiGlu<B>>,
    moe: Option<MoeLayer<B>>,
}

impl<B: Backend> Block<B> {
    fn new(config: &MoeConfig, index: usize, device: &B::Device) -> Self {
        let norm = || {
            RmsNormConfig::new(config.d_model)
                .with_epsilon(config.norm_eps)
                .init(device)
        };
        let is_dense = index < config.first_dense_layers;
        Self {
            attn_norm: norm(),
            attn: Attention::new(config, device),
            ffn_norm: norm(),
            dense: is_dense.then(|| SwiGlu::new(config.d_model, config.dense_ffn_dim, device)),
            moe: (!is_dense).then(|| MoeLayer::new(config.d_model, &config.moe, device)),
        }
    }

    fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: &AttentionMask<B>,
        cache: &mut LayerCache<B>,
        token_valid: Option<&[bool]>,
    ) -> (Tensor<B, 3>, Option<MoeStats<B>>) {
        let h = x.clone() + self.attn.forward(self.attn_norm.forward(x), mask, cache);
        let normed = self.ffn_norm.forward(h.clone());
        match (&self.dense, &self.moe) {
            (Some(dense), _) => (h + dense.forward(normed), None),
            (None, Some(moe)) => {
                let (out, stats) = moe.forward_masked(normed, token_valid);
                (h + out, Some(stats))
            }
            (None, None) => unreachable!("Block::new always builds one feed-forward"),
        }
    }
}

/// The result of a forward pass.
#[derive(Debug, Clone)]
pub struct ForwardOutput<B: Backend> {
    /// Next-token logits, `[batch, seq, vocab]`.
    pub logits: Tensor<B, 3>,
    /// Routing statistics of each MoE block, in order.
    pub moe: Vec<MoeStats<B>>,
}

impl<B: Backend> ForwardOutput<B> {
    /// Sum of the MoE blocks' sequence-wise balance losses, if any block computed one.
    pub fn balance_loss(&self) -> Option<Tensor<B, 1>> {
        self.moe
            .iter()
            .filter_map(|s| s.balance_loss.clone())
            .reduce(|a, b| a + b)
    }

    /// Expert loads of each MoE block.
    pub fn loads(&self) -> Vec<Vec<usize>> {
        self.moe.iter().map(|s| s.load.clone()).collect()
    }
}

/// The DeepSeekMoE policy.
#[derive(Module, Debug)]
pub struct MoeTransformer<B: Backend> {
    embed: Embedding<B>,
    blocks: Vec<Block<B>>,
    norm: RmsNorm<B>,
    /// Output head; `None` when tied to the embedding.
    head: Option<Linear<B>>,
    /// Bias update speed γ of the aux-loss-free balancing.
    gamma: f64,
}

/// Serialises model construction: burn's random source is one per backend, shared by every
/// thread of the process, so two models built at once would interleave their draws.
static SEEDED_INIT: Mutex<()> = Mutex::new(());

/// Seed burn's random source for `B` and run `draw` with no other model construction or
/// `with_seed` draw in between, from any thread: the same seed gives the same draws. Lazily
/// initialised parameters must be used (materialised) inside `draw` for this to cover them.
pub fn with_seed<B: Backend, T>(device: &B::Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    let _guard = SEEDED_INIT.lock().unwrap_or_else(PoisonError::into_inner);
    B::seed(device, seed);
    draw()
}

/// Forces a parameter's lazy initialiser to run now.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

impl<B: Backend> MoeTransformer<B> {
    /// A model of shape `config`, drawn from wherever burn's process-wide random source is: use
    /// it to load weights over. [`MoeTransformer::seeded`] is the reproducible initialisation.
    /// Every parameter is drawn here, under the construction lock, none lazily at first use.
    pub fn new(config: &MoeConfig, device: &B::Device) -> Self {
        let _guard = SEEDED_INIT.lock().unwrap_or_else(PoisonError::into_inner);
        let model = Self::build(config, device);
        model.visit(&mut Materialize);
        model
    }

    /// Construct, parameters still lazy, under the caller's hold of [`SEEDED_INIT`].
    fn build(config: &MoeConfig, device: &B::Device) -> Self {
        Self {
            embed: EmbeddingConfig::new(config.vocab_size, config.d_model)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: INIT_STD,
                })
                .init(device),
            blocks: (0..config.n_layers)
                .map(|i| Block::new(config, i, device))
                .collect(),
            norm: RmsNormConfig::new(config.d_model)
                .with_epsilon(config.norm_eps)
                .init(device),
            head: (!config.tie_embeddings)
                .then(|| init_linear(config.d_model, config.vocab_size, device)),
            gamma: config.moe.bias_update_speed,
        }
    }

    /// A freshly initialised model of shape `config`, the same for the same `seed` whatever
    /// else the process does at the same time: seeding and every draw happen under one lock.
    pub fn seeded(config: &MoeConfig, device: &B::Device, seed: u64) -> Self {
        with_seed::<B, _>(device, seed, || {
            let model = Self::build(config, device);
            model.visit(&mut Materialize);
            model
        })
    }

    /// Number of decoder blocks.
    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }

    /// Full causal forward pass over `tokens` (`[batch, seq]`), no cache, no padding.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> ForwardOutput<B> {
        let mut cache = KvCache::new(self.blocks.len(), tokens.dims()[0]);
        self.run(tokens, &mut cache, None, None)
    }

    /// Full causal forward pass over right-padded `tokens` (`[batch, seq]`). `valid` (row-major,
    /// `batch * seq`) marks the real tokens: padding is not routed to any expert and counts in
    /// neither the expert loads (hence the bias update) nor the balance loss. Causality already
    /// keeps real tokens from seeing the padding after them.
    pub fn forward_masked(&self, tokens: Tensor<B, 2, Int>, valid: &[bool]) -> ForwardOutput<B> {
        let mut cache = KvCache::new(self.blocks.len(), tokens.dims()[0]);
        let all_valid = valid.iter().all(|v| *v);
        self.run(tokens, &mut cache, None, (!all_valid).then_some(valid))
    }

    /// Forward `tokens` (`[batch, seq]`) after what `cache` holds, then extend the cache.
    /// `valid` marks, per row, which of the new tokens are real (left padding is `false`).
    pub fn forward_cached(
        &self,
        tokens: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
        valid: Option<&[Vec<bool>]>,
    ) -> ForwardOutput<B> {
        let [batch, seq] = tokens.dims();
        for row in 0..batch {
            match valid {
                Some(v) => cache.key_valid[row].extend_from_slice(&v[row]),
                None => cache.key_valid[row].extend(std::iter::repeat_n(true, seq)),
            }
        }
        let key_valid = cache.key_valid.clone();
        let any_padding = key_valid.iter().flatten().any(|v| !v);
        let token_valid: Option<Vec<bool>> =
            valid.map(|v| v.iter().flat_map(|row| row.iter().copied()).collect());
        self.run(
            tokens,
            cache,
            any_padding.then_some(key_valid.as_slice()),
            token_valid.as_deref(),
        )
    }

    fn run(
        &self,
        tokens: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
        key_valid: Option<&[Vec<bool>]>,
        token_valid: Option<&[bool]>,
    ) -> ForwardOutput<B> {
        let seq = tokens.dims()[1];
        let offset = cache.layers.first().map_or(0, |layer| match layer {
            LayerCache::Empty => 0,
            LayerCache::Mha { k, .. } => k.dims()[2],
            LayerCache::Mla { latent, .. } => latent.dims()[2],
        });
        let mask = AttentionMask::causal(seq, offset, key_valid, &tokens.device());
        let mut x = self.embed.forward(tokens);
        let mut moe = Vec::new();
        for (block, layer_cache) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            let (out, stats) = block.forward(x, &mask, layer_cache, token_valid);
            x = out;
            moe.extend(stats);
        }
        let x = self.norm.forward(x);
        let logits = match &self.head {
            Some(head) => head.forward(x),
            None => {
                let [batch, seq, d] = x.dims();
                let weight = self.embed.weight.val();
                let vocab = weight.dims()[0];
                x.reshape([batch * seq, d])
                    .matmul(weight.transpose())
                    .reshape([batch, seq, vocab])
            }
        };
        ForwardOutput { logits, moe }
    }

    /// Apply the aux-loss-free bias update (DeepSeek-V3 §2.1.2) to every MoE block, given the
    /// per-block expert loads of the last step.
    pub fn update_router_biases(&mut self, loads: &[Vec<usize>]) {
        let gamma = self.gamma;
        let moe_blocks = self.blocks.iter_mut().filter_map(|b| b.moe.as_mut());
        for (layer, load) in moe_blocks.zip(loads) {
            let load: Vec<f64> = load.iter().map(|&l| l as f64).collect();
            layer.update_bias(&load, gamma);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::config::{AttentionConfig, TrainConfig};
    use crate::params;

    type B = CpuBackend;

    fn tiny(attention: AttentionConfig) -> MoeConfig {
        let mut config = TrainConfig::load("tiny").unwrap().policy;
        config.vocab_size = 50;
        config.d_model = 32;
        config.n_layers = 3;
        config.n_heads = 2;
        config.attention = attention;
        config.dense_ffn_dim = 48;
        config.moe.expert_ffn_dim = 16;
        config
    }

    fn mla() -> AttentionConfig {
        AttentionConfig::Mla {
            q_lora_rank: Some(12),
            kv_lora_rank: 10,
            qk_nope_head_dim: 8,
            qk_rope_head_dim: 4,
            v_head_dim: 6,
        }
    }

    fn tokens(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(
            TensorData::new(flat, [rows.len(), rows[0].len()]),
            &Default::default(),
        )
    }

    fn max_abs_diff(a: Tensor<B, 3>, b: Tensor<B, 3>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// Every float parameter, flattened in visiting order.
    struct Weights(Vec<f32>);

    impl ModuleVisitor<B> for Weights {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let data = param.val().into_data();
            self.0.extend(data.iter::<f32>());
        }
    }

    fn weights(model: &MoeTransformer<B>) -> Vec<f32> {
        let mut all = Weights(Vec::new());
        model.visit(&mut all);
        all.0
    }

    #[test]
    fn seeded_init_is_the_same_while_other_threads_build_models() {
        let config = tiny(AttentionConfig::Mha { head_dim: 8 });
        let device = Default::default();
        let alone = weights(&MoeTransformer::<B>::seeded(&config, &device, 11));
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for worker in 0..2u64 {
                let (config, stop) = (&config, &stop);
                scope.spawn(move || {
                    let device = Default::default();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = MoeTransformer::<B>::new(config, &device);
                        weights(&MoeTransformer::<B>::seeded(config, &device, 100 + worker));
                    }
                });
            }
            let same = (0..5)
                .all(|_| alone == weights(&MoeTransformer::<B>::seeded(&config, &device, 11)));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(same, "seeded weights changed under concurrent builds");
        });
        assert_ne!(
            alone,
            weights(&MoeTransformer::<B>::seeded(&config, &device, 12))
        );
    }

    #[test]
    fn causal_mask_hides_the_future_and_padding() {
        assert!(causal_allowed(0, 2, 2, None));
        assert!(!causal_allowed(0, 2, 3, None));
        assert!(causal_allowed(3, 0, 3, None), "cached keys are visible");
        assert!(!causal_allowed(3, 0, 4, None));
        let valid = [false, true, true];
        assert!(!causal_allowed(0, 2, 0, Some(&valid)), "padding is hidden");
        let mask = AttentionMask::<B>::causal(3, 0, None, &Default::default());
        let values: Vec<f32> = mask.additive.into_data().to_vec().unwrap();
        let allowed: Vec<bool> = values.iter().map(|&v| v == 0.0).collect();
        assert_eq!(
            allowed,
            vec![true, false, false, true, true, false, true, true, true]
        );
    }

    #[test]
    fn changing_a_later_token_leaves_earlier_logits_unchanged() {
        let model = MoeTransformer::<B>::new(&tiny(mla()), &Default::default());
        let a = model.forward(tokens(&[&[1, 2, 3, 4, 5]])).logits;
        let b = model.forward(tokens(&[&[1, 2, 3, 9, 5]])).logits;
        let prefix = |t: Tensor<B, 3>| t.slice([0..1, 0..3, 0..50]);
        assert!(max_abs_diff(prefix(a.clone()), prefix(b.clone())) < 1e-5);
        assert!(
            max_abs_diff(a, b) > 1e-4,
            "the change must show after position 3"
        );
    }

    fn check_cache_equivalence(attention: AttentionConfig) {
        let model = MoeTransformer::<B>::new(&tiny(attention), &Default::default());
        let input: &[&[i64]] = &[&[3, 14, 15, 9, 26, 5, 35], &[8, 9, 7, 9, 3, 2, 38]];
        let full = model.forward(tokens(input)).logits;
        let mut cache = KvCache::new(model.n_layers(), 2);
        let prefix: Vec<&[i64]> = input.iter().map(|r| &r[..3]).collect();
        let mut steps = vec![
            model
                .forward_cached(tokens(&prefix), &mut cache, None)
                .logits,
        ];
        for t in 3..7 {
            let step: Vec<&[i64]> = input.iter().map(|r| &r[t..t + 1]).collect();
            steps.push(model.forward_cached(tokens(&step), &mut cache, None).logits);
        }
        assert_eq!(cache.len(), 7);
        let incremental = Tensor::cat(steps, 1);
        let diff = max_abs_diff(full, incremental);
        assert!(diff < 1e-4, "cached decoding differs by {diff}");
    }

    #[test]
    fn cached_decoding_matches_a_full_forward_mha() {
        check_cache_equivalence(AttentionConfig::Mha { head_dim: 8 });
    }

    #[test]
    fn cached_decoding_matches_a_full_forward_mla() {
        check_cache_equivalence(mla());
    }

    #[test]
    fn left_padding_does_not_change_the_logits_of_real_tokens() {
        let model = MoeTransformer::<B>::new(&tiny(mla()), &Default::default());
        let alone = model.forward(tokens(&[&[4, 8, 15]])).logits;
        let mut cache = KvCache::new(model.n_layers(), 1);
        let valid = vec![vec![false, false, true, true, true]];
        let padded = model
            .forward_cached(tokens(&[&[0, 0, 4, 8, 15]]), &mut cache, Some(&valid))
            .logits
            .slice([0..1, 2..5, 0..50]);
        assert!(max_abs_diff(alone, padded) < 1e-4);
    }

    #[test]
    fn parameter_formula_matches_the_module() {
        for attention in [AttentionConfig::Mha { head_dim: 8 }, mla()] {
            for tie in [false, true] {
                let mut config = tiny(attention.clone());
                config.tie_embeddings = tie;
                let model = MoeTransformer::<B>::new(&config, &Default::default());
                assert_eq!(model.num_params() as u64, params::count(&config).total);
            }
        }
    }

    #[test]
    fn tied_head_reuses_the_embedding() {
        let mut config = tiny(AttentionConfig::Mha { head_dim: 8 });
        config.tie_embeddings = true;
        let model = MoeTransformer::<B>::new(&config, &Default::default());
        let logits = model.forward(tokens(&[&[1, 2]])).logits;
        assert_eq!(logits.dims(), [1, 2, 50]);
    }
}
