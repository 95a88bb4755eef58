//! Sandbox worker processes (`sandbox.workers = N`): each rollout runs in one of N
//! `verdict sandbox-worker` child processes instead of in this process.
//!
//! Why: every copy-on-write fault a guest takes in a multi-threaded process makes the kernel
//! flush that page from the TLB of every other core running the process (an inter-processor
//! interrupt). With one thread per core running guests, about a tenth of all CPU time went to
//! those shootdowns. A worker is one process running one guest thread, so its faults interrupt
//! nobody; the workers share nothing but the compiled runtime on disk.
//!
//! Protocol: lines over the child's stdin/stdout, each `<seq> <json>`: the sequence number
//! comes first, outside the JSON, so a line whose JSON cannot be read is still answered. The
//! parent writes a [`Request`] (`{"run": Job}`, or `"cancel"` when the run's future was
//! dropped); the worker answers each run with a [`Response`] (`{"report": RunReport}` or
//! `{"error": "…"}`). A worker that exits fails its pending runs with [`SandboxError::Worker`]
//! and is started again for the next run; a run the worker does not answer within the rollout's
//! time budget plus a grace period fails the same way (and is cancelled in the worker). Reading
//! and writing use plain threads and pipes, so a pool outlives whichever async runtime first
//! used it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::config::SandboxConfig;
use crate::error::SandboxError;
use crate::job::{RunJob, RunReport};
use crate::local::Local;
use verdict_contract::depth::{deeper_than, MAX_MESSAGE_DEPTH};
use verdict_contract::rollout::{Limits, TestCase};

/// The environment variable that carries a worker's configuration (JSON).
pub(crate) const CONFIG_ENV: &str = "VERDICT_SANDBOX_WORKER_CONFIG";

/// A [`RunJob`] that owns its data, as sent to a worker.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    id: String,
    program: String,
    setup: Option<String>,
    judge_setup: Option<String>,
    tests: Vec<TestCase>,
    limits: Option<Limits>,
    stop_on_failure: bool,
}

/// What the parent asks of a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Request {
    /// Run a job and answer with its report.
    Run(Job),
    /// Stop the run with this sequence number (its future was dropped); no answer.
    Cancel,
}

/// A worker's answer to a run.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Response {
    /// The run's report.
    Report(RunReport),
    /// The run could not be done (a failure of the sandbox, or an unreadable request).
    Error(String),
}

/// Time a worker gets beyond the rollout's own budget before its run is given up.
const ANSWER_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// Further time when the run had to start the worker (loading and calibrating the runtime).
const START_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Writes `<seq> <json>\n`.
fn frame<T: Serialize>(seq: u64, message: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = format!("{seq} ").into_bytes();
    serde_json::to_writer(&mut line, message)?;
    line.push(b'\n');
    Ok(line)
}

/// Reads `<seq> <json>`: the sequence number, and the message or why it cannot be read.
fn unframe<T: serde::de::DeserializeOwned>(line: &str) -> Option<(u64, Result<T, String>)> {
    let (seq, json) = line.split_once(' ')?;
    let seq = seq.parse().ok()?;
    if deeper_than(json.as_bytes(), MAX_MESSAGE_DEPTH).is_some() {
        return Some((
            seq,
            Err(format!(
                "the message is nested more than {MAX_MESSAGE_DEPTH} levels deep"
            )),
        ));
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.disable_recursion_limit();
    let message = T::deserialize(&mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| e.to_string());
    Some((seq, message))
}

/// The runs a worker owes an answer, and whether it has gone (then nothing more is accepted,
/// so no run can wait for an answer that will never come).
#[derive(Default)]
struct Owed {
    senders: HashMap<u64, oneshot::Sender<Result<RunReport, String>>>,
    gone: bool,
}

type Pending = Arc<Mutex<Owed>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One child process and what it owes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    pending: Pending,
}

impl Worker {
    /// Whether it can take a run: its reader has not seen it go (the pipe closes before the
    /// exit can be reaped, so that is checked first) and it has not exited.
    fn alive(&mut self) -> bool {
        !lock(&self.pending).gone && matches!(self.child.try_wait(), Ok(None))
    }
}

/// A slot: the worker (started on demand) and how many runs it has in flight.
struct Slot {
    worker: Mutex<Option<Worker>>,
    load: AtomicUsize,
}

/// The worker processes of one sandbox.
pub(crate) struct WorkerPool {
    config: SandboxConfig,
    exe: PathBuf,
    config_json: String,
    slots: Vec<Slot>,
    seq: AtomicU64,
}

impl WorkerPool {
    /// A pool of `n` workers, each started on first use.
    pub(crate) fn new(config: &SandboxConfig, n: u32) -> Result<WorkerPool, SandboxError> {
        let exe = match &config.engine.worker_exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe()
                .map_err(|e| SandboxError::io("find", "the verdict executable", e))?,
        };
        // The child builds an in-process sandbox whatever `engine.workers` says.
        let config_json = serde_json::to_string(config)
            .map_err(|e| SandboxError::Config(format!("serializing the worker config: {e}")))?;
        let slots = (0..n)
            .map(|_| Slot {
                worker: Mutex::new(None),
                load: AtomicUsize::new(0),
            })
            .collect();
        Ok(WorkerPool {
            config: config.clone(),
            exe,
            config_json,
            slots,
            seq: AtomicU64::new(0),
        })
    }

    fn spawn(&self) -> Result<Worker, SandboxError> {
        let mut command = Command::new(&self.exe);
        match &self.config.engine.worker_args {
            Some(args) => command.args(args),
            None => command.arg("sandbox-worker"),
        };
        command
            .env(CONFIG_ENV, &self.config_json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // Its own process group: a Ctrl-C in the terminal reaches the parent only, which drains
        // its runs; the worker exits when the parent closes its stdin (or exits).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|e| SandboxError::io("start", self.exe.clone(), e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(SandboxError::Worker("the worker has no pipes".into()));
        };
        let pending: Pending = Arc::default();
        let owed = Arc::clone(&pending);
        std::thread::Builder::new()
            .name("verdict-worker-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Some((seq, response)) = unframe::<Response>(&line) else {
                        tracing::warn!(line = %line.chars().take(200).collect::<String>(), "Unreadable line from a sandbox worker.");
                        continue;
                    };
                    if let Some(tx) = lock(&owed).senders.remove(&seq) {
                        let result = match response {
                            Ok(Response::Report(report)) => Ok(report),
                            Ok(Response::Error(error)) => Err(error),
                            Err(e) => Err(format!("unreadable answer from the worker: {e}")),
                        };
                        let _ = tx.send(result);
                    }
                }
                // The worker is gone: everything it owed fails (dropping the senders).
                let mut owed = lock(&owed);
                owed.gone = true;
                owed.senders.clear();
            })
            .map_err(|e| SandboxError::io("start", "a worker reader thread", e))?;
        Ok(Worker {
            child,
            stdin,
            pending,
        })
    }

    /// Runs in flight across the workers.
    pub(crate) fn busy(&self) -> usize {
        self.slots
            .iter()
            .map(|s| s.load.load(Ordering::Relaxed))
            .sum()
    }

    /// The workers' interpreter slots: `workers × max_instances`.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len() * self.config.engine.max_instances as usize
    }

    /// How many worker processes are running.
    pub(crate) fn alive(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| lock(&s.worker).as_mut().is_some_and(Worker::alive))
            .count()
    }

    /// Runs `job` in the least loaded worker. Dropping the future cancels the run there.
    pub(crate) async fn run(&self, job: &RunJob<'_>) -> Result<RunReport, SandboxError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        // The least loaded worker; ties go round-robin, so that between lone runs each worker
        // has time to make its next instance ahead (`prewarm`) while another one serves.
        let n = self.slots.len();
        let start = usize::try_from(seq % n.max(1) as u64).unwrap_or(0);
        let slot = (0..n)
            .map(|i| &self.slots[(start + i) % n])
            .min_by_key(|s| s.load.load(Ordering::Relaxed))
            .ok_or_else(|| SandboxError::Worker("no workers configured".into()))?;
        let request = Request::Run(Job {
            id: job.id.to_string(),
            program: job.program.to_string(),
            setup: job.setup.map(str::to_string),
            judge_setup: job.judge_setup.map(str::to_string),
            tests: job.tests.to_vec(),
            limits: job.limits.copied(),
            stop_on_failure: job.stop_on_failure,
        });
        let mut patience =
            std::time::Duration::from_millis(self.config.effective(job.limits).time_ms)
                + ANSWER_GRACE;
        let (tx, rx) = oneshot::channel();
        let pending = {
            let mut worker = lock(&slot.worker);
            if !worker.as_mut().is_some_and(Worker::alive) {
                *worker = Some(self.spawn()?);
                patience += START_GRACE;
            }
            let w = worker.as_mut().expect("just started");
            let accepted = {
                let mut owed = lock(&w.pending);
                if !owed.gone {
                    owed.senders.insert(seq, tx);
                }
                !owed.gone
            };
            if !accepted {
                *worker = None;
                return Err(SandboxError::Worker(
                    "the sandbox worker exited; it is restarted for the next run".into(),
                ));
            }
            if let Err(e) = send(&mut w.stdin, seq, &request) {
                lock(&w.pending).senders.remove(&seq);
                *worker = None;
                return Err(e);
            }
            Arc::clone(&w.pending)
        };
        slot.load.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight {
            slot,
            seq,
            pending,
            done: false,
        };
        let answer = match tokio::time::timeout(patience, rx).await {
            Ok(answer) => answer,
            // Dropping the guard cancels the run in the worker.
            Err(_) => {
                return Err(SandboxError::Worker(format!(
                    "the sandbox worker did not answer within {:.0} s",
                    patience.as_secs_f64()
                )))
            }
        };
        guard.finish();
        match answer {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(message)) => Err(SandboxError::Worker(message)),
            Err(_) => Err(SandboxError::Worker(
                "the sandbox worker exited during the run".into(),
            )),
        }
    }
}

fn send(stdin: &mut ChildStdin, seq: u64, request: &Request) -> Result<(), SandboxError> {
    let line =
        frame(seq, request).map_err(|e| SandboxError::Worker(format!("serializing a job: {e}")))?;
    stdin
        .write_all(&line)
        .and_then(|()| stdin.flush())
        .map_err(|e| SandboxError::io("write to", "a sandbox worker", e))
}

/// A run in flight: lowers the slot's load when it ends, and cancels the run in the worker
/// when its future is dropped first.
struct InFlight<'a> {
    slot: &'a Slot,
    seq: u64,
    pending: Pending,
    done: bool,
}

impl InFlight<'_> {
    fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.slot.load.fetch_sub(1, Ordering::Relaxed);
        if self.done || lock(&self.pending).senders.remove(&self.seq).is_none() {
            return;
        }
        let mut worker = lock(&self.slot.worker);
        if let Some(w) = worker.as_mut() {
            if send(&mut w.stdin, self.seq, &Request::Cancel).is_err() {
                *worker = None;
            }
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Some(mut w) = lock(&slot.worker).take() {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
    }
}

/// The `verdict sandbox-worker` process (and `python -m verdict._worker`): builds an in-process
/// sandbox from the configuration its parent put in the environment and serves runs from stdin
/// until it closes, on one thread.
pub fn serve() -> Result<(), SandboxError> {
    let json = std::env::var(CONFIG_ENV)
        .map_err(|_| SandboxError::Config(format!("{CONFIG_ENV} is not set")))?;
    let config: SandboxConfig = serde_json::from_str(&json)
        .map_err(|e| SandboxError::Config(format!("{CONFIG_ENV}: {e}")))?;
    // One thread runs everything here, so instances are made ahead between runs (after each
    // answer is written), not in the middle of the next run.
    config.validate()?;
    let local = std::sync::Arc::new(Local::new(&config, false)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SandboxError::io("start", "the worker's runtime", e))?;
    runtime.block_on(serve_on(local));
    Ok(())
}

async fn serve_on(local: std::sync::Arc<Local>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    local.pool.refill();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Response)>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some((seq, response)) = rx.recv().await {
            let line = match frame(seq, &response) {
                Ok(line) => line,
                Err(e) => match frame(
                    seq,
                    &Response::Error(format!("serializing the report: {e}")),
                ) {
                    Ok(line) => line,
                    Err(_) => continue,
                },
            };
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let mut running: HashMap<u64, tokio::task::AbortHandle> = HashMap::new();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Some((seq, request)) = unframe::<Request>(&line) else {
            tracing::warn!("A line without a sequence number reached a sandbox worker.");
            continue;
        };
        running.retain(|_, h| !h.is_finished());
        let job = match request {
            Ok(Request::Cancel) => {
                if let Some(h) = running.remove(&seq) {
                    h.abort();
                }
                continue;
            }
            Ok(Request::Run(job)) => job,
            Err(e) => {
                tracing::warn!(error = %e, "Unreadable request to a sandbox worker.");
                let _ = tx.send((
                    seq,
                    Response::Error(format!("the worker could not read the request: {e}")),
                ));
                continue;
            }
        };
        let (local, tx) = (std::sync::Arc::clone(&local), tx.clone());
        let task = tokio::spawn(async move {
            let run = RunJob {
                id: &job.id,
                program: &job.program,
                setup: job.setup.as_deref(),
                judge_setup: job.judge_setup.as_deref(),
                tests: &job.tests,
                limits: job.limits.as_ref(),
                stop_on_failure: job.stop_on_failure,
            };
            let response = match local.run(&run).await {
                Ok(report) => Response::Report(report),
                Err(e) => Response::Error(e.to_string()),
            };
            let _ = tx.send((seq, response));
            // Let the writer send the answer first, then make the next instance while idle.
            tokio::task::yield_now().await;
            local.pool.refill();
        });
        running.insert(seq, task.abort_handle());
    }
    // stdin closed: the parent is gone or done; finish nothing more.
    for h in running.values() {
        h.abort();
    }
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_too_deep_to_read_is_still_answered_by_its_sequence_number() {
        let deep = format!("17 {{\"run\":{}{}}}", "[".repeat(5_000), "]".repeat(5_000));
        let (seq, request) = unframe::<Request>(&deep).expect("the sequence number is read");
        assert_eq!(seq, 17);
        assert!(request.unwrap_err().contains("nested"));
        let (seq, request) = unframe::<Request>("3 {not json").unwrap();
        assert_eq!(seq, 3);
        assert!(request.is_err());
        assert!(unframe::<Request>("no-number here").is_none());
    }

    #[test]
    fn frames_round_trip() {
        let line = frame(9, &Request::Cancel).unwrap();
        let text = std::str::from_utf8(&line).unwrap().trim_end();
        let (seq, request) = unframe::<Request>(text).unwrap();
        assert_eq!(seq, 9);
        assert!(matches!(request, Ok(Request::Cancel)));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_line_is_unframed_without_panicking(line in any::<String>(), seq in any::<u64>()) {
            let _ = unframe::<Request>(&line);
            let _ = unframe::<Response>(&line);
            let framed = format!("{seq} {line}");
            let (got, _) = unframe::<Request>(&framed).expect("a sequence number");
            prop_assert_eq!(got, seq);
        }
    }
}
