//! Gradient clipping by the global norm over every parameter (Pascanu, Mikolov & Bengio 2013,
//! "On the difficulty of training recurrent neural networks", Algorithm 1; the clipping used by
//! DeepSeek and most LLM trainers).
//!
//! burn's `GradientClipping::Norm` scales each parameter tensor by its own norm, which changes
//! the direction of the update; the global norm keeps the direction and only shortens it.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// Sums `‖g_p‖²` over the parameters of a module.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let squares = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + squares,
                None => squares,
            });
        }
    }
}

/// Multiplies every gradient of a module by a factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads
                .register::<B::InnerBackend, D>(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// The global gradient norm `‖g‖₂ = sqrt(Σ_p Σ_j g_{p,j}²)` over `module`'s parameters.
pub fn global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut visitor = SquaredNorm::<B> { grads, total: None };
    module.visit(&mut visitor);
    visitor
        .total
        .map_or(0.0, |t| t.into_scalar().elem::<f64>().sqrt())
}

/// Clip `grads` to a global norm of at most `max_norm` (0 or less: no clipping). Returns the
/// gradients and their norm before clipping.
///
/// Reference: `if ‖g‖ > c: g ← g · c / ‖g‖`
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> (GradientsParams, f64) {
    let norm = global_norm::<B, M>(module, &grads);
    if max_norm > 0.0 && norm > max_norm {
        let mut visitor = Scale {
            grads: &mut grads,
            factor: max_norm / norm,
        };
        module.visit(&mut visitor);
    }
    (grads, norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuTrainBackend;
    use burn::nn::{Linear, LinearConfig};

    type B = CpuTrainBackend;

    /// A 2×2 linear layer whose loss `Σ W ⊙ C_w + Σ b ⊙ c_b` has gradients `C_w` and `c_b`.
    fn grads_of(weight_grad: [f32; 4], bias_grad: [f32; 2]) -> (Linear<B>, GradientsParams) {
        let device = Default::default();
        let layer: Linear<B> = LinearConfig::new(2, 2).init(&device);
        let cw = Tensor::<B, 2>::from_data(TensorData::new(weight_grad.to_vec(), [2, 2]), &device);
        let cb = Tensor::<B, 1>::from_data(TensorData::new(bias_grad.to_vec(), [2]), &device);
        let bias = layer.bias.as_ref().unwrap().val();
        let loss = (layer.weight.val() * cw).sum() + (bias * cb).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        (layer, grads)
    }

    fn grad_values<const D: usize>(
        grads: &GradientsParams,
        param: &Param<Tensor<B, D>>,
    ) -> Vec<f32> {
        grads
            .get::<<B as AutodiffBackend>::InnerBackend, D>(param.id)
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap()
    }

    #[test]
    fn the_norm_is_taken_over_all_parameters_together() {
        // ‖(3, 0, 0, 0)‖ = 3 and ‖(4, 0)‖ = 4 per tensor; together sqrt(9 + 16) = 5.
        let (layer, grads) = grads_of([3.0, 0.0, 0.0, 0.0], [4.0, 0.0]);
        assert!((global_norm::<B, _>(&layer, &grads) - 5.0).abs() < 1e-6);
        let (grads, norm) = clip_global_norm::<B, _>(&layer, grads, 1.0);
        assert!((norm - 5.0).abs() < 1e-6);
        // Every gradient scaled by 1/5: the direction is kept. A per-tensor clip to 1 would
        // have given (1, 0, 0, 0) and (1, 0) instead.
        let w = grad_values(&grads, &layer.weight);
        let b = grad_values(&grads, layer.bias.as_ref().unwrap());
        for (got, want) in w.iter().chain(&b).zip([0.6, 0.0, 0.0, 0.0, 0.8, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{w:?} {b:?}");
        }
        assert!((global_norm::<B, _>(&layer, &grads) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn gradients_under_the_limit_are_left_alone() {
        let (layer, grads) = grads_of([0.3, 0.0, 0.0, 0.4], [0.0, 0.0]);
        let (grads, norm) = clip_global_norm::<B, _>(&layer, grads, 1.0);
        assert!((norm - 0.5).abs() < 1e-6);
        assert_eq!(grad_values(&grads, &layer.weight), vec![0.3, 0.0, 0.0, 0.4]);
        let (layer, grads) = grads_of([30.0, 0.0, 0.0, 40.0], [0.0, 0.0]);
        let (grads, norm) = clip_global_norm::<B, _>(&layer, grads, 0.0);
        assert!((norm - 50.0).abs() < 1e-4, "0 disables clipping");
        assert_eq!(
            grad_values(&grads, &layer.weight),
            vec![30.0, 0.0, 0.0, 40.0]
        );
    }
}
