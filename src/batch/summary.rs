//! The [`Summary`] of a batch run: counts, mean reward, outcome histogram, throughput.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::score::{Outcome, Score};

/// What a batch run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Lines scored in this run (including invalid ones).
    pub scored: usize,
    /// Lines found already scored in the output and skipped (`--resume`).
    pub resumed: usize,
    /// Lines of this run that could not be scored (`invalid_input`).
    pub invalid: usize,
    /// Rollouts of this run verdict could not judge (`error`: reward `null`, to be masked);
    /// counted apart from `failed`, and left out of the mean reward.
    pub errors: usize,
    /// `invalid_input` records among the resumed lines.
    pub resumed_invalid: usize,
    /// Mean reward over the lines of this run that have one (neither invalid nor `error`).
    pub mean_reward: f64,
    /// How many lines got each outcome.
    pub outcomes: BTreeMap<Outcome, usize>,
    /// Wall time of the run.
    #[serde(skip)]
    pub elapsed: Duration,
    #[serde(skip)]
    reward_sum: f64,
}

impl Summary {
    /// An empty summary of a run that resumed after `resumed` records, `resumed_invalid` of them
    /// `invalid_input`.
    pub fn resuming(resumed: usize, resumed_invalid: usize) -> Self {
        Summary {
            resumed,
            resumed_invalid,
            ..Summary::default()
        }
    }

    /// Count one written record.
    pub fn record(&mut self, score: &Score) {
        self.scored += 1;
        *self.outcomes.entry(score.outcome).or_default() += 1;
        match score.outcome {
            Outcome::InvalidInput => self.invalid += 1,
            Outcome::Error => self.errors += 1,
            _ => self.reward_sum += score.reward.unwrap_or(0.0),
        }
        let valid = self.scored - self.invalid - self.errors;
        self.mean_reward = if valid > 0 {
            self.reward_sum / valid as f64
        } else {
            0.0
        };
    }

    /// Whether any line of the output (this run or resumed) is an `invalid_input` record.
    pub fn any_invalid(&self) -> bool {
        self.invalid + self.resumed_invalid > 0
    }

    /// Whether any rollout of this run got the `error` outcome (verdict could not judge it).
    pub fn any_errors(&self) -> bool {
        self.errors > 0
    }

    /// Rollouts per second over this run.
    pub fn throughput(&self) -> f64 {
        self.scored as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scored {} rollouts in {:.2}s ({:.1}/s), mean reward {:.3}",
            self.scored,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.mean_reward
        )?;
        if self.resumed > 0 {
            write!(f, ", {} already scored (resumed)", self.resumed)?;
        }
        if self.invalid + self.resumed_invalid > 0 {
            write!(f, ", {} invalid", self.invalid + self.resumed_invalid)?;
        }
        if self.errors > 0 {
            write!(
                f,
                ", {} not judged (outcome error, reward null: mask them)",
                self.errors
            )?;
        }
        let hist: Vec<String> = self
            .outcomes
            .iter()
            .map(|(o, n)| format!("{o}={n}"))
            .collect();
        write!(f, "\noutcomes: {}", hist.join(" "))
    }
}
