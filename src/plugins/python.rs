//! Python plug-ins: a function in a file or module, called in verdict's embedded CPython
//! (pyo3).
//!
//! ## Threads
//! The interpreter is initialised once per process ([`initialize`]). Each
//! plug-in has its own worker thread(s) that call the function; a verifier's `verify` only
//! queues the rollout and awaits the answer, so the async runtime's threads never wait on
//! Python or the GIL. With `batch = true` (and for `call = "trl"`), the calls queued while one
//! runs are handed to the function together, up to `max_batch`.
//!
//! ## Timeout
//! A watchdog thread per plug-in answers every call that overruns `timeout_ms` with an error
//! at the deadline, then raises `VerdictTimeout` (a `BaseException`, so `except Exception`
//! does not catch it) in the worker's Python thread with `PyThreadState_SetAsyncExc`. The
//! interpreter delivers it at the function's next bytecode, so Python code — loops, sleeps
//! in short steps — stops and the worker takes the next call.
//!
//! Code that ignores the interrupt (catches `BaseException` and carries on, or waits inside
//! one C call — `time.sleep(3600)`, a socket without timeout — that never returns to the
//! interpreter) keeps its thread. [`INTERRUPT_GRACE`] after the deadline the watchdog gives the
//! thread up and starts a fresh worker in its place, so later calls are served; the lost
//! thread is left to finish on its own (Python threads cannot be killed). After
//! [`MAX_ABANDONED`] lost threads the plug-in is disabled: its calls fail at once with an error
//! saying why, until verdict restarts. Every one of these calls gets the `error` outcome.
//! Code that holds the GIL inside C forever stalls every Python plug-in of the process; their
//! calls still end with errors at their deadlines, because the watchdog needs no GIL to answer.
//!
//! ## Trust
//! The function runs with verdict's privileges: it is configuration, like the chain itself,
//! never input. See [`crate::plugins`].

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::types::PyModule;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

use super::{checked_verdict, parse_details, CallStyle, Input, PluginConfig};
use crate::rollout::Rollout;
use crate::verifiers::{Context, Verdict, Verifier};

/// How long a call may run past its deadline, after the interrupt, before its thread is given
/// up and replaced.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(1);

/// Threads a plug-in may lose to calls that ignore the interrupt before it is disabled.
pub const MAX_ABANDONED: usize = 4;

/// How often the watchdog looks at the calls in flight.
const WATCH_EVERY: Duration = Duration::from_millis(5);

/// verdict's side of the call, in Python (`src/plugins/shim.py`).
const SHIM: &str = include_str!("shim.py");

/// The Python executable whose installation (standard library, site-packages, a venv's
/// `pyvenv.cfg`) the embedded interpreter uses: `VERDICT_PYTHON` if set, else the interpreter
/// verdict was built against.
pub fn program() -> Option<String> {
    std::env::var("VERDICT_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| option_env!("VERDICT_BUILD_PYTHON").map(str::to_string))
}

/// Initialise the embedded interpreter once per process, as if started as [`program`] (so it
/// finds the standard library matching the libpython linked, whatever `python3` is first on
/// `PATH`), without Python's signal handlers (verdict owns SIGINT/SIGTERM). Environment
/// variables (`PYTHONPATH`, `PYTHONHOME`) apply as usual. Where Python is already running in
/// this process (verdict loaded as an extension module), it is used as it is.
pub fn initialize() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: called once (OnceLock); `Py_IsInitialized` may be called at any time. The
        // config is initialised by `PyConfig_InitPythonConfig` before use and cleared after;
        // on success the initialising thread holds the GIL, which `PyEval_SaveThread` releases
        // so that every later `Python::attach` may take it.
        unsafe {
            use pyo3::ffi;
            if ffi::Py_IsInitialized() != 0 {
                return Ok(());
            }
            let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::uninit();
            ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
            let mut config = config.assume_init();
            config.install_signal_handlers = 0;
            if let Some(program) = program().and_then(|p| CString::new(p).ok()) {
                let status = ffi::PyConfig_SetBytesString(
                    &mut config,
                    &mut config.program_name,
                    program.as_ptr(),
                );
                if ffi::PyStatus_Exception(status) != 0 {
                    ffi::PyConfig_Clear(&mut config);
                    return Err(status_message("setting the program name", &status));
                }
            }
            let status = ffi::Py_InitializeFromConfig(&config);
            ffi::PyConfig_Clear(&mut config);
            if ffi::PyStatus_Exception(status) != 0 {
                return Err(status_message("initialising Python", &status));
            }
            ffi::PyEval_SaveThread();
        }
        Ok(())
    })
    .clone()
}

fn status_message(what: &str, status: &pyo3::ffi::PyStatus) -> String {
    let text = if status.err_msg.is_null() {
        "unknown error".to_string()
    } else {
        // SAFETY: a non-null `err_msg` of a PyStatus is a static NUL-terminated C string.
        unsafe { std::ffi::CStr::from_ptr(status.err_msg) }
            .to_string_lossy()
            .into_owned()
    };
    format!("{what}: {text}")
}

/// Where a plug-in's function lives.
#[derive(Debug, Clone)]
pub enum Source {
    /// A `.py` file.
    File(PathBuf),
    /// An importable module.
    Module(String),
}

/// What one call answered for one rollout.
type Answer = Result<Verdict, String>;

struct Job {
    input: String,
    reply: oneshot::Sender<Answer>,
}

struct InFlight {
    call: u64,
    thread: std::ffi::c_ulong,
    deadline: Instant,
    replies: Vec<oneshot::Sender<Answer>>,
    /// The callers got the timeout error.
    answered: bool,
    /// `VerdictTimeout` was raised (or an interrupter is on its way).
    interrupt_sent: bool,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    in_flight: HashMap<u64, InFlight>,
    /// Workers given up; they exit if their call ever returns.
    abandoned: Vec<u64>,
    next_worker: u64,
    next_call: u64,
    interrupting: bool,
    disabled: Option<String>,
    shutdown: bool,
}

struct Shared {
    name: &'static str,
    function: Py<PyAny>,
    call: Py<PyAny>,
    timeout_exc: Py<PyAny>,
    style: &'static str,
    batch: bool,
    max_batch: usize,
    timeout: Duration,
    state: Mutex<State>,
    work: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A loaded Python plug-in: the function, its worker thread and its watchdog.
pub struct PythonPlugin {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PythonPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonPlugin")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

fn py_error(py: Python<'_>, e: PyErr) -> String {
    let mut text = e.to_string();
    if let Some(tb) = e.traceback(py) {
        if let Ok(formatted) = tb.format() {
            if let Some(last) = formatted
                .lines()
                .rev()
                .find(|l| l.trim_start().starts_with("File"))
            {
                text.push_str(&format!(" ({})", last.trim()));
            }
        }
    }
    text
}

impl PythonPlugin {
    /// Initialise the interpreter (once per process), import the function and start the
    /// plug-in's worker and watchdog threads.
    pub fn load(
        name: &'static str,
        source: Source,
        config: &PluginConfig,
    ) -> Result<PythonPlugin, String> {
        let function_name = config.function.clone().unwrap_or_else(|| "score".into());
        initialize()?;
        let (function, call, timeout_exc) = Python::attach(|py| {
            let shim = PyModule::from_code(
                py,
                &CString::new(SHIM).expect("the shim has no NUL"),
                c"verdict_plugin_shim.py",
                c"verdict_plugin_shim",
            )
            .map_err(|e| format!("verdict's plug-in shim failed: {}", py_error(py, e)))?;
            let (module, from) = match &source {
                Source::File(path) => {
                    if !path.is_file() {
                        return Err(format!("Python file {} does not exist", path.display()));
                    }
                    let module = shim
                        .getattr("load_file")
                        .and_then(|f| f.call1((path.display().to_string(), name)))
                        .map_err(|e| {
                            format!("cannot import {}: {}", path.display(), py_error(py, e))
                        })?;
                    (module, path.display().to_string())
                }
                Source::Module(m) => {
                    let module = shim
                        .getattr("load_module")
                        .and_then(|f| f.call1((m.as_str(),)))
                        .map_err(|e| format!("cannot import module {m}: {}", py_error(py, e)))?;
                    (module, format!("module {m}"))
                }
            };
            let function = module
                .getattr(function_name.as_str())
                .map_err(|_| format!("{from} defines no `{function_name}`"))?;
            if !function.is_callable() {
                return Err(format!("`{function_name}` in {from} is not callable"));
            }
            let call = shim.getattr("call").map_err(|e| py_error(py, e))?;
            let timeout_exc = shim
                .getattr("VerdictTimeout")
                .map_err(|e| py_error(py, e))?;
            Ok((function.unbind(), call.unbind(), timeout_exc.unbind()))
        })?;
        let style = match config.call {
            CallStyle::Verdict => "verdict",
            CallStyle::Trl => "trl",
            CallStyle::Verl => "verl",
        };
        let shared = Arc::new(Shared {
            name,
            function,
            call,
            timeout_exc,
            style,
            batch: config.batch || config.call == CallStyle::Trl,
            max_batch: config.max_batch.unwrap_or(64),
            timeout: config.timeout(),
            state: Mutex::new(State::default()),
            work: Condvar::new(),
        });
        spawn_worker(&shared).map_err(|e| format!("starting the worker thread: {e}"))?;
        let watched = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name(format!("verdict-py-watch-{name}"))
            .spawn(move || watchdog(watched))
            .map_err(|e| format!("starting the watchdog thread: {e}"))?;
        Ok(PythonPlugin { shared })
    }

    /// A verifier of this plug-in with a step's settings.
    pub fn verifier(self: &Arc<Self>, settings: Map<String, Value>) -> PythonVerifier {
        PythonVerifier {
            plugin: Arc::clone(self),
            settings,
        }
    }

    /// Score one input (see [`Input`]); never blocks the calling thread.
    pub async fn call(&self, input: &Input) -> Verdict {
        let text = match serde_json::to_string(input) {
            Ok(t) => t,
            Err(e) => return Verdict::error(format!("encoding the input: {e}")),
        };
        let (reply, answer) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if let Some(why) = &state.disabled {
                return Verdict::error(format!(
                    "Python plug-in `{}` is disabled: {why}",
                    self.shared.name
                ));
            }
            state.queue.push_back(Job { input: text, reply });
        }
        self.shared.work.notify_one();
        match answer.await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(message)) => {
                Verdict::error(format!("Python plug-in `{}`: {message}", self.shared.name))
            }
            Err(_) => Verdict::error(format!(
                "Python plug-in `{}`: the worker ended without answering",
                self.shared.name
            )),
        }
    }
}

impl Drop for PythonPlugin {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
    }
}

fn spawn_worker(shared: &Arc<Shared>) -> std::io::Result<()> {
    let id = {
        let mut state = shared.lock();
        state.next_worker += 1;
        state.next_worker
    };
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name(format!("verdict-py-{}-{id}", shared.name))
        .spawn(move || worker(&shared, id))
        .map(drop)
}

/// One worker: take queued calls (several at once for a batch function), call the function,
/// answer the callers the watchdog has not already answered.
fn worker(shared: &Shared, id: u64) {
    // SAFETY: `PyThread_get_thread_ident` only reads the calling thread's id; it needs no
    // interpreter state.
    let thread = unsafe { pyo3::ffi::PyThread_get_thread_ident() };
    loop {
        let (call, jobs) = {
            let mut state = shared.lock();
            loop {
                if state.shutdown || state.abandoned.contains(&id) {
                    return;
                }
                if !state.queue.is_empty() {
                    break;
                }
                state = shared.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            // Calls whose rollout was given up meanwhile (a cancelled request, a deadline)
            // are not run.
            state.queue.retain(|job| !job.reply.is_closed());
            let n = if shared.batch { shared.max_batch } else { 1 };
            let n = n.min(state.queue.len());
            let jobs: Vec<Job> = state.queue.drain(..n).collect();
            state.next_call += 1;
            (state.next_call, jobs)
        };
        if jobs.is_empty() {
            continue;
        }
        let (inputs, replies): (Vec<String>, Vec<_>) =
            jobs.into_iter().map(|j| (j.input, j.reply)).unzip();
        let n = replies.len();
        shared.lock().in_flight.insert(
            id,
            InFlight {
                call,
                thread,
                deadline: Instant::now() + shared.timeout,
                replies,
                answered: false,
                interrupt_sent: false,
            },
        );
        let payload = format!("[{}]", inputs.join(","));
        let (answers, replies) = Python::attach(|py| {
            let answers = run_call(py, shared, &payload, n);
            // Under the GIL, so the watchdog cannot interrupt this call any more: take it out
            // of flight, then clear an interrupt that arrived after the function returned.
            let flight = shared.lock().in_flight.remove(&id);
            // SAFETY: the GIL is held; a NULL exception clears the thread's pending one.
            unsafe {
                pyo3::ffi::PyThreadState_SetAsyncExc(thread as _, std::ptr::null_mut());
            }
            (answers, flight.map(|f| f.replies).unwrap_or_default())
        });
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
        if shared.lock().abandoned.contains(&id) {
            return;
        }
    }
}

/// Call the shim for `n` inputs; one answer per input.
fn run_call(py: Python<'_>, shared: &Shared, payload: &str, n: usize) -> Vec<Answer> {
    let out = shared.call.bind(py).call1((
        shared.function.bind(py),
        shared.style,
        shared.batch,
        payload,
    ));
    let rows: Vec<(String, f64, String)> = match out.and_then(|o| o.extract()) {
        Ok(rows) => rows,
        Err(e) => {
            let message = py_error(py, e);
            return (0..n).map(|_| Err(message.clone())).collect();
        }
    };
    rows.into_iter()
        .map(|(kind, score, text)| match kind.as_str() {
            "ok" => parse_details(&text).and_then(|details| checked_verdict(score, details)),
            "skip" => Ok(Verdict::skip(json!({ "reason": text }))),
            _ => Err(text),
        })
        .collect()
}

/// Answers overrunning calls at their deadline, interrupts them, and replaces workers whose
/// call ignores the interrupt. Ends when the plug-in is dropped.
fn watchdog(shared: std::sync::Weak<Shared>) {
    loop {
        std::thread::sleep(WATCH_EVERY);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut interrupt = Vec::new();
        let mut replace = 0;
        {
            let mut state = shared.lock();
            if state.shutdown {
                return;
            }
            let mut lost = Vec::new();
            // One interrupter at a time: it may wait long for the GIL (code holding it in C).
            let may_interrupt = !state.interrupting;
            for (worker, flight) in state.in_flight.iter_mut() {
                if now < flight.deadline {
                    continue;
                }
                if !flight.answered {
                    flight.answered = true;
                    let message = format!(
                        "the function did not return within its timeout of {} ms",
                        shared.timeout.as_millis()
                    );
                    for reply in flight.replies.drain(..) {
                        let _ = reply.send(Err(message.clone()));
                    }
                }
                if !flight.interrupt_sent && may_interrupt {
                    flight.interrupt_sent = true;
                    interrupt.push((flight.call, flight.thread));
                }
                if now >= flight.deadline + INTERRUPT_GRACE {
                    lost.push(*worker);
                }
            }
            if !interrupt.is_empty() {
                state.interrupting = true;
            }
            for worker in lost {
                state.in_flight.remove(&worker);
                state.abandoned.push(worker);
                tracing::warn!(
                    plugin = shared.name,
                    worker,
                    "A Python plug-in call ignored its interrupt; its thread is given up."
                );
                if state.abandoned.len() >= MAX_ABANDONED {
                    let why = format!(
                        "{MAX_ABANDONED} calls ignored the interrupt at their timeout \
                         (restart verdict to load it again)"
                    );
                    for job in state.queue.drain(..) {
                        let _ = job.reply.send(Err(format!("disabled: {why}")));
                    }
                    state.disabled = Some(why);
                } else {
                    replace += 1;
                }
            }
        }
        for _ in 0..replace {
            if let Err(e) = spawn_worker(&shared) {
                tracing::error!(plugin = shared.name, error = %e, "Cannot replace a worker.");
            }
        }
        if !interrupt.is_empty() {
            let target = Arc::clone(&shared);
            let started = std::thread::Builder::new()
                .name(format!("verdict-py-interrupt-{}", shared.name))
                .spawn(move || interrupt_calls(&target, &interrupt));
            if started.is_err() {
                shared.lock().interrupting = false;
            }
        }
    }
}

/// Raise `VerdictTimeout` in the threads of the calls `targets` still running.
fn interrupt_calls(shared: &Shared, targets: &[(u64, std::ffi::c_ulong)]) {
    Python::attach(|py| {
        let state = shared.lock();
        for (call, thread) in targets {
            let running = state.in_flight.values().any(|f| f.call == *call);
            if running {
                // SAFETY: the GIL is held and `timeout_exc` is a live exception class; the
                // worker clears any pending exception under the GIL when its call returns, so
                // this can only land in the call it was meant for.
                unsafe {
                    pyo3::ffi::PyThreadState_SetAsyncExc(
                        *thread as _,
                        shared.timeout_exc.bind(py).as_ptr(),
                    );
                }
            }
        }
    });
    shared.lock().interrupting = false;
}

/// A step of a Python plug-in kind.
pub struct PythonVerifier {
    plugin: Arc<PythonPlugin>,
    settings: Map<String, Value>,
}

#[async_trait]
impl Verifier for PythonVerifier {
    fn kind(&self) -> &'static str {
        self.plugin.shared.name
    }

    fn describe(&self) -> String {
        let s = &self.plugin.shared;
        let mut text = format!(
            "python call={} timeout_ms={}",
            s.style,
            s.timeout.as_millis()
        );
        if s.batch {
            text.push_str(&format!(" batch<={}", s.max_batch));
        }
        if !self.settings.is_empty() {
            text.push_str(&format!(" {}", Value::Object(self.settings.clone())));
        }
        text
    }

    async fn verify(&self, rollout: &Rollout, ctx: &mut Context) -> Verdict {
        self.plugin
            .call(&Input::new(rollout, ctx, &self.settings))
            .await
    }
}
