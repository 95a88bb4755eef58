//! The scoring seam under the JSONL loop: a [`Scorer`] scores one window of records, either
//! with the chain in this process or through `verdict serve` replicas. Everything else —
//! reading, resume, windows, ordering, progress, the summary — is the loop's
//! ([`super::score_lines`]), so local and remote runs write the same records.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::BatchError;
use crate::chain::{Chain, Scored};
use crate::client::Client;
use crate::rollout::Rollout;
use crate::score::Score;

/// Rollouts per `ScoreBatch` call when the remote chain has no groupwise steps.
pub const REMOTE_BATCH: usize = 64;

/// What scores the windows of a batch run.
#[derive(Debug, Clone)]
pub enum Scorer {
    /// The chain, here; at most `jobs` rollouts at once.
    Local {
        /// The chain.
        chain: Arc<Chain>,
        /// Bounds the rollouts being scored at once (`--jobs`).
        jobs: Arc<Semaphore>,
    },
    /// `verdict serve` replicas: each window is one `ScoreBatch` call.
    Remote(Arc<Client>),
}

impl Scorer {
    /// Score with `chain` here, `jobs` rollouts at once.
    pub fn local(chain: Arc<Chain>, jobs: usize) -> Self {
        Scorer::Local {
            chain,
            jobs: Arc::new(Semaphore::new(jobs.max(1))),
        }
    }

    /// Score through `client`.
    pub fn remote(client: Arc<Client>) -> Self {
        Scorer::Remote(client)
    }

    /// Whether the chain compares the rollouts of a group (then a window is `--group-window`
    /// records, scored together). Remote: asks a replica (`ListVerifiers`).
    pub async fn groupwise(&self) -> Result<bool, BatchError> {
        Ok(match self {
            Scorer::Local { chain, .. } => chain.has_groupwise_steps(),
            Scorer::Remote(client) => client
                .list_verifiers()
                .await
                .map_err(BatchError::Remote)?
                .chain
                .iter()
                .any(|s| s.groupwise),
        })
    }

    /// Records per window without groupwise steps: one locally (written as soon as it is in
    /// order), [`REMOTE_BATCH`] remotely (one call each).
    pub fn plain_window(&self) -> usize {
        match self {
            Scorer::Local { .. } => 1,
            Scorer::Remote(_) => REMOTE_BATCH,
        }
    }

    /// Score one window: rollouts, or the records already decided for them (invalid lines).
    /// Scores come back in order; the group pass ran over the window.
    pub async fn score_window(
        &self,
        items: Vec<Result<Rollout, Box<Score>>>,
    ) -> Result<Vec<Score>, BatchError> {
        match self {
            Scorer::Local { chain, jobs } => Ok(chain
                .score_batch_with(items, |rollout| {
                    let chain = chain.clone();
                    let jobs = jobs.clone();
                    let id = rollout.id.clone();
                    async move {
                        let task = tokio::spawn(async move {
                            let _job = jobs.acquire_owned().await.expect("never closed");
                            chain.score_scored(&rollout).await
                        });
                        task.await.unwrap_or_else(|join| {
                            Scored::alone(Score::verdict_failure(
                                id,
                                format!("internal error: the scoring task ended: {join}"),
                            ))
                        })
                    }
                })
                .await),
            Scorer::Remote(client) => {
                let valid: Vec<Rollout> = items
                    .iter()
                    .filter_map(|i| i.as_ref().ok().cloned())
                    .collect();
                let mut scored = if valid.is_empty() {
                    Vec::new()
                } else {
                    client
                        .score_batch(&valid)
                        .await
                        .map_err(BatchError::Remote)?
                }
                .into_iter();
                Ok(items
                    .into_iter()
                    .map(|item| match item {
                        Ok(_) => scored.next().expect("one score per rollout sent"),
                        Err(invalid) => *invalid,
                    })
                    .collect())
            }
        }
    }
}
