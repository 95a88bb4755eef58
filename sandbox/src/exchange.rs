//! The exchange between a judge and its candidate during an assert test: operations both ways,
//! nested to any depth up to [`MAX_NESTING`], without either side ever returning from a call to
//! wait for the other.
//!
//! Python frames (and the C frames of `sorted(key=)`, `map`, `re.sub`) cannot be unwound and
//! resumed, and componentize-py's export glue is not re-entrant, so neither instance is ever
//! re-entered through an export while it waits. Each side only *calls its import*
//! `peer.forward`, and that import returns either the answer to its request or a nested request
//! for it to serve first (ping-pong). Messages carry a one-letter tag:
//!
//! | from a side | meaning |
//! |---|---|
//! | `Q` + operation | a request to the other side |
//! | `R` + answer | the answer to the nested request this side was given |
//!
//! | to a side (the import's return) | meaning |
//! |---|---|
//! | `A` + answer | the answer to this side's last request |
//! | `Q` + operation | a nested request: serve it, then send `R` + its answer |
//!
//! The judge's first request starts the candidate's `serve` export, whose return value is that
//! request's answer; every later request to the candidate reaches it while it waits in its own
//! `forward` (a callback of the program into the test). The host keeps the stack of open
//! requests and accepts a message only where the stack allows it (PROTOCOL.md, "The state
//! machine"): an answer nobody asked for, an export that returns while a nested request is
//! open, or an unknown tag breaks the exchange, which fails the test. The candidate's
//! instance lives in a future this module owns while it serves, so the judge can run (serve a
//! callback) while the candidate is parked in its import.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::engine::{Ended, Live, Observed, MAX_ARGUMENT_BYTES};
use crate::output::TestOutput;

/// Most requests open at once, both directions together (a callback into the test is one, a
/// call of the test into the program inside it another).
pub(crate) const MAX_NESTING: usize = 64;

/// The candidate's `serve` export in flight, owning the instance until it returns.
type Serving = Pin<Box<dyn Future<Output = (Live, Result<String, Ended>)> + Send>>;

/// Who sent an open request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Judge,
    Candidate,
}

/// An open request.
#[derive(Debug, Clone, Copy)]
struct Frame {
    asked_by: Side,
    /// Its size: an answer may carry its arguments back (changed in place).
    request_len: usize,
}

/// The candidate instance as the judge's `forward` sees it during one test.
pub(crate) struct Peer {
    /// The candidate while no request is in flight.
    idle: Option<Live>,
    /// The candidate while its `serve` export runs (it may be parked in its own `forward`).
    serving: Option<Serving>,
    /// What the candidate sends from its `forward`.
    from_candidate: UnboundedReceiver<String>,
    /// What the candidate's waiting `forward` returns.
    to_candidate: UnboundedSender<String>,
    stack: Vec<Frame>,
    /// See [`Spent`]: what the exchange found so far.
    ended: Option<Ended>,
    refused: Option<String>,
    broken: Option<String>,
    calls: u64,
    callbacks: u64,
    /// Most bytes of one answer or callback request from the candidate.
    limit: usize,
    /// For a candidate lost while parked (the judge ended first): its fuel at the start of the
    /// test and when it last parked, and its output.
    fuel_start: u64,
    parked_fuel: Arc<AtomicU64>,
    stdout: TestOutput,
    stderr: TestOutput,
}

/// The candidate's end of the exchange, in its store while it is attached to a judge.
pub(crate) struct Link {
    to_judge: UnboundedSender<String>,
    from_judge: UnboundedReceiver<String>,
    parked_fuel: Arc<AtomicU64>,
}

impl Link {
    /// The candidate's `forward`: sends `message` and waits for what the judge's side returns
    /// (`A` + the answer, or `Q` + a nested request). `remaining` is the candidate's fuel now.
    pub(crate) async fn call(&mut self, message: String, remaining: u64) -> Result<String, String> {
        self.parked_fuel.store(remaining, Ordering::Relaxed);
        if self.to_judge.send(message).is_err() {
            return Err("the test has ended".into());
        }
        match self.from_judge.recv().await {
            Some(reply) => match reply.strip_prefix('E') {
                Some(why) => Err(why.to_string()),
                None => Ok(reply),
            },
            None => Err("the test has ended".into()),
        }
    }
}

/// What is left of the candidate after the test, and what the exchange found.
pub(crate) struct Spent {
    /// What the host saw of it.
    pub(crate) observed: Observed,
    /// Fuel it burnt during the test.
    pub(crate) fuel_used: u64,
    /// Set when a forwarded call ended the candidate (trap, exit, fuel, deadline).
    pub(crate) ended: Option<Ended>,
    /// Set when a request or an answer was larger than the cap.
    pub(crate) refused: Option<String>,
    /// Set when the candidate sent a message the state machine does not allow.
    pub(crate) broken: Option<String>,
    /// Requests of the judge (each costs the candidate a calibrated baseline).
    pub(crate) calls: u64,
    /// Callbacks of the program into the test.
    pub(crate) callbacks: u64,
}

impl Peer {
    /// Attaches `live` (a candidate with its program loaded) to a judge's test.
    pub(crate) fn new(mut live: Live, limit: usize) -> Peer {
        let (to_judge, from_candidate) = unbounded_channel();
        let (to_candidate, from_judge) = unbounded_channel();
        let parked_fuel = Arc::new(AtomicU64::new(0));
        live.link(Link {
            to_judge,
            from_judge,
            parked_fuel: parked_fuel.clone(),
        });
        let (stdout, stderr) = live.outputs();
        Peer {
            fuel_start: live.fuel_start(),
            idle: Some(live),
            serving: None,
            from_candidate,
            to_candidate,
            stack: Vec::new(),
            ended: None,
            refused: None,
            broken: None,
            calls: 0,
            callbacks: 0,
            limit,
            parked_fuel,
            stdout,
            stderr,
        }
    }

    /// The candidate after the test. One still serving (the judge ended while it was parked
    /// in a callback) is dropped: it never runs again.
    pub(crate) fn finish(mut self) -> Spent {
        self.serving = None;
        let (observed, fuel_used) = match self.idle.take() {
            Some(mut live) => {
                live.unlink();
                (live.observe(self.ended.as_ref()), live.fuel_used())
            }
            None => (
                Observed {
                    stdout: self.stdout.contents().to_vec(),
                    output_overflow: self.stdout.overflowed() || self.stderr.overflowed(),
                    memory_hit: false,
                },
                self.fuel_start
                    .saturating_sub(self.parked_fuel.load(Ordering::Relaxed)),
            ),
        };
        Spent {
            observed,
            fuel_used,
            ended: self.ended,
            refused: self.refused,
            broken: self.broken,
            calls: self.calls,
            callbacks: self.callbacks,
        }
    }

    /// The judge's `forward`: one message of the judge (`Q` or `R`), then the candidate's next
    /// move (`A` + an answer, or `Q` + a callback for the judge to serve).
    pub(crate) async fn forward(&mut self, message: String) -> Result<String, String> {
        if let Some(ended) = &self.ended {
            return Err(format!("the candidate cannot answer: {}", ended.describe()));
        }
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        match message.as_bytes().first() {
            Some(b'Q') => {
                let request = &message[1..];
                if request.len() > MAX_ARGUMENT_BYTES {
                    self.refused = Some(format!(
                        "the test sent the candidate more than {} MiB at once",
                        MAX_ARGUMENT_BYTES >> 20
                    ));
                    return Err("the request is larger than the cap".into());
                }
                if self.stack.len() >= MAX_NESTING {
                    return Err(format!(
                        "calls between the test and the program nested more than {MAX_NESTING} deep"
                    ));
                }
                self.calls += 1;
                self.stack.push(Frame {
                    asked_by: Side::Judge,
                    request_len: request.len(),
                });
                if let Some(mut live) = self.idle.take() {
                    let (request, limit) = (request.to_string(), self.limit);
                    self.serving = Some(Box::pin(async move {
                        let reply = live.serve(&request, limit).await;
                        (live, reply)
                    }));
                } else if self.to_candidate.send(message).is_err() {
                    return Err(self.lost());
                }
            }
            Some(b'R') => {
                match self.stack.last() {
                    Some(frame) if frame.asked_by == Side::Candidate => {}
                    _ => return Err("the test answered a request it was not given".into()),
                }
                self.stack.pop();
                let mut answer = message;
                answer.replace_range(..1, "A");
                if self.to_candidate.send(answer).is_err() {
                    return Err(self.lost());
                }
            }
            _ => return Err("a message without a known tag".into()),
        }
        self.next_move().await
    }

    /// Waits for the candidate's next move and checks it against the open requests.
    async fn next_move(&mut self) -> Result<String, String> {
        loop {
            let Some(serving) = self.serving.as_mut() else {
                return Err(self.lost());
            };
            let message = tokio::select! {
                biased;
                (live, reply) = serving => {
                    self.serving = None;
                    self.idle = Some(live);
                    return self.returned(reply);
                }
                message = self.from_candidate.recv() => match message {
                    Some(m) => m,
                    None => return Err(self.lost()),
                },
            };
            match message.as_bytes().first() {
                Some(b'Q') => {
                    let request_len = message.len() - 1;
                    let refusal = if self.stack.len() >= MAX_NESTING {
                        Some(format!(
                            "ERecursionError: calls between the program and the test nested more \
                             than {MAX_NESTING} deep"
                        ))
                    } else if request_len > self.limit {
                        Some(format!(
                            "EValueError: a call into the test larger than {} KiB",
                            self.limit >> 10
                        ))
                    } else {
                        None
                    };
                    if let Some(refusal) = refusal {
                        // The program's own doing: it gets the error, as it would a native one.
                        if self.to_candidate.send(refusal).is_err() {
                            return Err(self.lost());
                        }
                        continue;
                    }
                    self.stack.push(Frame {
                        asked_by: Side::Candidate,
                        request_len,
                    });
                    self.callbacks += 1;
                    return Ok(message);
                }
                Some(b'R') => {
                    let frame = match self.stack.last() {
                        Some(f) if f.asked_by == Side::Judge && self.stack.len() > 1 => *f,
                        _ => return Err(self.break_off("an answer to no open request")),
                    };
                    self.stack.pop();
                    if message.len() - 1 > self.limit.saturating_add(frame.request_len) {
                        return Err(self.refuse());
                    }
                    let mut answer = message;
                    answer.replace_range(..1, "A");
                    return Ok(answer);
                }
                _ => return Err(self.break_off("a message without a known tag")),
            }
        }
    }

    /// The candidate's `serve` export returned: the answer to the judge's first request.
    fn returned(&mut self, reply: Result<String, Ended>) -> Result<String, String> {
        let reply = match reply {
            Ok(reply) => reply,
            Err(ended) => {
                let message = format!("the candidate cannot answer: {}", ended.describe());
                self.ended = Some(ended);
                return Err(message);
            }
        };
        let frame = match self.stack.as_slice() {
            [f] if f.asked_by == Side::Judge => *f,
            _ => {
                return Err(self.break_off(
                    "the program returned while a call between it and the test was open",
                ))
            }
        };
        self.stack.clear();
        if reply.len() > self.limit.saturating_add(frame.request_len) {
            return Err(self.refuse());
        }
        Ok(format!("A{reply}"))
    }

    fn refuse(&mut self) -> String {
        self.refused = Some(format!(
            "the candidate answered with more than {} KiB",
            self.limit >> 10
        ));
        "the answer is larger than the cap".into()
    }

    /// The candidate broke the protocol: it is dropped, and every later request fails.
    fn break_off(&mut self, why: &str) -> String {
        let why = format!("the candidate broke the protocol: {why}");
        self.broken = Some(why.clone());
        self.serving = None;
        why
    }

    fn lost(&mut self) -> String {
        self.break_off("its instance is gone")
    }
}
