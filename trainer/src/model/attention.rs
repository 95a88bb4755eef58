//! Causal self-attention: multi-head (Vaswani et al. 2017, "Attention Is All You Need", §3.2)
//! and multi-head latent attention (DeepSeek-V2, arXiv:2405.04434, §2.1.2–2.1.3; DeepSeek-V3
//! §2.1.1), both with RoPE and an incremental [`LayerCache`].
//!
//! MLA caches only the compressed latent `c^KV` and the shared RoPE key `k^R` (that is the
//! point of MLA: `(d_c + d_h^R)` numbers per token instead of `2 n_h d_h`); the per-head keys and
//! values are re-expanded from the cached latent at every step.

use burn::nn::{Linear, RmsNorm, RmsNormConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::rope::apply_rope;
use super::{init_linear, AttentionMask};
use crate::config::{AttentionConfig, MoeConfig};

/// What one attention layer keeps between decoding steps.
#[derive(Debug, Clone, Default)]
pub enum LayerCache<B: Backend> {
    /// Nothing cached yet.
    #[default]
    Empty,
    /// Multi-head attention: rotated keys and values, `[batch, heads, len, head_dim]`.
    Mha {
        /// Keys after RoPE.
        k: Tensor<B, 4>,
        /// Values.
        v: Tensor<B, 4>,
    },
    /// Latent attention: the normalised latent `[batch, 1, len, kv_lora_rank]` and the rotated
    /// shared key `[batch, 1, len, qk_rope_head_dim]`.
    Mla {
        /// `c^KV` after its RMSNorm.
        latent: Tensor<B, 4>,
        /// `k^R` after RoPE.
        k_rope: Tensor<B, 4>,
    },
}

/// Scaled dot-product attention with an additive mask.
///
/// Reference (Vaswani et al. eq. 1): `Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V`
fn scaled_dot_product<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: &AttentionMask<B>,
) -> Tensor<B, 4> {
    let d_k = q.dims()[3] as f64;
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar(d_k.sqrt());
    let shape = scores.shape();
    let scores = scores + mask.additive.clone().expand(shape);
    softmax(scores, 3).matmul(v)
}

/// Append `new` to `old` along the sequence axis.
fn append<B: Backend>(old: Option<Tensor<B, 4>>, new: Tensor<B, 4>) -> Tensor<B, 4> {
    match old {
        Some(old) => Tensor::cat(vec![old, new], 2),
        None => new,
    }
}

/// Standard multi-head attention with RoPE on queries and keys.
#[derive(Module, Debug)]
pub struct MultiHead<B: Backend> {
    wq: Linear<B>,
    wk: Linear<B>,
    wv: Linear<B>,
    wo: Linear<B>,
    n_heads: usize,
    head_dim: usize,
    rope_theta: f64,
}

impl<B: Backend> MultiHead<B> {
    fn new(config: &MoeConfig, head_dim: usize, device: &B::Device) -> Self {
        let width = config.n_heads * head_dim;
        Self {
            wq: init_linear(config.d_model, width, device),
            wk: init_linear(config.d_model, width, device),
            wv: init_linear(config.d_model, width, device),
            wo: init_linear(width, config.d_model, device),
            n_heads: config.n_heads,
            head_dim,
            rope_theta: config.rope_theta,
        }
    }

    fn heads(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        let [batch, seq, _] = x.dims();
        x.reshape([batch, seq, self.n_heads, self.head_dim])
            .swap_dims(1, 2)
    }

    fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: &AttentionMask<B>,
        cache: &mut LayerCache<B>,
    ) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let q = apply_rope(
            self.heads(self.wq.forward(x.clone())),
            mask.offset,
            self.rope_theta,
        );
        let k = apply_rope(
            self.heads(self.wk.forward(x.clone())),
            mask.offset,
            self.rope_theta,
        );
        let v = self.heads(self.wv.forward(x));
        let (old_k, old_v) = match std::mem::take(cache) {
            LayerCache::Mha { k, v } => (Some(k), Some(v)),
            _ => (None, None),
        };
        let k = append(old_k, k);
        let v = append(old_v, v);
        *cache = LayerCache::Mha {
            k: k.clone(),
            v: v.clone(),
        };
        let out = scaled_dot_product(q, k, v, mask);
        self.wo.forward(
            out.swap_dims(1, 2)
                .reshape([batch, seq, self.n_heads * self.head_dim]),
        )
    }
}

/// Multi-head latent attention (DeepSeek-V2 §2.1.2–2.1.3).
#[derive(Module, Debug)]
pub struct LatentAttention<B: Backend> {
    /// `W^DQ` (absent without query compression).
    wq_a: Option<Linear<B>>,
    q_norm: Option<RmsNorm<B>>,
    /// `W^UQ` and `W^QR` fused (or the direct query projection).
    wq_b: Linear<B>,
    /// `W^DKV` and `W^KR` fused.
    wkv_a: Linear<B>,
    kv_norm: RmsNorm<B>,
    /// `W^UK` and `W^UV` fused.
    wkv_b: Linear<B>,
    wo: Linear<B>,
    n_heads: usize,
    kv_lora_rank: usize,
    nope: usize,
    rope: usize,
    v_dim: usize,
    rope_theta: f64,
}

impl<B: Backend> LatentAttention<B> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        config: &MoeConfig,
        q_lora_rank: Option<usize>,
        kv_lora_rank: usize,
        nope: usize,
        rope: usize,
        v_dim: usize,
        device: &B::Device,
    ) -> Self {
        let d = config.d_model;
        let h = config.n_heads;
        let norm = |n: usize| {
            RmsNormConfig::new(n)
                .with_epsilon(config.norm_eps)
                .init(device)
        };
        let (wq_a, q_norm, q_in) = match q_lora_rank {
            Some(r) => (Some(init_linear(d, r, device)), Some(norm(r)), r),
            None => (None, None, d),
        };
        Self {
            wq_a,
            q_norm,
            wq_b: init_linear(q_in, h * (nope + rope), device),
            wkv_a: init_linear(d, kv_lora_rank + rope, device),
            kv_norm: norm(kv_lora_rank),
            wkv_b: init_linear(kv_lora_rank, h * (nope + v_dim), device),
            wo: init_linear(h * v_dim, d, device),
            n_heads: h,
            kv_lora_rank,
            nope,
            rope,
            v_dim,
            rope_theta: config.rope_theta,
        }
    }

    fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: &AttentionMask<B>,
        cache: &mut LayerCache<B>,
    ) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let (h, nope, rope) = (self.n_heads, self.nope, self.rope);
        // c_t^Q = W^DQ h_t ; q_t^C = W^UQ c_t^Q ; q_t^R = RoPE(W^QR c_t^Q)   (V2 eq. 12–14)
        let c_q = match (&self.wq_a, &self.q_norm) {
            (Some(wq_a), Some(q_norm)) => q_norm.forward(wq_a.forward(x.clone())),
            _ => x.clone(),
        };
        let q = self
            .wq_b
            .forward(c_q)
            .reshape([batch, seq, h, nope + rope])
            .swap_dims(1, 2);
        let q_nope = q.clone().slice([0..batch, 0..h, 0..seq, 0..nope]);
        let q_rope = apply_rope(
            q.slice([0..batch, 0..h, 0..seq, nope..nope + rope]),
            mask.offset,
            self.rope_theta,
        );
        // c_t^KV = W^DKV h_t ; k_t^R = RoPE(W^KR h_t)   (V2 eq. 9, 15)
        let kv = self.wkv_a.forward(x);
        let r = self.kv_lora_rank;
        let latent = self
            .kv_norm
            .forward(kv.clone().slice([0..batch, 0..seq, 0..r]))
            .reshape([batch, 1, seq, r]);
        let k_rope = apply_rope(
            kv.slice([0..batch, 0..seq, r..r + rope])
                .reshape([batch, 1, seq, rope]),
            mask.offset,
            self.rope_theta,
        );
        let (old_latent, old_rope) = match std::mem::take(cache) {
            LayerCache::Mla { latent, k_rope } => (Some(latent), Some(k_rope)),
            _ => (None, None),
        };
        let latent = append(old_latent, latent);
        let k_rope = append(old_rope, k_rope);
        *cache = LayerCache::Mla {
            latent: latent.clone(),
            k_rope: k_rope.clone(),
        };
        let len = latent.dims()[2];
        // k_t^C = W^UK c_t^KV ; v_t^C = W^UV c_t^KV   (V2 eq. 10–11)
        let kv = self
            .wkv_b
            .forward(latent.reshape([batch, len, r]))
            .reshape([batch, len, h, nope + self.v_dim])
            .swap_dims(1, 2);
        let k_nope = kv.clone().slice([0..batch, 0..h, 0..len, 0..nope]);
        let v = kv.slice([0..batch, 0..h, 0..len, nope..nope + self.v_dim]);
        // q_{t,i} = [q_{t,i}^C; q_{t,i}^R] ; k_{t,i} = [k_{t,i}^C; k_t^R]   (V2 eq. 16–17)
        let q = Tensor::cat(vec![q_nope, q_rope], 3);
        let k = Tensor::cat(vec![k_nope, k_rope.expand([batch, h, len, rope])], 3);
        let out = scaled_dot_product(q, k, v, mask);
        self.wo
            .forward(out.swap_dims(1, 2).reshape([batch, seq, h * self.v_dim]))
    }
}

/// The attention of one block: exactly one of the two flavours is present.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    mha: Option<MultiHead<B>>,
    mla: Option<LatentAttention<B>>,
}

impl<B: Backend> Attention<B> {
    /// Build the flavour chosen by `config.attention`.
    pub fn new(config: &MoeConfig, device: &B::Device) -> Self {
        match &config.attention {
            AttentionConfig::Mha { head_dim } => Self {
                mha: Some(MultiHead::new(config, *head_dim, device)),
                mla: None,
            },
            AttentionConfig::Mla {
                q_lora_rank,
                kv_lora_rank,
                qk_nope_head_dim,
                qk_rope_head_dim,
                v_head_dim,
            } => Self {
                mha: None,
                mla: Some(LatentAttention::new(
                    config,
                    *q_lora_rank,
                    *kv_lora_rank,
                    *qk_nope_head_dim,
                    *qk_rope_head_dim,
                    *v_head_dim,
                    device,
                )),
            },
        }
    }

    /// Attend over the cache plus `x` (`[batch, seq, d_model]`), then extend the cache.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: &AttentionMask<B>,
        cache: &mut LayerCache<B>,
    ) -> Tensor<B, 3> {
        match (&self.mha, &self.mla) {
            (Some(mha), _) => mha.forward(x, mask, cache),
            (None, Some(mla)) => mla.forward(x, mask, cache),
            (None, None) => unreachable!("Attention::new always builds one flavour"),
        }
    }
}
