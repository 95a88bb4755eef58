//! The tonic `RewardService`: Score, ScoreBatch, ScoreStream and ListVerifiers.
//!
//! In parts:
//! - this file: the trait impl and the one function that turns a wire rollout into a
//!   [`Rollout`] or its `invalid_input` record ([`wire_rollout`]);
//! - `admission`: two semaphores bound the work in flight; each rollout is a task behind an
//!   abort-on-drop handle;
//! - [`deadline`]: the work budget of a call;
//! - `stream`: the state of one `ScoreStream` call;
//! - `record`: the one wrapper that records every RPC's metrics;
//! - [`http`]: the HTTP/JSON gateway (`/v1/score`, `/v1/score_batch`, `/v1/openrlhf`) on the
//!   same core: admission, deadlines and metrics as here.
//!
//! ## Admission and backpressure
//! `Score` and `ScoreBatch` take their admission permits without waiting: when the server is
//! full they are answered `RESOURCE_EXHAUSTED` at once (clients retry with backoff, ideally on
//! another replica). `ScoreStream` never gets `RESOURCE_EXHAUSTED` for load: it has at most
//! `stream_window` rollouts in flight and otherwise stops reading, so HTTP/2 flow control pushes
//! back on the sender. Memory is bounded by the admission count and the message size limit.
//!
//! ## Deadlines and cancellation
//! When a call's deadline (`grpc-timeout`, capped by `max_deadline`) expires, or the client
//! cancels, the handler's future is dropped, the tasks are aborted, the `Chain::score` futures
//! dropped (which stops their sandbox runs) and the permits freed at once. The service answers
//! `DEADLINE_EXCEEDED` slightly ([`deadline_margin`]) before the client's deadline, so the status
//! still reaches a client that is about to give up.
//!
//! ## Batches
//! `ScoreBatch` keeps admission and the deadline here, and scores through the chain's own batch
//! function ([`Chain::score_batch_with`]), so its group pass is the one `verdict score` uses.
//!
//! ## When verdict fails
//! A rollout verdict could not judge (dead sandbox worker, panic in a verifier) is answered with
//! the `ERROR` outcome and no `reward` in its own slot; the call itself succeeds.

mod admission;
pub mod deadline;
pub mod http;
mod record;
mod stream;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream};
use tokio::sync::OwnedSemaphorePermit;
use tonic::{Request, Response, Status, Streaming};
use tracing::instrument;

use crate::chain::Chain;
use crate::field_error::FieldError;
use crate::metrics::Metrics;
use crate::pb;
use crate::pb::reward_service_server::RewardService as RewardServiceApi;
use crate::registry::Registry;
use crate::rollout::Rollout;
use crate::score::Score;
use admission::{AbortOnDrop, Admission};
pub use deadline::{deadline_margin, parse_grpc_timeout};
use record::observed;
use stream::StreamState;

/// Why a call failed. Bad rollouts inside a batch or stream are not errors: they get an
/// `invalid_input` score in their own slot.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed; names the field.
    #[error("{0}")]
    InvalidArgument(FieldError),
    /// Admitting the request would exceed the bound on work in flight.
    #[error(
        "overloaded: {requested} rollout(s) asked for, {available} of {capacity} admission slots \
         free; retry with backoff"
    )]
    Overloaded {
        /// Rollouts in the request.
        requested: usize,
        /// Admission slots free when it arrived.
        available: usize,
        /// All admission slots (`max_in_flight + max_queued`).
        capacity: usize,
    },
    /// The call's deadline expired before its work was done.
    #[error("deadline of {budget_ms} ms expired with {done} of {total} rollout(s) scored")]
    DeadlineExceeded {
        /// The budget the call had, in ms.
        budget_ms: u64,
        /// Rollouts finished when it expired.
        done: usize,
        /// Rollouts in the call.
        total: usize,
    },
    /// The server stopped before the work finished (the shutdown grace period ran out).
    #[error("the server shut down before the work finished; retry on another replica")]
    ShuttingDown,
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::InvalidArgument(_) => Status::invalid_argument(message),
            ServiceError::Overloaded { .. } => Status::resource_exhausted(message),
            ServiceError::DeadlineExceeded { .. } => Status::deadline_exceeded(message),
            ServiceError::ShuttingDown => Status::unavailable(message),
        }
    }
}

/// Limits the service enforces per call.
#[derive(Debug, Clone)]
pub struct ServiceLimits {
    /// Rollouts scored at once, across all calls.
    pub max_in_flight: usize,
    /// Rollouts admitted beyond `max_in_flight`, waiting for a slot.
    pub max_queued: usize,
    /// Rollouts in one `ScoreBatch`.
    pub max_batch: usize,
    /// Rollouts in flight per `ScoreStream`.
    pub stream_window: usize,
    /// Upper bound on any call's work (also applies when the client sets no deadline).
    pub max_deadline: Duration,
}

/// The gRPC service. Cheap to clone: all state is shared.
#[derive(Clone)]
pub struct RewardService {
    shared: Arc<Shared>,
}

struct Shared {
    chain: Arc<Chain>,
    config_origin: String,
    kinds: Vec<pb::VerifierKind>,
    limits: ServiceLimits,
    admission: Admission,
    metrics: Arc<Metrics>,
    /// Set once by [`RewardService::cancel_all`].
    kill: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for RewardService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardService")
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

/// The one place a wire rollout becomes a [`Rollout`] or its `invalid_input` record.
/// `position` is its 1-based place in the call (the id of a record without one is
/// `input-{position}`, as for a JSONL line); `field` names it in the message
/// (`rollouts[2]`, `requests[7].rollout`).
pub fn wire_rollout(
    rollout: Option<pb::Rollout>,
    position: usize,
    field: &str,
) -> Result<Rollout, Box<Score>> {
    let Some(rollout) = rollout else {
        return Err(Box::new(Score::invalid(
            None,
            position,
            format!("{field}: is required"),
        )));
    };
    let id = rollout.id.clone();
    Rollout::try_from(rollout).map_err(|e| {
        Box::new(Score::invalid(
            Some(&id),
            position,
            e.within(field).to_string(),
        ))
    })
}

impl RewardService {
    /// A service scoring with `chain`; `config_origin` and the kinds of `registry` are
    /// reported by ListVerifiers.
    pub fn new(
        chain: Arc<Chain>,
        config_origin: impl Into<String>,
        registry: &Registry,
        limits: ServiceLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        let kinds = registry
            .kinds()
            .iter()
            .map(|k| pb::VerifierKind {
                kind: k.name.to_string(),
                description: k.description.to_string(),
                needs_sandbox: k.needs_sandbox,
                origin: crate::convert::kind_origin(&k.origin) as i32,
                source: k.origin.source().unwrap_or_default(),
            })
            .collect();
        RewardService {
            shared: Arc::new(Shared {
                chain,
                config_origin: config_origin.into(),
                kinds,
                admission: Admission::new(limits.max_in_flight, limits.max_queued, metrics.clone()),
                limits,
                metrics,
                kill: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    /// End every call in flight now with `UNAVAILABLE`, dropping (and so stopping) its work;
    /// later calls are refused the same way. Used when the shutdown grace period runs out.
    pub fn cancel_all(&self) {
        self.shared.kill.send_replace(true);
    }

    /// Completes once [`cancel_all`](Self::cancel_all) was called.
    fn killed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shared.kill.subscribe();
        async move {
            let _ = rx.wait_for(|killed| *killed).await;
        }
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    fn admission(&self) -> &Admission {
        &self.shared.admission
    }

    fn limits(&self) -> &ServiceLimits {
        &self.shared.limits
    }

    fn budget<T>(&self, request: &Request<T>) -> Duration {
        deadline::budget(request, self.shared.limits.max_deadline)
    }

    /// The work budget of a call whose client gave `timeout` (or none).
    pub(crate) fn budget_for(&self, timeout: Option<Duration>) -> Duration {
        deadline::budget_for(timeout, self.shared.limits.max_deadline)
    }

    fn spawn_score(&self, rollout: Rollout, permit: OwnedSemaphorePermit) -> AbortOnDrop {
        self.shared
            .admission
            .spawn_score(&self.shared.chain, rollout, permit)
    }

    fn record_deadline(&self) {
        self.shared
            .metrics
            .rejected
            .with_label_values(&["deadline"])
            .inc();
    }

    /// Run `work` within `budget`, unless the server is killed first; `done` counts the
    /// rollouts of `total` finished (for the deadline's message).
    async fn within<T>(
        &self,
        budget: Duration,
        work: impl Future<Output = T>,
        total: usize,
        done: &AtomicUsize,
    ) -> Result<T, ServiceError> {
        let killed = self.killed();
        tokio::select! {
            result = tokio::time::timeout(budget, work) => result.map_err(|_| {
                self.record_deadline();
                ServiceError::DeadlineExceeded {
                    budget_ms: budget.as_millis() as u64,
                    done: done.load(Ordering::Relaxed),
                    total,
                }
            }),
            () = killed => Err(ServiceError::ShuttingDown),
        }
    }

    async fn score_one(&self, request: Request<pb::ScoreRequest>) -> Result<Score, ServiceError> {
        let budget = self.budget(&request);
        let wire = request
            .into_inner()
            .rollout
            .ok_or_else(|| ServiceError::InvalidArgument(required("rollout")))?;
        let rollout = Rollout::try_from(wire)
            .map_err(|e| ServiceError::InvalidArgument(e.within("rollout")))?;
        self.score_rollout(rollout, budget).await
    }

    /// Score one decoded rollout within `budget`: one admission permit taken now (or
    /// `Overloaded`), its own task, the deadline. What `Score` and `POST /v1/score` share.
    pub(crate) async fn score_rollout(
        &self,
        rollout: Rollout,
        budget: Duration,
    ) -> Result<Score, ServiceError> {
        let permit = self.shared.admission.admit(1)?;
        let task = self.spawn_score(rollout, permit);
        Ok(self
            .within(budget, task, 1, &AtomicUsize::new(0))
            .await?
            .into_score())
    }

    async fn score_batch_inner(
        &self,
        request: Request<pb::ScoreBatchRequest>,
    ) -> Result<Vec<Score>, ServiceError> {
        let budget = self.budget(&request);
        let rollouts = request.into_inner().rollouts;
        self.check_batch_size(rollouts.len(), "rollouts")?;
        // Bad rollouts get their verdict in their own slot and take no permit.
        let items: Vec<Result<Rollout, Box<Score>>> = rollouts
            .into_iter()
            .enumerate()
            .map(|(i, r)| wire_rollout(Some(r), i + 1, &format!("rollouts[{i}]")))
            .collect();
        self.score_items(items, budget).await
    }

    /// Refuse an empty batch or one over `max_batch` (the error names `field`).
    pub(crate) fn check_batch_size(&self, total: usize, field: &str) -> Result<(), ServiceError> {
        let reason = if total == 0 {
            "is empty".to_string()
        } else if total > self.shared.limits.max_batch {
            format!(
                "{total} rollouts exceed the server's max_batch of {}; split the batch",
                self.shared.limits.max_batch
            )
        } else {
            return Ok(());
        };
        Err(ServiceError::InvalidArgument(FieldError {
            field: field.into(),
            reason,
        }))
    }

    /// Score a batch of decoded rollouts (an `Err` is an invalid rollout's own record, which
    /// takes no permit) within `budget`, through the chain's batch function (group pass
    /// included). What `ScoreBatch` and the HTTP batch endpoints share; the caller checked the
    /// batch size ([`check_batch_size`](Self::check_batch_size)).
    pub(crate) async fn score_items(
        &self,
        items: Vec<Result<Rollout, Box<Score>>>,
        budget: Duration,
    ) -> Result<Vec<Score>, ServiceError> {
        let total = items.len();
        let valid = items.iter().filter(|p| p.is_ok()).count();
        let mut permits = if valid > 0 {
            Some(self.shared.admission.admit(valid)?)
        } else {
            None
        };
        let done = AtomicUsize::new(total - valid);
        let scored = self.shared.chain.score_batch_with(items, |rollout| {
            let all = permits.as_mut().expect("admitted for every valid rollout");
            let one = all.split(1).expect("one permit per valid rollout");
            let done = &done;
            self.spawn_score(rollout, one).inspect(move |_| {
                done.fetch_add(1, Ordering::Relaxed);
            })
        });
        self.within(budget, scored, total, &done).await
    }

    fn list(&self) -> pb::ListVerifiersResponse {
        let chain = self
            .shared
            .chain
            .steps()
            .iter()
            .map(|s| pb::ChainStep {
                name: s.name.clone(),
                kind: s.verifier.kind().to_string(),
                weight: s.weight,
                gate: s.gate,
                min_score: s.min_score,
                settings: s.verifier.describe(),
                groupwise: s.verifier.is_groupwise(),
            })
            .collect();
        pb::ListVerifiersResponse {
            kinds: self.shared.kinds.clone(),
            chain,
            config_origin: self.shared.config_origin.clone(),
        }
    }
}

fn required(field: &str) -> FieldError {
    FieldError {
        field: field.into(),
        reason: "is required".into(),
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::ScoreResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RewardServiceApi for RewardService {
    #[instrument(skip(self, request))]
    async fn score(
        &self,
        request: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        observed(self.metrics(), "Score", async {
            let score = self.score_one(request).await?;
            Ok(Response::new(pb::ScoreResponse {
                score: Some(pb::Score::from(&score)),
            }))
        })
        .await
    }

    #[instrument(skip(self, request), fields(rollouts = request.get_ref().rollouts.len()))]
    async fn score_batch(
        &self,
        request: Request<pb::ScoreBatchRequest>,
    ) -> Result<Response<pb::ScoreBatchResponse>, Status> {
        observed(self.metrics(), "ScoreBatch", async {
            let scores = self.score_batch_inner(request).await?;
            Ok(Response::new(pb::ScoreBatchResponse {
                scores: scores.iter().map(pb::Score::from).collect(),
            }))
        })
        .await
    }

    type ScoreStreamStream = ResponseStream;

    #[instrument(skip(self, request))]
    async fn score_stream(
        &self,
        request: Request<Streaming<pb::ScoreRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let budget = self.budget(&request);
        let state = StreamState::new(self.clone(), request.into_inner(), budget);
        let stream = futures::stream::unfold(state, |mut st| async move {
            let item = st.next_response().await?;
            Some((item, st))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    #[instrument(skip(self, _request))]
    async fn list_verifiers(
        &self,
        _request: Request<pb::ListVerifiersRequest>,
    ) -> Result<Response<pb::ListVerifiersResponse>, Status> {
        observed(self.metrics(), "ListVerifiers", async {
            Ok(Response::new(self.list()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_right_codes() {
        let invalid = ServiceError::InvalidArgument(FieldError {
            field: "rollout.id".into(),
            reason: "is empty".into(),
        });
        let s = Status::from(invalid);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), "rollout.id: is empty");
        let s = Status::from(ServiceError::Overloaded {
            requested: 3,
            available: 1,
            capacity: 8,
        });
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        let s = Status::from(ServiceError::DeadlineExceeded {
            budget_ms: 10,
            done: 1,
            total: 2,
        });
        assert_eq!(s.code(), tonic::Code::DeadlineExceeded);
        assert!(s.message().contains("1 of 2"));
    }

    #[test]
    fn an_invalid_wire_rollout_has_one_id_scheme() {
        let missing = wire_rollout(None, 4, "requests[3].rollout").unwrap_err();
        assert_eq!(missing.id, "input-4");
        assert_eq!(
            missing.error.as_deref(),
            Some("requests[3].rollout: is required")
        );
        let bad = pb::Rollout {
            id: "r".into(),
            completion: "x".into(),
            extra: "{".into(),
            ..Default::default()
        };
        let bad = wire_rollout(Some(bad), 1, "rollouts[0]").unwrap_err();
        assert_eq!(bad.id, "r");
        assert!(bad
            .error
            .unwrap()
            .starts_with("rollouts[0].extra: not JSON text"));
    }
}
