//! The tonic `RewardService`: Score, ScoreBatch, ScoreStream and ListVerifiers.
//!
//! ## Admission and backpressure
//! Two semaphores bound the work in flight:
//! - **slots** (`max_in_flight`): rollouts being scored at once;
//! - **admission** (`max_in_flight + max_queued`): rollouts accepted, scoring or waiting for a slot.
//!
//! `Score` and `ScoreBatch` take their admission permits without waiting: when the server is
//! full they are answered `RESOURCE_EXHAUSTED` at once (clients retry with backoff, ideally on
//! another replica). `ScoreStream` never gets `RESOURCE_EXHAUSTED` for load: it has at most
//! `stream_window` rollouts in flight and otherwise stops reading, so HTTP/2 flow control pushes
//! back on the sender. Memory is bounded by the admission count and the message size limit.
//!
//! ## Deadlines and cancellation
//! Every rollout is scored in its own tokio task, held through an abort-on-drop handle. When a
//! call's deadline (`grpc-timeout`, capped by `max_deadline`) expires, or the client cancels, the
//! handler's future is dropped, the tasks are aborted, the `Chain::score` futures dropped (which
//! stops their sandbox runs) and the permits freed at once. The service answers
//! `DEADLINE_EXCEEDED` slightly ([`deadline_margin`]) before the client's deadline, so the status
//! still reaches a client that is about to give up.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, instrument};

use crate::chain::Chain;
use crate::config::KINDS;
use crate::convert::ConvertError;
use crate::metrics::Metrics;
use crate::pb;
use crate::pb::reward_service_server::RewardService as RewardServiceApi;
use crate::rollout::Rollout;
use crate::score::Score;

/// How much earlier than the client's deadline the service gives up and answers: 5 ms plus 5 %
/// of the deadline, at most 1 s (so `DEADLINE_EXCEEDED` arrives before the client's own timer,
/// which tonic clients report as `CANCELLED`).
pub fn deadline_margin(timeout: Duration) -> Duration {
    (Duration::from_millis(5) + timeout / 20).min(Duration::from_secs(1))
}

/// Why a call failed. Bad rollouts inside a batch or stream are not errors: they get an
/// `invalid_input` score in their own slot.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed; names the field.
    #[error("{0}")]
    InvalidArgument(ConvertError),
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
    /// A scoring task panicked: a bug in a verifier.
    #[error("scoring failed: {0}")]
    Internal(String),
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::InvalidArgument(_) => Status::invalid_argument(message),
            ServiceError::Overloaded { .. } => Status::resource_exhausted(message),
            ServiceError::DeadlineExceeded { .. } => Status::deadline_exceeded(message),
            ServiceError::ShuttingDown => Status::unavailable(message),
            ServiceError::Internal(_) => Status::internal(message),
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
    limits: ServiceLimits,
    admission: Arc<Semaphore>,
    slots: Arc<Semaphore>,
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

impl RewardService {
    /// A service scoring with `chain`; `config_origin` is reported by ListVerifiers.
    pub fn new(
        chain: Arc<Chain>,
        config_origin: impl Into<String>,
        limits: ServiceLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        let max_in_flight = limits.max_in_flight.max(1);
        metrics.slots.set(max_in_flight as i64);
        RewardService {
            shared: Arc::new(Shared {
                chain,
                config_origin: config_origin.into(),
                admission: Arc::new(Semaphore::new(max_in_flight + limits.max_queued)),
                slots: Arc::new(Semaphore::new(max_in_flight)),
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

    fn admission_capacity(&self) -> usize {
        self.shared.limits.max_in_flight.max(1) + self.shared.limits.max_queued
    }

    /// Take `n` admission permits now, or fail with `Overloaded`.
    fn admit(&self, n: usize) -> Result<OwnedSemaphorePermit, ServiceError> {
        let overloaded = || ServiceError::Overloaded {
            requested: n,
            available: self.shared.admission.available_permits(),
            capacity: self.admission_capacity(),
        };
        let n32 = u32::try_from(n).map_err(|_| overloaded())?;
        self.shared
            .admission
            .clone()
            .try_acquire_many_owned(n32)
            .map_err(|_| {
                self.shared
                    .metrics
                    .rejected
                    .with_label_values(&["overloaded"])
                    .inc();
                overloaded()
            })
    }

    /// The work budget of a call: its `grpc-timeout` less [`deadline_margin`], capped by
    /// `max_deadline`.
    fn budget<T>(&self, request: &Request<T>) -> Duration {
        let max = self.shared.limits.max_deadline;
        match request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
        {
            Some(t) => t.saturating_sub(deadline_margin(t)).min(max),
            None => max,
        }
    }

    /// Score `rollout` in its own task; the task holds `permit` until it ends.
    fn spawn_score(&self, rollout: Rollout, permit: OwnedSemaphorePermit) -> AbortOnDrop<Score> {
        let shared = self.shared.clone();
        AbortOnDrop(tokio::spawn(async move {
            let _admitted = permit;
            let waiting = GaugeGuard::new(&shared.metrics.queued);
            let _slot = shared
                .slots
                .acquire()
                .await
                .expect("the slot semaphore is never closed");
            drop(waiting);
            let _busy = GaugeGuard::new(&shared.metrics.in_flight);
            let score = shared.chain.score(&rollout).await;
            shared
                .metrics
                .rollouts
                .with_label_values(&[score.outcome.as_str()])
                .inc();
            shared
                .metrics
                .rollout_seconds
                .observe(score.cost.wall_ms / 1000.0);
            debug!(id = %score.id, outcome = %score.outcome, reward = score.reward, "Scored.");
            score
        }))
    }

    fn record_deadline(&self) {
        self.shared
            .metrics
            .rejected
            .with_label_values(&["deadline"])
            .inc();
    }

    async fn score_one(&self, request: Request<pb::ScoreRequest>) -> Result<Score, ServiceError> {
        let budget = self.budget(&request);
        let rollout = request
            .into_inner()
            .rollout
            .ok_or_else(|| ServiceError::InvalidArgument(required("rollout")))?;
        let rollout = Rollout::try_from(rollout)
            .map_err(|e| ServiceError::InvalidArgument(e.within("rollout")))?;
        let permit = self.admit(1)?;
        let task = self.spawn_score(rollout, permit);
        let killed = self.killed();
        let result = tokio::select! {
            result = tokio::time::timeout(budget, task) => result,
            () = killed => return Err(ServiceError::ShuttingDown),
        };
        match result {
            Ok(joined) => joined,
            Err(_) => {
                self.record_deadline();
                Err(ServiceError::DeadlineExceeded {
                    budget_ms: budget.as_millis() as u64,
                    done: 0,
                    total: 1,
                })
            }
        }
    }

    async fn score_batch_inner(
        &self,
        request: Request<pb::ScoreBatchRequest>,
    ) -> Result<Vec<Score>, ServiceError> {
        let budget = self.budget(&request);
        let rollouts = request.into_inner().rollouts;
        let total = rollouts.len();
        if total == 0 {
            return Err(ServiceError::InvalidArgument(ConvertError {
                field: "rollouts".into(),
                reason: "is empty".into(),
            }));
        }
        if total > self.shared.limits.max_batch {
            return Err(ServiceError::InvalidArgument(ConvertError {
                field: "rollouts".into(),
                reason: format!(
                    "{total} rollouts exceed the server's max_batch of {}; split the batch",
                    self.shared.limits.max_batch
                ),
            }));
        }
        // Bad rollouts get their verdict in their own slot and take no permit.
        let parsed: Vec<Result<Rollout, Box<Score>>> = rollouts
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let id = if r.id.is_empty() {
                    format!("rollouts[{i}]")
                } else {
                    r.id.clone()
                };
                Rollout::try_from(r).map_err(|e| {
                    Box::new(Score::invalid(
                        id,
                        e.within(&format!("rollouts[{i}]")).to_string(),
                    ))
                })
            })
            .collect();
        let valid = parsed.iter().filter(|p| p.is_ok()).count();
        // Groupwise verifiers (timing against the group) compare the rollouts of one problem
        // within the batch once all are scored.
        let groups: Vec<Option<String>> = parsed
            .iter()
            .map(|p| p.as_ref().ok().and_then(|r| r.problem_id.clone()))
            .collect();
        let mut permits = if valid > 0 {
            Some(self.admit(valid)?)
        } else {
            None
        };
        let slots: Vec<Slot> = parsed
            .into_iter()
            .map(|p| match p {
                Ok(rollout) => {
                    let all = permits.as_mut().expect("admitted for every valid rollout");
                    let one = all.split(1).expect("one permit per valid rollout");
                    Slot::Running(self.spawn_score(rollout, one))
                }
                Err(invalid) => Slot::Done(*invalid),
            })
            .collect();
        let mut pending: FuturesUnordered<_> = slots
            .into_iter()
            .enumerate()
            .map(|(i, slot)| async move {
                match slot {
                    Slot::Done(score) => (i, Ok(score)),
                    Slot::Running(task) => (i, task.await),
                }
            })
            .collect();
        let mut scores: Vec<Option<Score>> = vec![None; total];
        let deadline = tokio::time::sleep(budget);
        tokio::pin!(deadline);
        let killed = self.killed();
        tokio::pin!(killed);
        while !pending.is_empty() {
            tokio::select! {
                () = &mut killed => return Err(ServiceError::ShuttingDown),
                Some((i, result)) = pending.next() => scores[i] = Some(result?),
                () = &mut deadline => {
                    self.record_deadline();
                    let done = scores.iter().filter(|s| s.is_some()).count();
                    return Err(ServiceError::DeadlineExceeded {
                        budget_ms: budget.as_millis() as u64,
                        done,
                        total,
                    });
                }
            }
        }
        let mut scores: Vec<Score> = scores
            .into_iter()
            .map(|s| s.expect("every slot finished"))
            .collect();
        self.shared.chain.rescore_groups(&mut scores, &groups);
        Ok(scores)
    }
}

enum Slot {
    Running(AbortOnDrop<Score>),
    Done(Score),
}

fn required(field: &str) -> ConvertError {
    ConvertError {
        field: field.into(),
        reason: "is required".into(),
    }
}

/// Parse a `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A spawned task that is aborted when the handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, ServiceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.map_err(|e| ServiceError::Internal(format!("scoring task ended: {e}")))
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

/// Records a call's status and latency when it ends — also when its future is dropped
/// (client cancellation, transport timeout), which counts as `Cancelled`.
struct CallRecord {
    metrics: Arc<Metrics>,
    method: &'static str,
    started: Instant,
    code: Option<tonic::Code>,
}

impl CallRecord {
    fn new(metrics: &Arc<Metrics>, method: &'static str) -> Self {
        CallRecord {
            metrics: metrics.clone(),
            method,
            started: Instant::now(),
            code: None,
        }
    }

    fn finish<T>(mut self, result: &Result<T, Status>) {
        self.code = Some(match result {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        });
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let code = match self.code {
            Some(code) => code,
            None => {
                self.metrics
                    .rejected
                    .with_label_values(&["cancelled"])
                    .inc();
                tonic::Code::Cancelled
            }
        };
        self.metrics
            .requests
            .with_label_values(&[self.method, &format!("{code:?}")])
            .inc();
        self.metrics
            .request_seconds
            .with_label_values(&[self.method])
            .observe(self.started.elapsed().as_secs_f64());
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
        let record = CallRecord::new(&self.shared.metrics, "Score");
        let result = self
            .score_one(request)
            .await
            .map(|s| {
                Response::new(pb::ScoreResponse {
                    score: Some(pb::Score::from(&s)),
                })
            })
            .map_err(Status::from);
        record.finish(&result);
        result
    }

    #[instrument(skip(self, request), fields(rollouts = request.get_ref().rollouts.len()))]
    async fn score_batch(
        &self,
        request: Request<pb::ScoreBatchRequest>,
    ) -> Result<Response<pb::ScoreBatchResponse>, Status> {
        let record = CallRecord::new(&self.shared.metrics, "ScoreBatch");
        let result = self
            .score_batch_inner(request)
            .await
            .map(|scores| {
                Response::new(pb::ScoreBatchResponse {
                    scores: scores.iter().map(pb::Score::from).collect(),
                })
            })
            .map_err(Status::from);
        record.finish(&result);
        result
    }

    type ScoreStreamStream = ResponseStream;

    #[instrument(skip(self, request))]
    async fn score_stream(
        &self,
        request: Request<Streaming<pb::ScoreRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let budget = self.budget(&request);
        let state = StreamState {
            service: self.clone(),
            incoming: request.into_inner(),
            in_flight: FuturesUnordered::new(),
            ready: VecDeque::new(),
            waiting: None,
            deadline: Box::pin(tokio::time::sleep(budget)),
            killed: Box::pin(self.killed()),
            budget,
            received: 0,
            answered: 0,
            input_done: false,
            finished: false,
            record: Some(CallRecord::new(&self.shared.metrics, "ScoreStream")),
        };
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
        let record = CallRecord::new(&self.shared.metrics, "ListVerifiers");
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
            })
            .collect();
        let result = Ok(Response::new(pb::ListVerifiersResponse {
            kinds: KINDS
                .iter()
                .map(|(kind, what)| pb::VerifierKind {
                    kind: kind.to_string(),
                    description: what.to_string(),
                })
                .collect(),
            chain,
            config_origin: self.shared.config_origin.clone(),
        }));
        record.finish(&result);
        result
    }
}

/// The state of one `ScoreStream` call. Dropping it (client gone, server shutting down) drops
/// the in-flight tasks' handles, which aborts them.
struct StreamState {
    service: RewardService,
    incoming: Streaming<pb::ScoreRequest>,
    in_flight: FuturesUnordered<AbortOnDrop<Score>>,
    /// Answers that need no scoring (invalid rollouts).
    ready: VecDeque<Score>,
    /// A rollout read but not admitted yet (the server is full): nothing more is read until it
    /// is, so HTTP/2 flow control pushes back on the sender.
    waiting: Option<Rollout>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    killed: Pin<Box<dyn Future<Output = ()> + Send>>,
    budget: Duration,
    received: usize,
    answered: usize,
    input_done: bool,
    finished: bool,
    record: Option<CallRecord>,
}

impl StreamState {
    fn end(&mut self, result: Result<(), Status>) -> Option<Result<pb::ScoreResponse, Status>> {
        self.finished = true;
        self.in_flight.clear();
        if let Some(record) = self.record.take() {
            record.finish(&result);
        }
        result.err().map(Err)
    }

    fn answer(&mut self, score: &Score) -> Option<Result<pb::ScoreResponse, Status>> {
        self.answered += 1;
        Some(Ok(pb::ScoreResponse {
            score: Some(pb::Score::from(score)),
        }))
    }

    async fn next_response(&mut self) -> Option<Result<pb::ScoreResponse, Status>> {
        if self.finished {
            return None;
        }
        let window = self.service.shared.limits.stream_window.max(1);
        loop {
            if let Some(score) = self.ready.pop_front() {
                return self.answer(&score);
            }
            if self.input_done && self.in_flight.is_empty() && self.waiting.is_none() {
                return self.end(Ok(()));
            }
            let can_read =
                !self.input_done && self.waiting.is_none() && self.in_flight.len() < window;
            tokio::select! {
                biased;
                () = &mut self.killed => return self.end(Err(ServiceError::ShuttingDown.into())),
                () = &mut self.deadline => {
                    self.service.record_deadline();
                    let err = ServiceError::DeadlineExceeded {
                        budget_ms: self.budget.as_millis() as u64,
                        done: self.answered,
                        total: self.received,
                    };
                    return self.end(Err(err.into()));
                }
                Some(joined) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    match joined {
                        Ok(score) => return self.answer(&score),
                        Err(e) => return self.end(Err(e.into())),
                    }
                }
                permit = self.service.shared.admission.clone().acquire_owned(),
                    if self.waiting.is_some() => {
                    let permit = permit.expect("the admission semaphore is never closed");
                    let rollout = self.waiting.take().expect("checked above");
                    self.in_flight.push(self.service.spawn_score(rollout, permit));
                }
                message = self.incoming.message(), if can_read => {
                    match message {
                        Ok(Some(request)) => {
                            let n = self.received;
                            self.received += 1;
                            match stream_rollout(request, n) {
                                Ok(rollout) => {
                                    match self.service.shared.admission.clone().try_acquire_owned() {
                                        Ok(permit) => {
                                            let task = self.service.spawn_score(rollout, permit);
                                            self.in_flight.push(task);
                                        }
                                        Err(_) => self.waiting = Some(rollout),
                                    }
                                }
                                Err(invalid) => self.ready.push_back(*invalid),
                            }
                        }
                        Ok(None) => self.input_done = true,
                        Err(status) => {
                            debug!(%status, "Stream input failed.");
                            return self.end(Err(status));
                        }
                    }
                }
            }
        }
    }
}

/// The rollout of the `n`th stream message (0-based), or its `invalid_input` score.
fn stream_rollout(request: pb::ScoreRequest, n: usize) -> Result<Rollout, Box<Score>> {
    let Some(rollout) = request.rollout else {
        return Err(Box::new(Score::invalid(
            format!("request-{n}"),
            format!("request {n}: rollout: is required"),
        )));
    };
    let id = if rollout.id.is_empty() {
        format!("request-{n}")
    } else {
        rollout.id.clone()
    };
    Rollout::try_from(rollout).map_err(|e| {
        Box::new(Score::invalid(
            id,
            format!("request {n}: {}", e.within("rollout")),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("99999u"),
            Some(Duration::from_micros(99999))
        );
        assert_eq!(parse_grpc_timeout("5"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
    }

    #[test]
    fn the_deadline_margin_grows_with_the_deadline_and_is_capped() {
        assert_eq!(
            deadline_margin(Duration::from_millis(100)),
            Duration::from_millis(10)
        );
        assert_eq!(
            deadline_margin(Duration::from_secs(10)),
            Duration::from_millis(505)
        );
        assert_eq!(
            deadline_margin(Duration::from_secs(600)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn errors_map_to_the_right_codes() {
        let invalid = ServiceError::InvalidArgument(ConvertError {
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
}
