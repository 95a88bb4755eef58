//! The DeepSeekMoE feed-forward with aux-loss-free load balancing: DeepSeek-V3
//! (arXiv:2412.19437) §2.1.2, eqs. (12)–(20); the shared/fine-grained expert split is from
//! DeepSeekMoE (arXiv:2401.06066) §3.
//!
//! Routing is sigmoid affinity → top-k on `score + bias` → weights normalised over the selected
//! experts. The bias only steers selection; it gets no gradient and is moved by ±γ after each
//! step toward balanced load ([`MoeLayer::update_bias`]). Tokens are dispatched sparsely: each
//! routed expert runs only on the tokens that chose it.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::IndexingUpdateOp;

use super::ffn::SwiGlu;
use crate::config::RouterConfig;

/// The routing decision for a batch of tokens.
#[derive(Debug, Clone)]
pub struct Routing<B: Backend> {
    /// Raw affinities `s_{i,t} = sigmoid(u_t^T e_i)`, `[tokens, n_routed]`.
    pub scores: Tensor<B, 2>,
    /// Gate weights `g_{i,t}`, zero for unselected experts, `[tokens, n_routed]`.
    pub gates: Tensor<B, 2>,
    /// The selected experts of each token, row-major `[tokens][top_k]`.
    pub selected: Vec<Vec<usize>>,
}

/// Route tokens given their affinities `scores` (`[tokens, n_routed]`), the balancing `bias`
/// (`[n_routed]`) and `top_k`.
pub fn route<B: Backend>(scores: Tensor<B, 2>, bias: Tensor<B, 1>, top_k: usize) -> Routing<B> {
    let [tokens, experts] = scores.dims();
    // g'_{i,t} = s_{i,t} if s_{i,t} + b_i ∈ Topk({s_{j,t} + b_j | 1 <= j <= N_r}, K_r), else 0   (eq. 16)
    let biased = scores.clone().detach() + bias.reshape([1, experts]).expand([tokens, experts]);
    let (_, indices) = biased.topk_with_indices(top_k, 1);
    let chosen = scores.clone().gather(1, indices.clone());
    // g_{i,t} = g'_{i,t} / sum_j g'_{j,t}   (eq. 13)
    let weights = chosen.clone() / chosen.sum_dim(1);
    let gates = Tensor::zeros([tokens, experts], &scores.device()).scatter(
        1,
        indices.clone(),
        weights,
        IndexingUpdateOp::Add,
    );
    let flat: Vec<i64> = indices.into_data().iter::<i64>().collect();
    let selected = flat
        .chunks(top_k)
        .map(|row| row.iter().map(|&e| e as usize).collect())
        .collect();
    Routing {
        scores,
        gates,
        selected,
    }
}

/// Tokens routed to each expert.
pub fn expert_load(selected: &[Vec<usize>], n_routed: usize) -> Vec<usize> {
    let mut load = vec![0; n_routed];
    for row in selected {
        for &e in row {
            load[e] += 1;
        }
    }
    load
}

/// The aux-loss-free bias update (§2.1.2): "decrease the bias term by γ if its corresponding
/// expert is overloaded, and increase it by γ if its corresponding expert is underloaded".
///
/// Returns the per-expert change to add to the bias.
pub fn bias_delta(load: &[f64], gamma: f64) -> Vec<f32> {
    let mean = load.iter().sum::<f64>() / load.len().max(1) as f64;
    load.iter()
        // b_i <- b_i + γ · sign(mean load − load_i)
        .map(|&l| (gamma * (mean - l).signum() * f64::from((mean - l).abs() > 1e-9)) as f32)
        .collect()
}

/// The sequence-wise balance loss (eqs. 17–20), averaged over sequences.
///
/// `scores` and `gates` are `[batch, seq, n_routed]`; `valid` (`[batch, seq]`, 1 for a real
/// token, 0 for padding) restricts every sum over `t` to the real tokens, so `T` is each
/// sequence's own length.
pub fn sequence_balance_loss<B: Backend>(
    scores: Tensor<B, 3>,
    gates: Tensor<B, 3>,
    top_k: usize,
    alpha: f64,
    valid: Option<Tensor<B, 2>>,
) -> Tensor<B, 1> {
    let [batch, seq, experts] = scores.dims();
    let valid = valid
        .unwrap_or_else(|| Tensor::ones([batch, seq], &scores.device()))
        .reshape([batch, seq, 1]);
    // T: real tokens per sequence
    let t = valid.clone().sum_dim(1).clamp_min(1.0);
    // f_i = N_r / (K_r T) sum_t 1(s_{i,t} ∈ Topk(...))   (eq. 18)
    let f = (gates.detach().greater_elem(0.0).float() * valid.clone())
        .sum_dim(1)
        .mul_scalar(experts as f64 / top_k as f64)
        / t.clone();
    // s'_{i,t} = s_{i,t} / sum_j s_{j,t} ; P_i = 1/T sum_t s'_{i,t}   (eqs. 19–20)
    let normalised = scores.clone() / scores.sum_dim(2);
    let p = (normalised * valid).sum_dim(1) / t;
    // L_Bal = α sum_i f_i P_i   (eq. 17)
    (f * p).sum_dim(2).reshape([batch]).mean().mul_scalar(alpha)
}

/// What a MoE layer reports about one forward pass.
#[derive(Debug, Clone)]
pub struct MoeStats<B: Backend> {
    /// Tokens routed to each expert.
    pub load: Vec<usize>,
    /// The sequence-wise balance loss, when enabled.
    pub balance_loss: Option<Tensor<B, 1>>,
}

/// A DeepSeekMoE feed-forward: shared experts plus routed experts.
#[derive(Module, Debug)]
pub struct MoeLayer<B: Backend> {
    /// Expert centroids `e_i`, `[n_routed, d_model]`.
    centroids: Param<Tensor<B, 2>>,
    /// Balancing bias `b_i` (no gradient; moved by [`MoeLayer::update_bias`]).
    bias: Param<Tensor<B, 1>>,
    /// The `N_s` shared experts, fused into one SwiGLU of width `N_s * expert_ffn_dim` (as in
    /// DeepSeek-V3's reference code).
    shared: Option<SwiGlu<B>>,
    experts: Vec<SwiGlu<B>>,
    top_k: usize,
    alpha: f64,
    scale: f64,
}

impl<B: Backend> MoeLayer<B> {
    /// Build a layer of `d_model` width.
    pub fn new(d_model: usize, config: &RouterConfig, device: &B::Device) -> Self {
        let centroids = Tensor::random(
            [config.n_routed, d_model],
            burn::tensor::Distribution::Normal(0.0, 0.02),
            device,
        );
        let bias = Tensor::zeros([config.n_routed], device);
        Self {
            centroids: Param::from_tensor(centroids),
            bias: Param::from_tensor(bias).set_require_grad(false),
            shared: (config.n_shared > 0)
                .then(|| SwiGlu::new(d_model, config.n_shared * config.expert_ffn_dim, device)),
            experts: (0..config.n_routed)
                .map(|_| SwiGlu::new(d_model, config.expert_ffn_dim, device))
                .collect(),
            top_k: config.top_k,
            alpha: config.seq_aux_loss_alpha,
            scale: config.routed_scaling_factor,
        }
    }

    /// The current balancing bias.
    pub fn bias(&self) -> Tensor<B, 1> {
        self.bias.val()
    }

    /// Move the bias by ±`gamma` toward balanced load, given the load of the last step.
    pub fn update_bias(&mut self, load: &[f64], gamma: f64) {
        let delta = bias_delta(load, gamma);
        let device = self.bias.val().device();
        let delta = Tensor::<B, 1>::from_data(TensorData::new(delta, [load.len()]), &device);
        let bias = self.bias.clone();
        self.bias = bias.map(|b| (b + delta).detach().set_require_grad(false));
    }

    /// Apply to `x` of shape `[batch, seq, d_model]`, every token real.
    pub fn forward(&self, x: Tensor<B, 3>) -> (Tensor<B, 3>, MoeStats<B>) {
        self.forward_masked(x, None)
    }

    /// Apply to `x` of shape `[batch, seq, d_model]`. Where `valid` (row-major, `batch * seq`)
    /// is given, only its real tokens are dispatched to routed experts (padding gets the shared
    /// experts only) and counted in the loads and the balance loss.
    pub fn forward_masked(
        &self,
        x: Tensor<B, 3>,
        valid: Option<&[bool]>,
    ) -> (Tensor<B, 3>, MoeStats<B>) {
        let [batch, seq, d] = x.dims();
        let tokens = batch * seq;
        let valid = valid.filter(|v| v.len() == tokens);
        let flat = x.reshape([tokens, d]);
        // s_{i,t} = Sigmoid(u_t^T e_i)   (eq. 15)
        let scores = sigmoid(flat.clone().matmul(self.centroids.val().transpose()));
        let mut routing = route(scores, self.bias.val(), self.top_k);
        if let Some(valid) = valid {
            for (row, &ok) in routing.selected.iter_mut().zip(valid) {
                if !ok {
                    row.clear();
                }
            }
        }
        let n_routed = self.experts.len();
        let load = expert_load(&routing.selected, n_routed);

        // h'_t = u_t + sum_i FFN_i^(s)(u_t) + sum_i g_{i,t} FFN_i^(r)(u_t)   (eq. 12; the
        // residual u_t is added by the block)
        let mut routed = Tensor::<B, 2>::zeros([tokens, d], &flat.device());
        let mut members: Vec<Vec<i64>> = vec![Vec::new(); n_routed];
        for (t, row) in routing.selected.iter().enumerate() {
            for &e in row {
                members[e].push(t as i64);
            }
        }
        let device = flat.device();
        for (e, expert) in self.experts.iter().enumerate() {
            if members[e].is_empty() {
                continue;
            }
            let n = members[e].len();
            let idx = Tensor::<B, 1, Int>::from_data(
                TensorData::new(std::mem::take(&mut members[e]), [n]),
                &device,
            );
            let inputs = flat.clone().select(0, idx.clone());
            let gate = routing
                .gates
                .clone()
                .slice([0..tokens, e..e + 1])
                .select(0, idx.clone());
            let out = expert.forward(inputs) * gate;
            routed = routed.select_assign(0, idx, out, IndexingUpdateOp::Add);
        }
        let mut out = routed.mul_scalar(self.scale);
        if let Some(shared) = &self.shared {
            out = out + shared.forward(flat);
        }
        let balance_loss = (self.alpha > 0.0).then(|| {
            let mask = valid.map(|v| {
                let values: Vec<f32> = v.iter().map(|&ok| f32::from(u8::from(ok))).collect();
                Tensor::<B, 2>::from_data(TensorData::new(values, [batch, seq]), &device)
            });
            sequence_balance_loss(
                routing.scores.reshape([batch, seq, n_routed]),
                routing.gates.reshape([batch, seq, n_routed]),
                self.top_k,
                self.alpha,
                mask,
            )
        });
        (
            out.reshape([batch, seq, d]),
            MoeStats { load, balance_loss },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::model::with_seed;

    type B = CpuBackend;

    fn tensor2(rows: &[&[f32]]) -> Tensor<B, 2> {
        let cols = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(
            TensorData::new(flat, [rows.len(), cols]),
            &Default::default(),
        )
    }

    fn tensor1(values: &[f32]) -> Tensor<B, 1> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len()]),
            &Default::default(),
        )
    }

    #[test]
    fn top_k_uses_the_bias_for_selection_only() {
        let scores = tensor2(&[&[0.9, 0.8, 0.1, 0.2]]);
        let plain = route(scores.clone(), tensor1(&[0.0; 4]), 2);
        let mut chosen = plain.selected[0].clone();
        chosen.sort();
        assert_eq!(chosen, vec![0, 1]);
        // A bias on expert 3 makes it win a slot, but its weight comes from the raw score.
        let biased = route(scores, tensor1(&[0.0, 0.0, 0.0, 1.0]), 2);
        let mut chosen = biased.selected[0].clone();
        chosen.sort();
        assert_eq!(chosen, vec![0, 3]);
        let gates: Vec<f32> = biased.gates.into_data().to_vec().unwrap();
        assert!((gates[0] - 0.9 / 1.1).abs() < 1e-6, "{gates:?}");
        assert!((gates[3] - 0.2 / 1.1).abs() < 1e-6, "{gates:?}");
        assert_eq!(gates[1], 0.0);
    }

    #[test]
    fn gate_weights_sum_to_one_over_the_selected_experts() {
        let scores = tensor2(&[&[0.3, 0.6, 0.5, 0.9, 0.2], &[0.7, 0.1, 0.4, 0.2, 0.8]]);
        let routing = route(scores, tensor1(&[0.0; 5]), 3);
        let sums: Vec<f32> = routing
            .gates
            .clone()
            .sum_dim(1)
            .into_data()
            .to_vec()
            .unwrap();
        for s in sums {
            assert!((s - 1.0).abs() < 1e-6);
        }
        let nonzero = routing.gates.greater_elem(0.0).int().sum().into_scalar();
        assert_eq!(nonzero, 6);
    }

    #[test]
    fn bias_update_moves_a_skewed_load_toward_balance() {
        let device = Default::default();
        let config = RouterConfig {
            n_shared: 0,
            n_routed: 4,
            top_k: 1,
            expert_ffn_dim: 4,
            bias_update_speed: 0.01,
            seq_aux_loss_alpha: 0.0,
            routed_scaling_factor: 1.0,
        };
        let (mut layer, mut centroids, x) = with_seed::<B, _>(&device, 7, || {
            let layer = MoeLayer::<B>::new(8, &config, &device);
            let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
            let centroids: Vec<f32> = Tensor::<B, 2>::random([4, 8], normal, &device)
                .into_data()
                .to_vec()
                .unwrap();
            let normal = burn::tensor::Distribution::Normal(0.5, 1.0);
            let x = Tensor::<B, 3>::random([4, 16, 8], normal, &device);
            (layer, centroids, x)
        });
        // Random centroids, with expert 0 aligned with the batch's mean direction: a skewed start.
        centroids[..8].iter_mut().for_each(|c| *c += 2.0);
        layer.centroids = Param::from_tensor(Tensor::from_data(
            TensorData::new(centroids, [4, 8]),
            &device,
        ));
        let imbalance = |load: &[usize]| {
            let max = *load.iter().max().unwrap() as f64;
            max / (load.iter().sum::<usize>() as f64 / load.len() as f64)
        };
        let (_, first) = layer.forward(x.clone());
        assert!(first.load[0] > 32, "skewed start: {:?}", first.load);
        let mut load = first.load.clone();
        let mut late = Vec::new();
        for step in 0..200 {
            let as_f64: Vec<f64> = load.iter().map(|&l| l as f64).collect();
            layer.update_bias(&as_f64, config.bias_update_speed);
            load = layer.forward(x.clone()).1.load;
            if step >= 150 {
                late.push(imbalance(&load));
            }
        }
        // Top-1 routing of 64 tokens oscillates around balance: compare the late average.
        let late = late.iter().sum::<f64>() / late.len() as f64;
        assert!(
            late < 0.6 * imbalance(&first.load),
            "{:?} -> {load:?} (late max/mean {late:.2})",
            first.load
        );
        let bias: Vec<f32> = layer.bias().into_data().to_vec().unwrap();
        assert!(bias[0] < 0.0, "the overloaded expert's bias fell: {bias:?}");
    }

    #[test]
    fn padding_counts_in_neither_the_loads_nor_the_balance_loss() {
        let device = Default::default();
        let config = RouterConfig {
            n_shared: 1,
            n_routed: 4,
            top_k: 2,
            expert_ffn_dim: 4,
            bias_update_speed: 0.01,
            seq_aux_loss_alpha: 1.0,
            routed_scaling_factor: 1.0,
        };
        let (layer, real) = with_seed::<B, _>(&device, 3, || {
            let layer = MoeLayer::<B>::new(8, &config, &device);
            let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
            (layer, Tensor::<B, 3>::random([1, 5, 8], normal, &device))
        });
        // Three copies of one padding embedding, as a right-padded batch has.
        let pad = Tensor::<B, 3>::ones([1, 3, 8], &device).mul_scalar(3.0);
        let padded = Tensor::cat(vec![real.clone(), pad], 1);
        let valid = [true, true, true, true, true, false, false, false];
        let (out_alone, alone) = layer.forward(real);
        let (out_masked, masked) = layer.forward_masked(padded.clone(), Some(&valid));
        assert_eq!(masked.load, alone.load);
        assert_eq!(masked.load.iter().sum::<usize>(), 5 * 2);
        let balance = |s: &MoeStats<B>| -> f32 { s.balance_loss.clone().unwrap().into_scalar() };
        assert!((balance(&masked) - balance(&alone)).abs() < 1e-6);
        let real_rows = out_masked.slice([0..1, 0..5, 0..8]);
        assert!((real_rows - out_alone).abs().max().into_scalar() < 1e-5);
        // Without the mask the padding takes 6 of the 16 expert slots.
        let (_, unmasked) = layer.forward(padded);
        assert_eq!(unmasked.load.iter().sum::<usize>(), 8 * 2);
        assert!((balance(&unmasked) - balance(&alone)).abs() > 1e-4);
    }

    #[test]
    fn bias_delta_signs_follow_the_load() {
        let delta = bias_delta(&[10.0, 2.0, 4.0], 0.1);
        // mean 16/3: overloaded expert 0 goes down, the others go up.
        assert_eq!(delta, vec![-0.1, 0.1, 0.1]);
        assert_eq!(bias_delta(&[3.0, 3.0], 0.1), vec![0.0, 0.0]);
    }

    #[test]
    fn balance_loss_is_smallest_for_uniform_routing() {
        let uniform = Tensor::<B, 3>::ones([1, 4, 4], &Default::default());
        let gates_uniform = Tensor::<B, 3>::from_data(
            TensorData::new(
                vec![
                    1.0f32, 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.,
                ],
                [1, 4, 4],
            ),
            &Default::default(),
        );
        let gates_skewed = Tensor::<B, 3>::from_data(
            TensorData::new(
                vec![
                    1.0f32, 0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 0.,
                ],
                [1, 4, 4],
            ),
            &Default::default(),
        );
        let skewed_scores = Tensor::<B, 3>::from_data(
            TensorData::new(
                vec![
                    0.9f32, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1,
                    0.1,
                ],
                [1, 4, 4],
            ),
            &Default::default(),
        );
        let balanced: f32 =
            sequence_balance_loss(uniform, gates_uniform, 1, 1.0, None).into_scalar();
        let skewed: f32 =
            sequence_balance_loss(skewed_scores, gates_skewed, 1, 1.0, None).into_scalar();
        assert!((balanced - 1.0).abs() < 1e-5, "{balanced}");
        assert!(skewed > balanced, "{skewed} vs {balanced}");
    }
}
