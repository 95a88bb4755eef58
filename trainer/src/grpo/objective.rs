//! The GRPO objective of DeepSeekMath (arXiv:2402.03300) §4.1: group-relative advantages, the
//! token-level clipped surrogate, the k3 KL estimator, and how they are averaged.
//!
//! The paper's objective (eq. 3), maximised:
//!
//! ```text
//! J_GRPO(θ) = E[q ~ P(Q), {o_i}_{i=1..G} ~ π_θold(O|q)]
//!     1/G Σ_{i=1..G} 1/|o_i| Σ_{t=1..|o_i|} {
//!         min[ ρ_{i,t} Â_{i,t}, clip(ρ_{i,t}, 1 − ε, 1 + ε) Â_{i,t} ] − β D_KL[π_θ ‖ π_ref]
//!     },
//! ρ_{i,t} = π_θ(o_{i,t} | q, o_{i,<t}) / π_θold(o_{i,t} | q, o_{i,<t})
//! ```
//!
//! with the unbiased KL estimator (eq. 4, Schulman's "k3"):
//!
//! ```text
//! D_KL[π_θ ‖ π_ref] = π_ref(o_{i,t}|·) / π_θ(o_{i,t}|·) − log(π_ref(o_{i,t}|·) / π_θ(o_{i,t}|·)) − 1
//! ```
//!
//! and, with outcome supervision, the same advantage for every token of output `i`:
//! `Â_{i,t} = r̃_i = (r_i − mean(r)) / std(r)` over the group (ε added to the denominator so a
//! near-constant group does not blow up).
//!
//! **What this module computes (the loss, minimised).** Over the `N` kept completions of a step
//! (every group with signal; completions whose reward is masked are not in the batch),
//!
//! ```text
//! L = − 1/N Σ_i 1/|o_i| Σ_t m_{i,t} ( min[ρ Â_i, clip(ρ, 1 − ε, 1 + ε) Â_i] − β k3_{i,t} )
//! ```
//!
//! where `m_{i,t}` is 1 on the completion tokens of row `i` and `|o_i| = Σ_t m_{i,t}`: each
//! completion's token mean, then the mean over completions. With full groups this is eq. 3's
//! `1/G Σ_i 1/|o_i| Σ_t` averaged over the step's prompts.
//!
//! **Variants** ([`LossSettings`]), each a config switch:
//! - DAPO (arXiv:2503.14476) eq. 10, token-level loss: `1/Σ_i|o_i| Σ_i Σ_t` ([`LossNorm::Token`]);
//! - Dr. GRPO (arXiv:2503.20783) eq. 3: `1/(N·L_max) Σ_i Σ_t`, a constant ([`LossNorm::Constant`]),
//!   with advantages `r_i − mean(r)`, not divided by the std ([`AdvantageNorm::None`]);
//! - DAPO eq. 10's clip-higher: `clip(ρ, 1 − ε_low, 1 + ε_high)`.

use burn::prelude::*;

use crate::config::{AdvantageNorm, LossNorm};

/// Advantages of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupAdvantages {
    /// `Â_i` per completion; `None` where the reward is masked (verdict's `error` outcome).
    pub advantages: Vec<Option<f64>>,
    /// Whether the group carries a learning signal: at least two rewards, not all equal.
    pub signal: bool,
    /// Mean of the unmasked rewards.
    pub mean: f64,
    /// Population standard deviation of the unmasked rewards.
    pub std: f64,
}

/// Group-relative advantages `(r_i − mean) / (std + eps)` over the rewards that are present.
///
/// A masked reward (`None`: verdict could not judge the completion) takes no part in the mean
/// or the standard deviation and gets no advantage; it is never read as 0. A group with fewer
/// than two present rewards, or with all of them equal, has no signal (its advantages are 0).
pub fn group_advantages(rewards: &[Option<f64>], eps: f64) -> GroupAdvantages {
    group_advantages_with(rewards, eps, AdvantageNorm::Std)
}

/// [`group_advantages`] with a choice of normalisation: `Std` divides by `std + eps`,
/// `None` does not.
///
/// Reference (Dr. GRPO eq. 3): `Â_{i,t} = R(q, o_i) − mean({R(q, o_1), …, R(q, o_G)})`
pub fn group_advantages_with(
    rewards: &[Option<f64>],
    eps: f64,
    norm: AdvantageNorm,
) -> GroupAdvantages {
    let present: Vec<f64> = rewards.iter().flatten().copied().collect();
    let n = present.len();
    let mean = present.iter().sum::<f64>() / n.max(1) as f64;
    let std = (present.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n.max(1) as f64).sqrt();
    let equal = present.iter().all(|r| (r - mean).abs() <= 1e-12);
    let signal = n >= 2 && !equal;
    let advantages = rewards
        .iter()
        .map(|r| {
            r.map(|r| {
                if !signal {
                    0.0
                } else if norm == AdvantageNorm::Std {
                    (r - mean) / (std + eps)
                } else {
                    r - mean
                }
            })
        })
        .collect();
    GroupAdvantages {
        advantages,
        signal,
        mean,
        std,
    }
}

/// The k3 estimator of `KL[π_θ ‖ π_ref]` per token, from the two log-probs of the sampled token.
///
/// Reference: `D_KL = π_ref/π_θ − log(π_ref/π_θ) − 1`   (DeepSeekMath eq. 4)
pub fn k3_kl<B: Backend, const D: usize>(
    log_probs: Tensor<B, D>,
    ref_log_probs: Tensor<B, D>,
) -> Tensor<B, D> {
    let log_ratio = ref_log_probs - log_probs;
    log_ratio.clone().exp() - log_ratio - 1.0
}

/// The clipped surrogate per token.
///
/// Reference: `min[ρ Â, clip(ρ, 1 − ε, 1 + ε) Â]`, `ρ = exp(log π_θ − log π_old)`   (eq. 3)
/// and DAPO eq. 10: `clip(ρ, 1 − ε_low, 1 + ε_high)`.
///
/// `advantages` is `[batch, 1]` (one per completion) and broadcasts over the tokens.
pub fn clipped_surrogate<B: Backend>(
    log_probs: Tensor<B, 2>,
    old_log_probs: Tensor<B, 2>,
    advantages: Tensor<B, 2>,
    eps_low: f64,
    eps_high: f64,
) -> Tensor<B, 2> {
    let [batch, seq] = log_probs.dims();
    let advantages = advantages.expand([batch, seq]);
    let ratio = (log_probs - old_log_probs).exp();
    let unclipped = ratio.clone() * advantages.clone();
    let clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high) * advantages;
    unclipped.min_pair(clipped)
}

/// The settings of one loss: the clip range, the KL weight and how tokens are averaged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSettings {
    /// `ε_low`: the ratio is clipped below at `1 − ε_low`.
    pub clip_low: f64,
    /// `ε_high`: the ratio is clipped above at `1 + ε_high` (`ε_low` in DeepSeekMath).
    pub clip_high: f64,
    /// `β` of the k3 KL term.
    pub kl_beta: f64,
    /// How the per-token terms are averaged.
    pub norm: LossNorm,
    /// `L_max` of [`LossNorm::Constant`]: the token budget of a completion.
    pub max_len: usize,
}

impl LossSettings {
    /// DeepSeekMath's loss: symmetric clip `eps`, KL weight `beta`, sequence-mean tokens.
    pub fn grpo(eps: f64, beta: f64) -> Self {
        Self {
            clip_low: eps,
            clip_high: eps,
            kl_beta: beta,
            norm: LossNorm::Sequence,
            max_len: 1,
        }
    }

    /// The settings of a GRPO configuration.
    pub fn of(grpo: &crate::config::GrpoConfig) -> Self {
        Self {
            clip_low: grpo.clip_eps,
            clip_high: grpo.clip_eps_high.unwrap_or(grpo.clip_eps),
            kl_beta: grpo.kl_beta,
            norm: grpo.loss_norm,
            max_len: grpo.max_new_tokens,
        }
    }
}

/// The inputs of one evaluation of the loss, all `[batch, seq]` over target positions except
/// `advantages` (`[batch, 1]`).
#[derive(Debug, Clone)]
pub struct LossInputs<B: Backend> {
    /// `log π_θ` of each target token (differentiable).
    pub log_probs: Tensor<B, 2>,
    /// `log π_θold`, from the no-grad forward before the first epoch.
    pub old_log_probs: Tensor<B, 2>,
    /// `log π_ref`, where the KL term is on.
    pub ref_log_probs: Option<Tensor<B, 2>>,
    /// `Â_i` per row.
    pub advantages: Tensor<B, 2>,
    /// 1 on completion tokens, 0 on the prompt and padding.
    pub mask: Tensor<B, 2>,
}

/// The loss and what it is made of.
#[derive(Debug, Clone)]
pub struct Loss<B: Backend> {
    /// `L` (to minimise), shape `[1]`.
    pub loss: Tensor<B, 1>,
    /// Mean k3 KL over the completion tokens (detached), where the KL term is on.
    pub kl: Option<Tensor<B, 1>>,
    /// Share of completion tokens whose clipped term is the active one:
    /// `ρ > 1 + ε` with `Â > 0`, or `ρ < 1 − ε` with `Â < 0`.
    pub clip_fraction: Tensor<B, 1>,
    /// `max |ρ − 1|` over the completion tokens (0 in the first epoch).
    pub max_ratio_deviation: Tensor<B, 1>,
}

/// The GRPO loss `L` of the module documentation (or one of its variants, as `settings` say).
pub fn grpo_loss<B: Backend>(inputs: LossInputs<B>, settings: &LossSettings) -> Loss<B> {
    let LossSettings {
        clip_low,
        clip_high,
        kl_beta: beta,
        norm,
        max_len,
    } = *settings;
    let LossInputs {
        log_probs,
        old_log_probs,
        ref_log_probs,
        advantages,
        mask,
    } = inputs;
    let [batch, seq] = log_probs.dims();
    let tokens = mask.clone().sum().clamp_min(1.0);
    let per_row = mask.clone().sum_dim(1).clamp_min(1.0);

    let ratio = (log_probs.clone() - old_log_probs.clone()).exp().detach();
    let adv = advantages.clone().expand([batch, seq]);
    let clipped_high =
        ratio.clone().greater_elem(1.0 + clip_high).float() * adv.clone().greater_elem(0.0).float();
    let clipped_low =
        ratio.clone().lower_elem(1.0 - clip_low).float() * adv.lower_elem(0.0).float();
    let clip_fraction = ((clipped_high + clipped_low) * mask.clone()).sum() / tokens.clone();
    let max_ratio_deviation = ((ratio - 1.0).abs() * mask.clone()).max();

    let mut per_token = clipped_surrogate(
        log_probs.clone(),
        old_log_probs,
        advantages,
        clip_low,
        clip_high,
    );
    let mut kl_mean = None;
    if let Some(reference) = ref_log_probs {
        let kl = k3_kl(log_probs, reference);
        kl_mean = Some((kl.clone().detach() * mask.clone()).sum() / tokens.clone());
        if beta > 0.0 {
            per_token = per_token - kl.mul_scalar(beta);
        }
    }
    let masked = per_token * mask;
    let loss = match norm {
        // 1/|o_i| Σ_t m_{i,t} (…), then the mean over rows, negated.
        LossNorm::Sequence => (masked.sum_dim(1) / per_row).mean().neg(),
        // DAPO: 1/Σ_i |o_i| Σ_i Σ_t (…)
        LossNorm::Token => (masked.sum() / tokens).neg(),
        // Dr. GRPO: 1/(N · L_max) Σ_i Σ_t (…)
        LossNorm::Constant => masked
            .sum()
            .div_scalar((batch * max_len.max(1)) as f64)
            .neg(),
    };
    Loss {
        loss,
        kl: kl_mean,
        clip_fraction,
        max_ratio_deviation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;

    type B = CpuBackend;

    fn t2(rows: &[&[f32]]) -> Tensor<B, 2> {
        let cols = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(
            TensorData::new(flat, [rows.len(), cols]),
            &Default::default(),
        )
    }

    fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn advantages_are_standardised_within_the_group() {
        // r = (1, 0, 0, 1): mean 0.5, population std 0.5.
        let g = group_advantages(&[Some(1.0), Some(0.0), Some(0.0), Some(1.0)], 1e-4);
        assert!(g.signal);
        assert!(close(g.mean, 0.5) && close(g.std, 0.5));
        let a = 0.5 / (0.5 + 1e-4);
        assert_eq!(g.advantages, vec![Some(a), Some(-a), Some(-a), Some(a)]);
        // r = (0.9, 0.3, 0.0): mean 0.4, std sqrt((0.25 + 0.01 + 0.16) / 3) = sqrt(0.14).
        let g = group_advantages(&[Some(0.9), Some(0.3), Some(0.0)], 0.0);
        let std = 0.14f64.sqrt();
        let got: Vec<f64> = g.advantages.iter().map(|a| a.unwrap()).collect();
        for (got, want) in got.iter().zip([0.5 / std, -0.1 / std, -0.4 / std]) {
            assert!(close(*got, want), "{got} vs {want}");
        }
    }

    #[test]
    fn an_all_equal_group_has_no_signal() {
        for rewards in [vec![Some(1.0); 4], vec![Some(0.25); 3], vec![Some(0.0); 2]] {
            let g = group_advantages(&rewards, 1e-4);
            assert!(!g.signal, "{rewards:?}");
            assert!(g.advantages.iter().all(|a| *a == Some(0.0)));
        }
    }

    #[test]
    fn error_scores_are_masked_out_of_the_statistics() {
        // The None is verdict's `error` outcome: it must not count as a 0.
        let g = group_advantages(&[Some(1.0), None, Some(0.5), Some(1.0)], 0.0);
        assert!(
            close(g.mean, 2.5 / 3.0),
            "mean of the present rewards: {}",
            g.mean
        );
        assert_eq!(g.advantages[1], None);
        let read_as_zero = group_advantages(&[Some(1.0), Some(0.0), Some(0.5), Some(1.0)], 0.0);
        assert!(!close(g.mean, read_as_zero.mean));
        // All present rewards equal: no signal, even though a 0 would have made one.
        let g = group_advantages(&[Some(1.0), None, Some(1.0)], 1e-4);
        assert!(!g.signal);
        // A single present reward cannot be compared with anything.
        assert!(!group_advantages(&[None, Some(1.0), None], 1e-4).signal);
    }

    #[test]
    fn k3_matches_the_formula() {
        // log π_θ = ln 0.5, log π_ref = ln 0.25: ratio 0.5, k3 = 0.5 − ln 0.5 − 1.
        let kl = values(k3_kl(
            t2(&[&[0.5f32.ln(), 0.3f32.ln()]]),
            t2(&[&[0.25f32.ln(), 0.3f32.ln()]]),
        ));
        let want = 0.5 - 0.5f64.ln() - 1.0;
        assert!(close(kl[0].into(), want), "{kl:?} vs {want}");
        assert!(kl[1].abs() < 1e-7, "equal policies: 0");
        // Never negative.
        let kl = values(k3_kl(t2(&[&[-0.1, -3.0]]), t2(&[&[-2.0, -0.2]])));
        assert!(kl.iter().all(|k| *k > 0.0), "{kl:?}");
    }

    #[test]
    fn the_surrogate_clips_on_both_sides() {
        let eps = 0.2;
        // Ratios 1.5 and 0.5 against advantages +1 and −1.
        let old = t2(&[&[0.0, 0.0], &[0.0, 0.0]]);
        let new = t2(&[&[1.5f32.ln(), 0.5f32.ln()], &[1.5f32.ln(), 0.5f32.ln()]]);
        let adv = t2(&[&[1.0], &[-1.0]]);
        let got = values(clipped_surrogate(new, old, adv, eps, eps));
        // A > 0: min(1.5, 1.2) = 1.2 (clipped), min(0.5, 0.8) = 0.5 (not clipped).
        // A < 0: min(−1.5, −1.2) = −1.5 (not clipped), min(−0.5, −0.8) = −0.8 (clipped).
        for (g, w) in got.iter().zip([1.2, 0.5, -1.5, -0.8]) {
            assert!(close((*g).into(), w), "{got:?}");
        }
        // Inside the clip range the surrogate is ρ Â.
        let got = values(clipped_surrogate(
            t2(&[&[1.1f32.ln()]]),
            t2(&[&[0.0]]),
            t2(&[&[2.0]]),
            eps,
            eps,
        ));
        assert!(close(got[0].into(), 2.2));
    }

    #[test]
    fn the_loss_is_the_mean_over_completions_of_token_means() {
        // Row 0: 2 completion tokens, Â = 1; row 1: 3 completion tokens, Â = −2 (one padding
        // position, one prompt position masked out). ρ = 1 everywhere, β = 0: the surrogate is
        // Â on every counted token, so L = −(1 + (−2)) / 2 = 0.5. A token-sum normalisation
        // would give −(2·1 + 3·(−2)) / 5 = 0.8 instead.
        let zeros = t2(&[&[-1.0, -1.0, -1.0, -1.0], &[-1.0, -1.0, -1.0, -1.0]]);
        let mask = t2(&[&[0.0, 1.0, 1.0, 0.0], &[0.0, 1.0, 1.0, 1.0]]);
        let loss = grpo_loss(
            LossInputs {
                log_probs: zeros.clone(),
                old_log_probs: zeros.clone(),
                ref_log_probs: None,
                advantages: t2(&[&[1.0], &[-2.0]]),
                mask: mask.clone(),
            },
            &LossSettings::grpo(0.2, 0.0),
        );
        assert!(close(values(loss.loss)[0].into(), 0.5));
        assert_eq!(values(loss.clip_fraction), vec![0.0]);
        assert_eq!(values(loss.max_ratio_deviation), vec![0.0]);
        // The KL term: π_ref = e^{-1}·2 on row 0's tokens, β = 0.1. k3 = 2 − ln 2 − 1 there, 0 on
        // row 1, so L rises by 0.1 · (2 − ln 2 − 1) / 2 (row 0's token mean, over 2 rows).
        let reference = t2(&[
            &[-1.0, -1.0 + 2f32.ln(), -1.0 + 2f32.ln(), -1.0],
            &[-1.0; 4],
        ]);
        let with_kl = grpo_loss(
            LossInputs {
                log_probs: zeros.clone(),
                old_log_probs: zeros,
                ref_log_probs: Some(reference),
                advantages: t2(&[&[1.0], &[-2.0]]),
                mask,
            },
            &LossSettings::grpo(0.2, 0.1),
        );
        let k3 = 2.0 - 2f64.ln() - 1.0;
        assert!(close(values(with_kl.loss)[0].into(), 0.5 + 0.1 * k3 / 2.0));
        // Mean KL over the 5 counted tokens: 2 of them carry k3.
        assert!(close(values(with_kl.kl.unwrap())[0].into(), 2.0 * k3 / 5.0));
    }

    #[test]
    fn the_clip_fraction_counts_active_clips_only() {
        // ρ = 1.5 with Â > 0 (clipped), ρ = 1.5 with Â < 0 (not: the unclipped term is lower).
        let new = t2(&[&[1.5f32.ln()], &[1.5f32.ln()]]);
        let old = t2(&[&[0.0], &[0.0]]);
        let loss = grpo_loss(
            LossInputs {
                log_probs: new,
                old_log_probs: old,
                ref_log_probs: None,
                advantages: t2(&[&[1.0], &[-1.0]]),
                mask: t2(&[&[1.0], &[1.0]]),
            },
            &LossSettings::grpo(0.2, 0.0),
        );
        assert!(close(values(loss.clip_fraction)[0].into(), 0.5));
        assert!(close(values(loss.max_ratio_deviation)[0].into(), 0.5));
        // L = −(1.2 + (−1.5)) / 2 = 0.15
        assert!(close(values(loss.loss)[0].into(), 0.15));
    }

    #[test]
    fn the_gradient_on_each_log_prob_is_minus_its_advantage_over_the_row_length() {
        // ρ = 1 (first epoch), β = 0: ∂L/∂log π_{i,t} = −Â_i / (N |o_i|) on counted tokens, 0
        // elsewhere. Row 0: 2 tokens, Â = 1 → −0.25; row 1: 3 tokens, Â = −2 → +1/3.
        type A = crate::backend::CpuTrainBackend;
        let device = Default::default();
        let log_probs =
            Tensor::<A, 2>::from_data(TensorData::new(vec![-0.5f32; 8], [2, 4]), &device)
                .require_grad();
        let mask = Tensor::<A, 2>::from_data(
            TensorData::new(vec![0.0f32, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0], [2, 4]),
            &device,
        );
        let loss = grpo_loss(
            LossInputs {
                log_probs: log_probs.clone(),
                old_log_probs: log_probs.clone().detach(),
                ref_log_probs: None,
                advantages: Tensor::from_data(TensorData::new(vec![1.0f32, -2.0], [2, 1]), &device),
                mask,
            },
            &LossSettings::grpo(0.2, 0.0),
        );
        let grads = loss.loss.backward();
        let got: Vec<f32> = log_probs
            .grad(&grads)
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        let third = 1.0 / 3.0;
        let want = [0.0, -0.25, -0.25, 0.0, 0.0, third, third, third];
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn the_variants_average_tokens_as_their_papers_say() {
        // The example of `the_loss_is_the_mean_over_completions_of_token_means`: Â = 1 on 2
        // tokens, Â = −2 on 3 tokens, ρ = 1, β = 0.
        let zeros = t2(&[&[-1.0, -1.0, -1.0, -1.0], &[-1.0, -1.0, -1.0, -1.0]]);
        let inputs = LossInputs {
            log_probs: zeros.clone(),
            old_log_probs: zeros,
            ref_log_probs: None,
            advantages: t2(&[&[1.0], &[-2.0]]),
            mask: t2(&[&[0.0, 1.0, 1.0, 0.0], &[0.0, 1.0, 1.0, 1.0]]),
        };
        let with = |norm: LossNorm, max_len: usize| {
            let settings = LossSettings {
                norm,
                max_len,
                ..LossSettings::grpo(0.2, 0.0)
            };
            f64::from(values(grpo_loss(inputs.clone(), &settings).loss)[0])
        };
        // DAPO: −(2·1 + 3·(−2)) / 5 = 0.8.
        assert!(close(with(LossNorm::Token, 1), 0.8));
        // Dr. GRPO: −(2 − 6) / (2 rows · L_max 8) = 0.25, whatever the rows' lengths.
        assert!(close(with(LossNorm::Constant, 8), 0.25));
        assert!(close(with(LossNorm::Sequence, 8), 0.5));
    }

    #[test]
    fn dr_grpo_advantages_are_not_divided_by_the_std() {
        let g = group_advantages_with(
            &[Some(0.9), Some(0.3), Some(0.0)],
            1e-4,
            AdvantageNorm::None,
        );
        let got: Vec<f64> = g.advantages.iter().map(|a| a.unwrap()).collect();
        for (got, want) in got.iter().zip([0.5, -0.1, -0.4]) {
            assert!(close(*got, want), "{got} vs {want}");
        }
        let flat = group_advantages_with(&[Some(0.5), Some(0.5)], 1e-4, AdvantageNorm::None);
        assert!(!flat.signal && flat.advantages == vec![Some(0.0), Some(0.0)]);
    }

    #[test]
    fn clip_higher_lets_a_positive_advantage_rise_further() {
        // ρ = 1.25 with Â = 1: clipped to 1.2 by ε = 0.2, not by ε_high = 0.28.
        let new = t2(&[&[1.25f32.ln()]]);
        let old = t2(&[&[0.0]]);
        let adv = t2(&[&[1.0]]);
        let symmetric = values(clipped_surrogate(
            new.clone(),
            old.clone(),
            adv.clone(),
            0.2,
            0.2,
        ));
        let higher = values(clipped_surrogate(new.clone(), old.clone(), adv, 0.2, 0.28));
        assert!(close(symmetric[0].into(), 1.2) && close(higher[0].into(), 1.25));
        // The lower side is still ε_low: ρ = 0.7 with Â = −1 → −0.8.
        let low = values(clipped_surrogate(
            t2(&[&[0.7f32.ln()]]),
            old,
            t2(&[&[-1.0]]),
            0.2,
            0.28,
        ));
        assert!(close(low[0].into(), -0.8));
    }
}
