//! Autodiff through top-k routing, checked against central finite differences in f64.
//!
//! A separate test binary on purpose: burn 0.21 fixes a device's default float dtype for the
//! whole process at first use, so f64 ndarray tensors cannot share a process with the f32 unit
//! tests. burn's default `sigmoid` also computes in f32 even on an f64 backend, so the step is
//! wide and errors are compared with the scale of the whole gradient.

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::Distribution;
use verdict_trainer::config::RouterConfig;
use verdict_trainer::model::ffn::SwiGlu;
use verdict_trainer::model::moe::MoeLayer;
use verdict_trainer::model::with_seed;

type F = Autodiff<NdArray<f64>>;

const EPS: f64 = 1e-3;

/// Compare autodiff's input gradient of `loss` with central differences at `x`.
fn check(x: &[f64], shape: [usize; 3], loss: impl Fn(Tensor<F, 3>) -> Tensor<F, 1>, what: &str) {
    let device = Default::default();
    let input =
        Tensor::<F, 3>::from_data(TensorData::new(x.to_vec(), shape), &device).require_grad();
    let grads = loss(input.clone()).backward();
    let analytic: Vec<f64> = input.grad(&grads).unwrap().into_data().to_vec().unwrap();
    let scale = analytic.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(scale > 0.0, "{what}: zero gradient");
    let value = |v: &[f64]| -> f64 {
        loss(Tensor::from_data(
            TensorData::new(v.to_vec(), shape),
            &device,
        ))
        .into_scalar()
    };
    for i in 0..x.len() {
        let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
        plus[i] += EPS;
        minus[i] -= EPS;
        let numeric = (value(&plus) - value(&minus)) / (2.0 * EPS);
        assert!(
            (numeric - analytic[i]).abs() < 1e-2 * scale,
            "{what}, x[{i}]: numeric {numeric} vs autodiff {} (gradient scale {scale})",
            analytic[i]
        );
    }
}

fn random(shape: [usize; 3]) -> Tensor<F, 3> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

#[test]
fn moe_gradients_through_top_k_routing_match_finite_differences() {
    let device = Default::default();
    // Under the crate's seed lock: the other test here draws from the same random source.
    with_seed::<F, _>(&device, 3, || {
        for (alpha, n_shared) in [(0.0, 0), (0.0, 1), (0.1, 1)] {
            let config = RouterConfig {
                n_shared,
                n_routed: 4,
                top_k: 2,
                expert_ffn_dim: 6,
                bias_update_speed: 0.0,
                seq_aux_loss_alpha: alpha,
                routed_scaling_factor: 1.0,
            };
            let layer = MoeLayer::<F>::new(5, &config, &device);
            let shape = [1, 6, 5];
            let x: Vec<f64> = random(shape).into_data().to_vec().unwrap();
            let weights = random(shape);
            let loss = |input: Tensor<F, 3>| {
                let (out, stats) = layer.forward(input);
                let mut loss = (out * weights.clone()).sum();
                if let Some(balance) = stats.balance_loss {
                    loss = loss + balance.sum();
                }
                loss
            };
            check(
                &x,
                shape,
                loss,
                &format!("moe alpha={alpha} shared={n_shared}"),
            );
        }
    });
}

#[test]
fn swiglu_gradients_match_finite_differences() {
    let device = Default::default();
    // Lazy parameters draw at first use, so the whole check runs under the seed lock.
    with_seed::<F, _>(&device, 5, || {
        let ffn = SwiGlu::<F>::new(5, 6, &device);
        let shape = [1, 6, 5];
        let x: Vec<f64> = random(shape).into_data().to_vec().unwrap();
        let weights = random(shape);
        check(
            &x,
            shape,
            |input| (ffn.forward(input) * weights.clone()).sum(),
            "swiglu",
        );
    });
}
