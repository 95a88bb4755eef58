//! `verdict._native`: the extension module under the `verdict` Python package.
//!
//! It is deliberately thin. Rollouts and scores cross as JSON text — the JSONL line format, so
//! there is one shape and one decoder (with its nesting limit and field-naming errors) on
//! every path — and the Python package (`python/verdict/`) turns them into dicts. Every call
//! that scores releases the GIL (`Python::detach`) while a Tokio runtime owned by the object
//! does the work, so Python threads and the asyncio wrappers run alongside it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use verdict::batch::{self, BatchError};
use verdict::client::{ClientError, ClientOptions};
use verdict::columns;
use verdict::rollout::readable_id;
use verdict::FieldError;
use verdict::{Chain, Config, Rollout, Score};

create_exception!(
    _native,
    VerdictError,
    PyException,
    "Base class of verdict's errors."
);
create_exception!(
    _native,
    ServiceError,
    VerdictError,
    "A call to a verdict service failed (after the client's retries); `args` is (code, message)."
);
create_exception!(
    _native,
    DeadlineExceeded,
    ServiceError,
    "A call to a verdict service did not finish within its timeout."
);

fn value_error(e: FieldError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn verdict_error(e: impl std::fmt::Display) -> PyErr {
    VerdictError::new_err(e.to_string())
}

fn runtime() -> PyResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("verdict")
        .build()
        .map_err(|e| verdict_error(format!("starting the async runtime: {e}")))
}

fn to_json(score: &Score) -> String {
    serde_json::to_string(score).expect("scores serialize")
}

/// The rollouts of a batch: decoded, or the `invalid_input` record of their slot.
fn batch_items(rollouts: &[String]) -> Vec<Result<Rollout, Box<Score>>> {
    rollouts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            Rollout::from_json(text).map_err(|e| {
                let id = readable_id(text);
                Box::new(Score::invalid(
                    id.as_deref(),
                    i + 1,
                    e.within(&format!("rollouts[{i}]")).to_string(),
                ))
            })
        })
        .collect()
}

/// The whole chain in this process, sandbox included.
#[pyclass(frozen, module = "verdict._native")]
struct Scorer {
    chain: Arc<Chain>,
    /// The batch seam `verdict score` uses, local: `jobs` rollouts of a batch scored at once.
    batch: batch::Scorer,
    runtime: tokio::runtime::Runtime,
    origin: String,
}

#[pymethods]
impl Scorer {
    /// `config`: a `verdict.toml` path; `toml`: its text instead. Neither: the built-in chain.
    /// `jobs`: rollouts of a batch scored at once (default: the number of CPUs).
    #[new]
    #[pyo3(signature = (config=None, *, toml=None, jobs=None))]
    fn new(
        py: Python<'_>,
        config: Option<PathBuf>,
        toml: Option<String>,
        jobs: Option<usize>,
    ) -> PyResult<Self> {
        let jobs = jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let config = match (config, toml) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "give `config` (a path) or `toml` (its text), not both",
                ))
            }
            (path, None) => Config::load(path.as_deref()),
            (None, Some(text)) => Config::parse(&text, "toml argument"),
        }
        .map_err(verdict_error)?;
        let mut config = config;
        in_worker_processes(py, &mut config.sandbox.engine)?;
        let origin = config.origin.clone();
        let runtime = runtime()?;
        // Building may install the sandbox runtime (first use): no GIL held meanwhile.
        let chain = py.detach(|| {
            let _entered = runtime.enter();
            config.build()
        });
        let chain = Arc::new(chain.map_err(verdict_error)?);
        Ok(Scorer {
            batch: batch::Scorer::local(chain.clone(), jobs),
            chain,
            runtime,
            origin,
        })
    }

    /// Where the chain's configuration came from.
    #[getter]
    fn origin(&self) -> &str {
        &self.origin
    }

    /// The chain's steps as (name, kind) pairs, in order.
    fn steps(&self) -> Vec<(String, String)> {
        self.chain
            .steps()
            .iter()
            .map(|s| (s.name.clone(), s.verifier.kind().to_string()))
            .collect()
    }

    /// Score one rollout (JSON text); a malformed one raises `ValueError` naming the field.
    fn score_json(&self, py: Python<'_>, rollout: &str) -> PyResult<String> {
        let rollout = Rollout::from_json(rollout).map_err(value_error)?;
        let chain = self.chain.clone();
        Ok(py.detach(|| to_json(&self.runtime.block_on(chain.score(&rollout)))))
    }

    /// Score a batch (JSON texts), concurrently, with the group pass; a malformed rollout gets
    /// an `invalid_input` score in its own slot.
    fn score_batch_json(&self, py: Python<'_>, rollouts: Vec<String>) -> PyResult<Vec<String>> {
        let items = batch_items(&rollouts);
        let scores = py.detach(|| self.runtime.block_on(self.batch.score_window(items)));
        Ok(scores.map_err(batch_error)?.iter().map(to_json).collect())
    }
}

/// A client of `verdict serve` replicas (gRPC), with the Rust client's retries, deadlines and
/// load balancing.
#[pyclass(frozen, module = "verdict._native")]
struct Client {
    client: Arc<verdict::client::Client>,
    /// The batch seam `verdict score --remote` uses: a batch is one `ScoreBatch` call.
    batch: batch::Scorer,
    runtime: tokio::runtime::Runtime,
}

fn client_error(e: ClientError) -> PyErr {
    match e {
        ClientError::DeadlineExceeded(t) => DeadlineExceeded::new_err((
            "DEADLINE_EXCEEDED",
            format!("no answer within {:.3} s", t.as_secs_f64()),
        )),
        ClientError::Status { .. } => {
            let code = e.code().map_or("UNKNOWN".to_string(), |c| {
                format!("{c:?}")
                    .chars()
                    .flat_map(|ch| {
                        let upper = ch.is_uppercase();
                        [
                            if upper { Some('_') } else { None },
                            Some(ch.to_ascii_uppercase()),
                        ]
                    })
                    .flatten()
                    .collect::<String>()
                    .trim_start_matches('_')
                    .to_string()
            });
            ServiceError::new_err((code, e.to_string()))
        }
        other => ServiceError::new_err(("CLIENT", other.to_string())),
    }
}

/// A batch that could not be scored: only remote calls fail ([`BatchError::Remote`]).
fn batch_error(e: BatchError) -> PyErr {
    match e {
        BatchError::Remote(e) => client_error(e),
        other => verdict_error(other),
    }
}

fn seconds(name: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!("{name} must be a positive number of seconds"))
        })
}

#[pymethods]
impl Client {
    /// `endpoints`: `host:port`, a comma-separated list of them, or a list.
    #[new]
    #[pyo3(signature = (endpoints, *, timeout=300.0, retries=5, connect_timeout=5.0))]
    fn new(
        py: Python<'_>,
        endpoints: &Bound<'_, PyAny>,
        timeout: f64,
        retries: u32,
        connect_timeout: f64,
    ) -> PyResult<Self> {
        let endpoints: Vec<String> = match endpoints.cast::<PyString>() {
            Ok(s) => s
                .to_str()?
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            Err(_) => endpoints.extract()?,
        };
        let opts = ClientOptions {
            timeout: seconds("timeout", timeout)?,
            retries,
            connect_timeout: seconds("connect_timeout", connect_timeout)?,
            ..ClientOptions::default()
        };
        let runtime = runtime()?;
        let client = py
            .detach(|| runtime.block_on(verdict::client::Client::resolve(&endpoints, opts)))
            .map_err(client_error)?;
        let client = Arc::new(client);
        Ok(Client {
            batch: batch::Scorer::remote(client.clone()),
            client,
            runtime,
        })
    }

    /// The endpoints, as URLs.
    fn endpoints(&self) -> Vec<String> {
        self.client
            .endpoints()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Score one rollout (JSON text) on a replica.
    fn score_json(&self, py: Python<'_>, rollout: &str) -> PyResult<String> {
        let rollout = Rollout::from_json(rollout).map_err(value_error)?;
        let client = self.client.clone();
        py.detach(|| self.runtime.block_on(client.score(&rollout)))
            .map(|s| to_json(&s))
            .map_err(client_error)
    }

    /// Score a batch (JSON texts) as one `ScoreBatch` call; a malformed rollout gets an
    /// `invalid_input` score in its own slot and is not sent.
    fn score_batch_json(&self, py: Python<'_>, rollouts: Vec<String>) -> PyResult<Vec<String>> {
        let items = batch_items(&rollouts);
        let scores = py.detach(|| self.runtime.block_on(self.batch.score_window(items)));
        Ok(scores.map_err(batch_error)?.iter().map(to_json).collect())
    }
}

/// A rollout (JSON text) from a trainer's fields: `fields` (JSON text of an object) are the
/// dataset columns (`tests`, `reference`, `input_output`, `verification_info`, …). Every number
/// is kept exactly as written (the fields are read as raw JSON text, never as floats).
#[pyfunction]
fn rollout_from_fields(id: &str, prompt: &str, completion: &str, fields: &str) -> PyResult<String> {
    let fields = columns::Fields::from_json(fields)
        .map_err(|e| PyValueError::new_err(format!("fields: {}", e.reason)))?;
    let rollout =
        columns::rollout_from_raw_fields(id, prompt, completion, &fields).map_err(value_error)?;
    Ok(serde_json::to_string(&rollout).expect("rollouts serialize"))
}

/// verl's `ground_truth` and `extra_info` (JSON texts) as rollout fields (JSON text), every
/// number exactly as written.
#[pyfunction]
#[pyo3(signature = (ground_truth, extra_info=None))]
fn verl_fields(ground_truth: &str, extra_info: Option<&str>) -> PyResult<String> {
    let raw = |name: &str, text: &str| {
        serde_json::value::RawValue::from_string(text.to_string())
            .map_err(|e| PyValueError::new_err(format!("{name}: not JSON: {e}")))
    };
    let ground_truth = raw("ground_truth", ground_truth)?;
    let extra_info = extra_info.map(|t| raw("extra_info", t)).transpose()?;
    let fields =
        columns::verl_raw_fields(&ground_truth, extra_info.as_deref()).map_err(value_error)?;
    Ok(fields.to_json())
}

/// The `invalid_input` score (JSON text) of a rollout that could not be built: `position` is
/// 1-based, `id` kept where non-empty.
#[pyfunction]
fn invalid_score(id: &str, position: usize, message: &str) -> String {
    to_json(&Score::invalid(Some(id), position, message))
}

/// The `error` score (JSON text) of a rollout verdict could not judge (reward `None`), e.g.
/// because the service it was sent to failed.
#[pyfunction]
fn error_score(id: &str, reason: &str) -> String {
    to_json(&Score::verdict_failure(id, reason))
}

/// The caller survives any answer: unless the configuration says otherwise
/// (`[sandbox.engine] workers = 0` runs rollouts in this process), the sandbox runs in worker
/// processes — one per core — started as `python -m verdict._worker` with this interpreter, so
/// a rollout that brings a worker down costs that rollout (`error`), never the trainer.
fn in_worker_processes(
    py: Python<'_>,
    engine: &mut verdict::sandbox::EngineConfig,
) -> PyResult<()> {
    if engine.workers == Some(0) || engine.worker_exe.is_some() {
        return Ok(());
    }
    let python: String = py.import("sys")?.getattr("executable")?.extract()?;
    if python.is_empty() {
        return Err(PyValueError::new_err(
            "no Python executable to start sandbox workers with (sys.executable is empty): set \
             [sandbox.engine] worker_exe to a `verdict` binary, or workers = 0 to run rollouts \
             in this process",
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    engine.workers.get_or_insert(cores as u32);
    engine.worker_exe = Some(python.into());
    engine.worker_args = Some(vec!["-m".into(), "verdict._worker".into()]);
    Ok(())
}

/// Serves sandbox runs for a parent process over stdin/stdout until it closes them: the body of
/// `python -m verdict._worker` (what `verdict sandbox-worker` does in the binary).
#[pyfunction]
fn serve_sandbox_worker(py: Python<'_>) -> PyResult<()> {
    py.detach(verdict::sandbox::serve_worker)
        .map_err(|e| VerdictError::new_err(e.to_string()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scorer>()?;
    m.add_class::<Client>()?;
    m.add_function(wrap_pyfunction!(rollout_from_fields, m)?)?;
    m.add_function(wrap_pyfunction!(verl_fields, m)?)?;
    m.add_function(wrap_pyfunction!(invalid_score, m)?)?;
    m.add_function(wrap_pyfunction!(error_score, m)?)?;
    m.add_function(wrap_pyfunction!(serve_sandbox_worker, m)?)?;
    m.add("VerdictError", m.py().get_type::<VerdictError>())?;
    m.add("ServiceError", m.py().get_type::<ServiceError>())?;
    m.add("DeadlineExceeded", m.py().get_type::<DeadlineExceeded>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
