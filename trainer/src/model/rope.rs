//! Rotary position embedding: Su et al., "RoFormer" (arXiv:2104.09864), §3.4, eq. (34).
//!
//! Each consecutive pair `(x_{2i}, x_{2i+1})` of a head vector at position `m` is rotated by the
//! angle `m θ_i`, `θ_i = base^{-2i/d}`. The dot product of a rotated query and key then depends
//! only on their distance. DeepSeek-V2/V3 apply it to the decoupled `q^R`/`k^R` parts of MLA.

use burn::prelude::*;

/// Rotate `x` of shape `[batch, heads, seq, dim]` whose first row sits at position `offset`.
///
/// Reference (RoFormer eq. 34):
/// `R x = (x_1 cos mθ_1 - x_2 sin mθ_1, x_2 cos mθ_1 + x_1 sin mθ_1, …)`
pub fn apply_rope<B: Backend>(x: Tensor<B, 4>, offset: usize, base: f64) -> Tensor<B, 4> {
    let [batch, heads, seq, dim] = x.dims();
    let half = dim / 2;
    let device = x.device();
    let mut cos = Vec::with_capacity(seq * half);
    let mut sin = Vec::with_capacity(seq * half);
    for pos in offset..offset + seq {
        for i in 0..half {
            // θ_i = base^{-2i/d}
            let theta = base.powf(-2.0 * i as f64 / dim as f64);
            let angle = pos as f64 * theta;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    let shape = [1, 1, seq, half, 1];
    let cos = Tensor::<B, 5>::from_data(TensorData::new(cos, shape), &device);
    let sin = Tensor::<B, 5>::from_data(TensorData::new(sin, shape), &device);
    let pairs = x.reshape([batch, heads, seq, half, 2]);
    let x1 = pairs
        .clone()
        .slice([0..batch, 0..heads, 0..seq, 0..half, 0..1]);
    let x2 = pairs.slice([0..batch, 0..heads, 0..seq, 0..half, 1..2]);
    let rotated_1 = x1.clone() * cos.clone() - x2.clone() * sin.clone();
    let rotated_2 = x2 * cos + x1 * sin;
    Tensor::cat(vec![rotated_1, rotated_2], 4).reshape([batch, heads, seq, dim])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;

    type B = CpuBackend;

    fn vector(values: &[f32]) -> Tensor<B, 4> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [1, 1, 1, values.len()]),
            &Default::default(),
        )
    }

    fn at(x: &Tensor<B, 4>, pos: usize) -> Tensor<B, 4> {
        apply_rope(x.clone(), pos, 10_000.0)
    }

    fn dot(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
        (a * b).sum().into_scalar()
    }

    #[test]
    fn position_zero_is_the_identity_and_norms_are_kept() {
        let x = vector(&[0.3, -1.2, 0.7, 2.0, -0.5, 0.1]);
        let diff: f32 = (at(&x, 0) - x.clone()).abs().sum().into_scalar();
        assert!(diff < 1e-6);
        let norm = dot(x.clone(), x.clone());
        let rotated = at(&x, 37);
        assert!((dot(rotated.clone(), rotated) - norm).abs() < 1e-4);
    }

    #[test]
    fn scores_depend_only_on_relative_position() {
        let q = vector(&[0.3, -1.2, 0.7, 2.0, -0.5, 0.1]);
        let k = vector(&[1.1, 0.4, -0.9, 0.2, 0.8, -1.5]);
        let a = dot(at(&q, 5), at(&k, 2));
        let b = dot(at(&q, 40), at(&k, 37));
        let c = dot(at(&q, 5), at(&k, 4));
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        assert!((a - c).abs() > 1e-3, "different distances must differ");
    }

    #[test]
    fn rotates_the_first_pair_by_the_position_angle() {
        // θ_0 = 1, so position 1 rotates (1, 0) by one radian.
        let out: Vec<f32> = at(&vector(&[1.0, 0.0]), 1).into_data().to_vec().unwrap();
        assert!((out[0] - 1f32.cos()).abs() < 1e-6 && (out[1] - 1f32.sin()).abs() < 1e-6);
    }
}
