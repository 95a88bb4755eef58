//! Token data turned into training batches: random windows of the packed base corpus
//! (pretraining) and right-padded prompt → completion examples with a completion-only loss mask
//! (SFT). An SFT batch is padded only to its longest row, and every batch says which input
//! positions are real tokens ([`HostBatch::valid`]) so padding stays out of the MoE statistics.

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::Rng;

/// A batch on the host: `inputs[b][t]` predicts `targets[b][t]`, weighted by `mask[b][t]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Rows.
    pub batch: usize,
    /// Positions per row.
    pub seq: usize,
    /// Input ids, row-major.
    pub inputs: Vec<i64>,
    /// Next-token targets, row-major.
    pub targets: Vec<i64>,
    /// 1 where the target counts toward the loss, 0 for prompt and padding.
    pub mask: Vec<f32>,
    /// Whether each input position holds a real token (false for padding).
    pub valid: Vec<bool>,
}

/// A batch as tensors.
#[derive(Debug, Clone)]
pub struct Batch<B: Backend> {
    /// `[batch, seq]` input ids.
    pub inputs: Tensor<B, 2, Int>,
    /// `[batch, seq]` target ids.
    pub targets: Tensor<B, 2, Int>,
    /// `[batch, seq]` loss weights.
    pub mask: Tensor<B, 2>,
    /// Row-major `batch * seq`: whether each input is a real token (see
    /// [`MoeTransformer::forward_masked`](crate::MoeTransformer::forward_masked)).
    pub valid: Vec<bool>,
}

impl HostBatch {
    /// Move to `device`.
    pub fn to_device<B: Backend>(&self, device: &B::Device) -> Batch<B> {
        let shape = [self.batch, self.seq];
        Batch {
            inputs: Tensor::from_data(TensorData::new(self.inputs.clone(), shape), device),
            targets: Tensor::from_data(TensorData::new(self.targets.clone(), shape), device),
            mask: Tensor::from_data(TensorData::new(self.mask.clone(), shape), device),
            valid: self.valid.clone(),
        }
    }

    /// Number of target tokens that count toward the loss.
    pub fn counted_tokens(&self) -> usize {
        self.mask.iter().filter(|&&m| m > 0.0).count()
    }
}

/// Where batches come from.
pub trait BatchSource {
    /// A random training batch.
    fn sample(&self, rng: &mut StdRng, batch: usize, seq: usize) -> HostBatch;
    /// `count` fixed evaluation batches (the same every call).
    fn fixed(&self, count: usize, batch: usize, seq: usize) -> Vec<HostBatch>;
}

/// The base corpus packed into one token stream (documents end with EOS).
#[derive(Debug, Clone)]
pub struct PackedCorpus {
    tokens: Vec<u32>,
}

impl PackedCorpus {
    /// Pack tokenised documents.
    pub fn new(documents: impl IntoIterator<Item = Vec<u32>>) -> Self {
        Self {
            tokens: documents.into_iter().flatten().collect(),
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the corpus is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    fn window(&self, start: usize, seq: usize) -> (Vec<i64>, Vec<i64>) {
        let window: Vec<i64> = (0..=seq)
            .map(|i| i64::from(self.tokens[(start + i) % self.tokens.len()]))
            .collect();
        (window[..seq].to_vec(), window[1..].to_vec())
    }

    fn batch_at(&self, starts: &[usize], seq: usize) -> HostBatch {
        let mut inputs = Vec::with_capacity(starts.len() * seq);
        let mut targets = Vec::with_capacity(starts.len() * seq);
        for &start in starts {
            let (i, t) = self.window(start, seq);
            inputs.extend(i);
            targets.extend(t);
        }
        HostBatch {
            batch: starts.len(),
            seq,
            inputs,
            targets,
            mask: vec![1.0; starts.len() * seq],
            valid: vec![true; starts.len() * seq],
        }
    }
}

impl BatchSource for PackedCorpus {
    fn sample(&self, rng: &mut StdRng, batch: usize, seq: usize) -> HostBatch {
        let starts: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..self.tokens.len()))
            .collect();
        self.batch_at(&starts, seq)
    }

    fn fixed(&self, count: usize, batch: usize, seq: usize) -> Vec<HostBatch> {
        let n = count * batch;
        let stride = (self.tokens.len() / n.max(1)).max(1);
        (0..count)
            .map(|c| {
                let starts: Vec<usize> = (0..batch).map(|b| (c * batch + b) * stride).collect();
                self.batch_at(&starts, seq)
            })
            .collect()
    }
}

/// Prompt → completion examples; only completion tokens count toward the loss.
#[derive(Debug, Clone)]
pub struct SftExamples {
    /// `(prompt ids, completion ids)`.
    examples: Vec<(Vec<u32>, Vec<u32>)>,
    pad: u32,
}

impl SftExamples {
    /// Wrap tokenised examples; `pad` fills rows (masked out).
    pub fn new(examples: Vec<(Vec<u32>, Vec<u32>)>, pad: u32) -> Self {
        Self { examples, pad }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Rows `indices`, each cut to `seq` inputs, right-padded to the longest row.
    fn batch_of(&self, indices: &[usize], seq: usize) -> HostBatch {
        let rows: Vec<(usize, Vec<u32>)> = indices
            .iter()
            .map(|&i| {
                let (prompt, completion) = &self.examples[i];
                (
                    prompt.len(),
                    prompt.iter().chain(completion).copied().collect(),
                )
            })
            .collect();
        right_padded(&rows, seq, self.pad)
    }
}

impl BatchSource for SftExamples {
    fn sample(&self, rng: &mut StdRng, batch: usize, seq: usize) -> HostBatch {
        let indices: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..self.examples.len()))
            .collect();
        self.batch_of(&indices, seq)
    }

    fn fixed(&self, count: usize, batch: usize, seq: usize) -> Vec<HostBatch> {
        (0..count)
            .map(|c| {
                let indices: Vec<usize> = (0..batch)
                    .map(|b| (c * batch + b) % self.examples.len())
                    .collect();
                self.batch_of(&indices, seq)
            })
            .collect()
    }
}

/// A batch of `(prompt length, prompt + completion tokens)` rows: inputs `tokens[..n - 1]`,
/// targets `tokens[1..]`, the loss on completion targets only, each row cut to `max_seq` inputs
/// and right-padded with `pad` to the longest row (not to `max_seq`).
pub fn right_padded(rows: &[(usize, Vec<u32>)], max_seq: usize, pad: u32) -> HostBatch {
    let seq = rows
        .iter()
        .map(|(_, tokens)| tokens.len().saturating_sub(1).min(max_seq))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut batch = HostBatch {
        batch: rows.len(),
        seq,
        inputs: Vec::with_capacity(rows.len() * seq),
        targets: Vec::with_capacity(rows.len() * seq),
        mask: Vec::with_capacity(rows.len() * seq),
        valid: Vec::with_capacity(rows.len() * seq),
    };
    for (prompt_len, tokens) in rows {
        let len = tokens.len().saturating_sub(1).min(seq);
        for t in 0..seq {
            let real = t < len;
            let input = if real { tokens[t] } else { pad };
            let target = if real { tokens[t + 1] } else { pad };
            batch.inputs.push(i64::from(input));
            batch.targets.push(i64::from(target));
            // Target t + 1 is a completion token.
            let counts = real && t + 1 >= *prompt_len;
            batch.mask.push(if counts { 1.0 } else { 0.0 });
            batch.valid.push(real);
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn corpus_windows_shift_targets_by_one() {
        let corpus = PackedCorpus::new([vec![1, 2, 3], vec![4, 5, 6, 7]]);
        let batch = corpus.sample(&mut StdRng::seed_from_u64(1), 3, 4);
        for row in 0..3 {
            let i = &batch.inputs[row * 4..row * 4 + 4];
            let t = &batch.targets[row * 4..row * 4 + 4];
            assert_eq!(&i[1..], &t[..3]);
        }
        assert_eq!(corpus.fixed(2, 2, 3), corpus.fixed(2, 2, 3));
    }

    #[test]
    fn sft_mask_covers_only_completion_targets() {
        let set = SftExamples::new(
            vec![(vec![10, 11, 12], vec![20, 21]), (vec![10, 11], vec![30])],
            0,
        );
        let batch = set.fixed(1, 2, 64).remove(0);
        // Padded to the longest row (4 inputs), not to 64.
        assert_eq!(batch.seq, 4);
        assert_eq!(batch.inputs, vec![10, 11, 12, 20, 10, 11, 0, 0]);
        assert_eq!(batch.targets, vec![11, 12, 20, 21, 11, 30, 0, 0]);
        assert_eq!(batch.mask, vec![0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(
            batch.valid,
            vec![true, true, true, true, true, true, false, false]
        );
        assert_eq!(batch.counted_tokens(), 3);
        // A row longer than the limit is cut.
        let cut = set.fixed(1, 1, 2).remove(0);
        assert_eq!((cut.seq, cut.inputs.clone()), (2, vec![10, 11]));
    }
}
