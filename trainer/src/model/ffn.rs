//! The SwiGLU feed-forward used by dense blocks and by every expert: Shazeer, "GLU Variants
//! Improve Transformer" (arXiv:2002.05202), eq. (6), as in DeepSeek-V3's `MLP`/`Expert`.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::init_linear;

/// `FFN_SwiGLU(x) = (Swish(x W) ⊗ x V) W_2`.
#[derive(Module, Debug)]
pub struct SwiGlu<B: Backend> {
    /// Gate projection `W` (`w1` in DeepSeek's code).
    w1: Linear<B>,
    /// Output projection `W_2` (`w2`).
    w2: Linear<B>,
    /// Up projection `V` (`w3`).
    w3: Linear<B>,
}

impl<B: Backend> SwiGlu<B> {
    /// A feed-forward `d_model → hidden → d_model`.
    pub fn new(d_model: usize, hidden: usize, device: &B::Device) -> Self {
        Self {
            w1: init_linear(d_model, hidden, device),
            w2: init_linear(hidden, d_model, device),
            w3: init_linear(d_model, hidden, device),
        }
    }

    /// Apply to `[..., d_model]`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        // return self.w2(F.silu(self.w1(x)) * self.w3(x))
        self.w2
            .forward(silu(self.w1.forward(x.clone())) * self.w3.forward(x))
    }
}
