//! The state of one `ScoreStream` call: at most `stream_window` rollouts in flight, answers
//! as they are ready, and a [`Phase`] that says what the call is doing.
//!
//! A rollout that cannot be admitted (the server is full) is held and nothing more is read
//! until it is, so HTTP/2 flow control pushes back on the sender. Dropping the state (client
//! gone, server shutting down) drops the in-flight tasks' handles, which aborts them.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tonic::{Status, Streaming};
use tracing::debug;

use super::admission::AbortOnDrop;
use super::record::CallRecord;
use super::{wire_rollout, RewardService, ServiceError};
use crate::pb;
use crate::rollout::Rollout;
use crate::score::Score;

/// What a stream call is doing.
enum Phase {
    /// Reading requests while the window has room.
    Reading,
    /// A rollout was read but not admitted yet: nothing more is read until it is.
    Waiting(Box<Rollout>),
    /// The client closed its side; answering what is still in flight.
    Draining,
    /// The stream ended (its status was sent, or it ended with `OK`).
    Finished,
}

/// The state of one `ScoreStream` call.
pub(crate) struct StreamState {
    service: RewardService,
    incoming: Streaming<pb::ScoreRequest>,
    in_flight: FuturesUnordered<AbortOnDrop>,
    /// Answers that need no scoring (invalid rollouts).
    ready: VecDeque<Score>,
    phase: Phase,
    deadline: Pin<Box<tokio::time::Sleep>>,
    killed: Pin<Box<dyn Future<Output = ()> + Send>>,
    budget: Duration,
    received: usize,
    answered: usize,
    record: Option<CallRecord>,
}

impl StreamState {
    /// The state of a new call reading `incoming`, with `budget` for all its work.
    pub(crate) fn new(
        service: RewardService,
        incoming: Streaming<pb::ScoreRequest>,
        budget: Duration,
    ) -> Self {
        let record = CallRecord::new(service.metrics(), "ScoreStream");
        let killed = Box::pin(service.killed());
        StreamState {
            service,
            incoming,
            in_flight: FuturesUnordered::new(),
            ready: VecDeque::new(),
            phase: Phase::Reading,
            deadline: Box::pin(tokio::time::sleep(budget)),
            killed,
            budget,
            received: 0,
            answered: 0,
            record: Some(record),
        }
    }

    fn end(&mut self, result: Result<(), Status>) -> Option<Result<pb::ScoreResponse, Status>> {
        self.phase = Phase::Finished;
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

    fn start(&mut self, rollout: Rollout) {
        match self.service.admission().try_admit_one() {
            Some(permit) => {
                let task = self.service.spawn_score(rollout, permit);
                self.in_flight.push(task);
            }
            None => self.phase = Phase::Waiting(Box::new(rollout)),
        }
    }

    /// The next response, or `None` once the stream ended.
    pub(crate) async fn next_response(&mut self) -> Option<Result<pb::ScoreResponse, Status>> {
        let window = self.service.limits().stream_window.max(1);
        loop {
            if matches!(self.phase, Phase::Finished) {
                return None;
            }
            if let Some(score) = self.ready.pop_front() {
                return self.answer(&score);
            }
            if matches!(self.phase, Phase::Draining) && self.in_flight.is_empty() {
                return self.end(Ok(()));
            }
            let waiting = matches!(self.phase, Phase::Waiting(_));
            let can_read = matches!(self.phase, Phase::Reading) && self.in_flight.len() < window;
            let admitted = self.service.admission().admit_one();
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
                Some(scored) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    return self.answer(&scored.score);
                }
                permit = admitted, if waiting => {
                    if let Phase::Waiting(rollout) = std::mem::replace(&mut self.phase, Phase::Reading) {
                        self.in_flight.push(self.service.spawn_score(*rollout, permit));
                    }
                }
                message = self.incoming.message(), if can_read => {
                    match message {
                        Ok(Some(request)) => {
                            let n = self.received;
                            self.received += 1;
                            let field = format!("requests[{n}].rollout");
                            match wire_rollout(request.rollout, n + 1, &field) {
                                Ok(rollout) => self.start(rollout),
                                Err(invalid) => self.ready.push_back(*invalid),
                            }
                        }
                        Ok(None) => self.phase = Phase::Draining,
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
