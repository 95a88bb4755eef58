//! Admission and backpressure: two semaphores bound the work in flight, and every rollout is
//! scored in its own task behind an abort-on-drop handle.
//!
//! - **slots** (`max_in_flight`): rollouts being scored at once;
//! - **admission** (`max_in_flight + max_queued`): rollouts accepted, scoring or waiting for a
//!   slot.
//!
//! A panic while scoring (caught by [`Chain::score_scored`]) and a task that ends otherwise both
//! become that rollout's `error` score: the server keeps serving.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::debug;

use super::ServiceError;
use crate::chain::{Chain, Scored};
use crate::metrics::Metrics;
use crate::rollout::Rollout;
use crate::score::Score;

/// The admission and slot semaphores of one service.
pub(crate) struct Admission {
    admission: Arc<Semaphore>,
    slots: Arc<Semaphore>,
    capacity: usize,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// `max_in_flight` slots (at least one) and `max_queued` more admissions.
    pub(crate) fn new(max_in_flight: usize, max_queued: usize, metrics: Arc<Metrics>) -> Self {
        let max_in_flight = max_in_flight.max(1);
        metrics.slots.set(max_in_flight as i64);
        Admission {
            admission: Arc::new(Semaphore::new(max_in_flight + max_queued)),
            slots: Arc::new(Semaphore::new(max_in_flight)),
            capacity: max_in_flight + max_queued,
            metrics,
        }
    }

    /// Take `n` admission permits now, or fail with `Overloaded`.
    pub(crate) fn admit(&self, n: usize) -> Result<OwnedSemaphorePermit, ServiceError> {
        let overloaded = || ServiceError::Overloaded {
            requested: n,
            available: self.admission.available_permits(),
            capacity: self.capacity,
        };
        let n32 = u32::try_from(n).map_err(|_| overloaded())?;
        self.admission
            .clone()
            .try_acquire_many_owned(n32)
            .map_err(|_| {
                self.metrics
                    .rejected
                    .with_label_values(&["overloaded"])
                    .inc();
                overloaded()
            })
    }

    /// One admission permit now, if one is free.
    pub(crate) fn try_admit_one(&self) -> Option<OwnedSemaphorePermit> {
        self.admission.clone().try_acquire_owned().ok()
    }

    /// One admission permit, waiting for it.
    pub(crate) fn admit_one(&self) -> impl Future<Output = OwnedSemaphorePermit> + Send + 'static {
        let admission = self.admission.clone();
        async move {
            admission
                .acquire_owned()
                .await
                .expect("the admission semaphore is never closed")
        }
    }

    /// Score `rollout` with `chain` in its own task, once a slot is free; the task holds
    /// `permit` until it ends.
    pub(crate) fn spawn_score(
        &self,
        chain: &Arc<Chain>,
        rollout: Rollout,
        permit: OwnedSemaphorePermit,
    ) -> AbortOnDrop {
        let chain = chain.clone();
        let slots = self.slots.clone();
        let metrics = self.metrics.clone();
        let id = rollout.id.clone();
        AbortOnDrop {
            id,
            task: tokio::spawn(async move {
                let _admitted = permit;
                let waiting = GaugeGuard::new(&metrics.queued);
                let _slot = slots
                    .acquire()
                    .await
                    .expect("the slot semaphore is never closed");
                drop(waiting);
                let _busy = GaugeGuard::new(&metrics.in_flight);
                let scored = chain.score_scored(&rollout).await;
                metrics.record_rollout(&scored.score);
                debug!(id = %scored.score.id, outcome = %scored.score.outcome, "Scored.");
                scored
            }),
        }
    }
}

/// A spawned scoring task that is aborted when the handle is dropped. A task that ends without
/// a score (it panicked outside the chain, or was aborted) yields the rollout's `error` score.
pub(crate) struct AbortOnDrop {
    id: String,
    task: JoinHandle<Scored>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Future for AbortOnDrop {
    type Output = Scored;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        Pin::new(&mut this.task).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| {
                Scored::alone(Score::verdict_failure(
                    this.id.clone(),
                    format!("internal error: the scoring task ended: {e}"),
                ))
            })
        })
    }
}

/// Increments a gauge while alive.
struct GaugeGuard(prometheus::IntGauge);

impl GaugeGuard {
    fn new(g: &prometheus::IntGauge) -> Self {
        g.inc();
        GaugeGuard(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
