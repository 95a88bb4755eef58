//! Evaluation of the policy on held-out problems: sample an answer per problem and check that
//! the code in it parses as Python (verdict's parse gate), or score it with verdict itself —
//! the same rewards GRPO optimises ([`reward_eval`]: pass rate by tests, parse rate, mean
//! reward). Completions are kept in verdict's rollout format so `verdict score` can rerun them.

use burn::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::data::Problem;
use crate::generate::{generate, SamplingConfig};
use crate::model::MoeTransformer;
use crate::python;
use crate::reward::{Reading, RewardSummary, Rewards};
use crate::tokenizer::{Tokenizer, TokenizerError};

/// One sampled answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answered {
    /// The problem.
    pub problem_id: String,
    /// The decoded completion (stop token removed).
    pub completion: String,
    /// Whether the completion closed its reasoning with `</think>`.
    pub think_closed: bool,
    /// Whether its code candidate parses as Python.
    pub parses: bool,
    /// Whether the code candidate equals the reference solution exactly.
    pub exact: bool,
    /// The rollout-format record (problem plus completion).
    pub rollout: Value,
}

/// Summary of a parse-rate evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct ParseReport {
    /// Problems sampled.
    pub problems: usize,
    /// Answers whose code parses as Python.
    pub parsed: usize,
    /// `parsed / problems`.
    pub parse_rate: f64,
    /// Answers with a closed `<think>…</think>` block.
    pub think_closed: usize,
    /// Answers whose code is exactly the reference solution.
    pub exact: usize,
}

/// Sample one answer per problem, `batch` prompts at a time.
pub fn sample_answers<B: Backend>(
    model: &MoeTransformer<B>,
    tokenizer: &Tokenizer,
    problems: &[Problem],
    sampling: &SamplingConfig,
    batch: usize,
    device: &B::Device,
) -> Result<Vec<Answered>, TokenizerError> {
    let mut answers = Vec::with_capacity(problems.len());
    for (chunk_index, chunk) in problems.chunks(batch.max(1)).enumerate() {
        let prompts = chunk
            .iter()
            .map(|p| tokenizer.encode(&p.prompt()))
            .collect::<Result<Vec<_>, _>>()?;
        let config = SamplingConfig {
            seed: sampling.seed.wrapping_add(chunk_index as u64),
            ..sampling.clone()
        };
        let samples = generate(model, &prompts, &config, tokenizer.eos(), device);
        for (problem, sample) in chunk.iter().zip(samples) {
            let tokens: Vec<u32> = sample
                .tokens
                .iter()
                .copied()
                .filter(|t| *t != tokenizer.eos())
                .collect();
            let completion = tokenizer.decode(&tokens)?;
            let code = python::answer_code(&completion);
            let parses = code.is_some();
            let exact = code.as_deref() == Some(problem.reference.as_str());
            answers.push(Answered {
                problem_id: problem.id.clone(),
                think_closed: completion.contains(crate::tokenizer::THINK_CLOSE),
                parses,
                exact,
                rollout: problem.rollout_json(&format!("{}#0", problem.id), &completion),
                completion,
            });
        }
    }
    Ok(answers)
}

/// Summarise sampled answers.
pub fn summarise(answers: &[Answered]) -> ParseReport {
    let parsed = answers.iter().filter(|a| a.parses).count();
    ParseReport {
        problems: answers.len(),
        parsed,
        parse_rate: parsed as f64 / answers.len().max(1) as f64,
        think_closed: answers.iter().filter(|a| a.think_closed).count(),
        exact: answers.iter().filter(|a| a.exact).count(),
    }
}

/// Held-out problems scored by verdict.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RewardEval {
    /// Problems sampled.
    pub problems: usize,
    /// Answers sampled per problem (pass@1 is estimated as the share of all answers that pass).
    #[serde(default = "one")]
    pub samples: usize,
    /// Answers that got no score (their batch missed the deadline); they count as not passed.
    pub unscored: usize,
    /// Pass rate (every test passed), parse rate, mean reward and per-verifier means; the rates
    /// are over all `problems × samples` answers.
    #[serde(flatten)]
    pub summary: RewardSummary,
    /// Seconds for sampling and scoring.
    pub wall_s: f64,
}

fn one() -> usize {
    1
}

/// Sample `samples` answers per problem (each round with its own seed; at temperature 0 the
/// rounds are identical, so use 1) and score them with verdict. The pass rate is the share of
/// all answers that pass every test: with `samples > 1` at a positive temperature, the pass@1
/// of the sampled policy averaged over `samples` draws.
#[allow(clippy::too_many_arguments)]
pub fn reward_eval<B: Backend>(
    model: &MoeTransformer<B>,
    tokenizer: &Tokenizer,
    problems: &[Problem],
    sampling: &SamplingConfig,
    samples: usize,
    batch: usize,
    rewards: &Rewards,
    device: &B::Device,
) -> Result<RewardEval, TokenizerError> {
    let started = std::time::Instant::now();
    let samples = samples.max(1);
    let mut rollouts: Vec<verdict::Rollout> = Vec::with_capacity(problems.len() * samples);
    for round in 0..samples {
        let config = SamplingConfig {
            seed: sampling
                .seed
                .wrapping_add((round as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            ..sampling.clone()
        };
        let answers = sample_answers(model, tokenizer, problems, &config, batch, device)?;
        rollouts.extend(answers.into_iter().filter_map(|mut a| {
            a.rollout["id"] = Value::String(format!("{}#{round}", a.problem_id));
            serde_json::from_value(a.rollout).ok()
        }));
    }
    let scores = rewards.score_all(rollouts, batch);
    let readings: Vec<Reading> = scores.iter().flatten().map(Reading::of).collect();
    let answers = problems.len() * samples;
    let unscored = answers - readings.len();
    let mut summary = RewardSummary::of(&readings);
    // Rates over every answer: an unscored answer is not a pass.
    let n = answers.max(1) as f64;
    summary.pass_rate = readings.iter().filter(|r| r.passed).count() as f64 / n;
    summary.parse_rate = readings.iter().filter(|r| r.parsed).count() as f64 / n;
    Ok(RewardEval {
        problems: problems.len(),
        samples,
        unscored,
        summary,
        wall_s: started.elapsed().as_secs_f64(),
    })
}
