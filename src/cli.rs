//! The `verdict` command line as a library function, so that a program with verifier kinds of
//! its own gets the same `verdict score`, `verdict serve` and `verdict verifiers`:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     let registry = verdict::Registry::builtin();
//!     // registry.register(my_kind).unwrap();
//!     verdict::cli::main_with(registry)
//! }
//! ```
//!
//! `src/main.rs` is exactly that, with the built-in kinds.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::batch::{self, BatchOptions, Scorer};
use crate::config::{Config, DEFAULT_CONFIG};
use crate::registry::Registry;

/// Why a command failed (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is wrong (or `--help`/`--version` was asked for).
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// The configuration could not be loaded or built.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The batch run failed.
    #[error(transparent)]
    Batch(#[from] crate::batch::BatchError),
    /// The remote client could not be set up.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// The server failed.
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    /// The sandbox (runtime command or worker) failed.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// `verdict tests` could not run (no endpoint configured, a generation failed).
    #[error("{0}")]
    Tests(String),
    /// An I/O step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// verdict turns LLM rollouts into rewards nobody has to label by hand.
///
/// Each rollout (prompt, model completion, tests) goes through a chain of verifiers — R1 format,
/// a tree-sitter parse check, sandboxed tests — and comes out as a reward in [0, 1] with a
/// per-verifier breakdown.
#[derive(Debug, Parser)]
#[command(name = "verdict", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score a JSONL file of rollouts: one score line out per rollout line in, in input order.
    ///
    /// Exit status: 0 when every line was scored, 1 when some lines were invalid (they still get
    /// an `invalid_input` record naming the line and field) or could not be judged (`error`
    /// records, reward null), 2 on any other error.
    Score(ScoreArgs),
    /// Print the effective verifier chain (from --config, or the built-in default).
    Verifiers(VerifiersArgs),
    /// Serve the gRPC reward service (plus grpc.health.v1, reflection, and with --http-addr
    /// /metrics and the HTTP/JSON gateway) until SIGTERM/SIGINT, then drain. Prints
    /// `listening on ADDR` on stdout once bound (and `http on ADDR` for --http-addr).
    Serve(ServeArgs),
    /// Show, install or verify the sandbox's Python runtime (CPython compiled to WebAssembly).
    ///
    /// The runtime is installed on first use anyway; `install` does it up front (what CI runs),
    /// `verify` checks hashes and runs a self-test.
    Runtime(RuntimeArgs),
    /// LLM-generated tests (the `[testgen]` section): pre-generate them for a dataset, measure
    /// how good they are, and show what the cache kept for a problem and why it dropped the rest.
    ///
    /// Generated tests are cached in `generated-tests.sqlite3` in `testgen.cache_dir` (default:
    /// `testgen/` in the verdict cache directory, `$VERDICT_CACHE_DIR` or `~/.cache/verdict`).
    #[command(subcommand)]
    Tests(TestsCommand),
    /// Build a verifier plug-in: a Python file → a WebAssembly component (componentize-py,
    /// pinned in sandbox/runtime.lock), to name in verdict.toml as `[plugins.NAME] wasm = …`.
    Plugin(PluginArgs),
    /// Internal: serve sandbox runs for a parent process over stdin/stdout (`sandbox.workers`).
    #[command(hide = true)]
    SandboxWorker,
}

#[derive(Debug, Subcommand)]
enum TestsCommand {
    /// Generate tests for problems that ship real ones and compare, program by program, what
    /// the validated generated suite accepts with what the real suite accepts.
    ///
    /// Prints, over the rollouts of problems with a generated suite: recall_of_wrong (wrong
    /// programs it rejects / wrong programs), pass_rate_of_correct (correct programs it accepts
    /// / correct programs), precision_of_accept (correct among accepted), agreement, and the
    /// share of problems left tests_unavailable. Problems are grouped by problem_id (else
    /// prompt); validation uses the reference where there is one, else dual agreement over the
    /// problem's rollouts in the file. Needs [testgen] with a model and an endpoint.
    Eval(EvalArgs),
    /// Pre-generate and validate tests offline: for each problem without tests and with a
    /// `reference`, the tests the reference passes (under two seeds) become its rollouts'
    /// `tests`, so the file can be scored anywhere without an LLM. Problems without a reference
    /// or with too few valid tests are left unchanged (reported on stderr).
    Generate(GenerateArgs),
    /// Show what the cache holds for a problem: each generation (newest first) with its key
    /// (model, prompt version, N, shape, seed), the tests kept, and why each other candidate
    /// was dropped (syntax, not a test, duplicate, reference_fails, nondeterministic,
    /// disagreement, …).
    ///
    /// PROBLEM_ID is the rollouts' `problem_id` (or, for rollouts without one, their `id`), or
    /// a generation's key digest (`cache_key` in a score's `generated` details). Validations
    /// are those recorded when rollouts were scored (`verdict score`, `verdict serve`) or by
    /// `verdict tests generate`: a reference's, and the latest dual agreement of the group.
    /// Needs no endpoint. Exit status 2 when the problem is not in the cache or the cache
    /// cannot be read.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The problem: its `problem_id` (else a rollout `id`), or a cache key digest.
    problem_id: String,
    /// Configuration whose [testgen] cache_dir (and [sandbox] cache_dir) locate the cache.
    #[arg(short, long, env = "VERDICT_CONFIG")]
    config: Option<PathBuf>,
    /// Print the entries as JSON (key parts, answer, tests, dropped candidates, validations).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// JSONL rollouts (or problems: a rollout's fields without a completion are fine).
    input: PathBuf,
    /// Write the rollouts with their tests here. Default: standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Configuration with the [testgen] section.
    #[arg(short, long, env = "VERDICT_CONFIG")]
    config: Option<PathBuf>,
    /// Fewest valid tests a problem needs. Default: the `generated` step's, else 3.
    #[arg(long)]
    min_tests: Option<usize>,
    /// Never show a progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// JSONL rollouts of problems with real tests (their own `tests` or dataset fields).
    input: PathBuf,
    /// Configuration with the [testgen] section (and [sandbox]). Default: the built-in one,
    /// which has no endpoint.
    #[arg(short, long, env = "VERDICT_CONFIG")]
    config: Option<PathBuf>,
    /// Fewest valid tests a problem needs. Default: the `generated` step's, else 3.
    #[arg(long)]
    min_tests: Option<usize>,
    /// Fewest agreeing rollouts without a reference. Default: the `generated` step's, else 3.
    #[arg(long)]
    min_agreeing: Option<usize>,
    /// Print the report as JSON (with per-problem figures) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:50051", env = "VERDICT_ADDR")]
    addr: String,
    /// Chain configuration (TOML). Default: the built-in chain.
    #[arg(short, long, env = "VERDICT_CONFIG")]
    config: Option<PathBuf>,
    /// Serve HTTP on this address: Prometheus metrics (`GET /metrics`) and the JSON gateway
    /// (`POST /v1/score`, `/v1/score_batch`, `/v1/openrlhf`; see docs/openapi.yaml).
    #[arg(long, visible_alias = "metrics-addr", env = "VERDICT_HTTP_ADDR")]
    http_addr: Option<String>,
    /// Rollouts scored at once.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Rollouts admitted beyond --max-in-flight before calls get RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 1024)]
    max_queued: usize,
    /// Seconds calls in flight get to finish after SIGTERM/SIGINT.
    #[arg(long, default_value_t = 30.0)]
    grace_secs: f64,
    /// Largest request or response message; larger requests get OUT_OF_RANGE.
    #[arg(long, default_value_t = 16 << 20)]
    max_message_bytes: usize,
}

#[derive(Debug, clap::Args)]
struct PluginArgs {
    #[command(subcommand)]
    action: PluginAction,
}

#[derive(Debug, Subcommand)]
enum PluginAction {
    /// Build SOURCE (a Python module defining class `Verifier` with
    /// `verify(self, settings, rollout, findings)`, see wit/plugin.wit) into a component.
    /// Other `.py` files in its directory may be imported. Cached: building again is a copy.
    Build {
        /// The plug-in's Python source file.
        source: PathBuf,
        /// Where to write the component. Default: SOURCE with the extension `.wasm`.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Configuration whose `[sandbox]` section names the cache directory and Python.
        #[arg(short, long, env = "VERDICT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the plug-in interface (wit/plugin.wit) this verdict speaks.
    Wit,
}

#[derive(Debug, clap::Args)]
struct RuntimeArgs {
    /// What to do.
    #[arg(value_enum, default_value_t = RuntimeVerb::Show)]
    action: RuntimeVerb,
    /// Configuration whose `[sandbox]` section to use. Default: the built-in one.
    #[arg(short, long, env = "VERDICT_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RuntimeVerb {
    /// Where the runtime is and whether it verifies.
    Show,
    /// Install (pip, hash-pinned), build, compile and self-test it. Idempotent.
    Install,
    /// Check its hashes and run the self-test; fails when anything is off.
    Verify,
}

#[derive(Debug, clap::Args)]
struct ScoreArgs {
    /// Input JSONL file of rollouts; `-` or nothing reads standard input.
    input: Option<PathBuf>,
    /// Write scores here instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Chain configuration (TOML). Default: the built-in chain (`verdict verifiers --default-config`).
    #[arg(short, long, env = "VERDICT_CONFIG")]
    config: Option<PathBuf>,
    /// Rollouts scored concurrently. Default: the number of CPUs.
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Continue an interrupted run: rollouts already in OUTPUT are not scored again
    /// (needs --output).
    #[arg(long, requires = "output")]
    resume: bool,
    /// Never show a progress bar (it is shown only when stderr is a terminal anyway).
    #[arg(short, long)]
    quiet: bool,
    /// Lines per window in which groupwise verifiers (timing against the group) compare the
    /// rollouts of one `problem_id`, locally and with --remote alike (remotely each window is
    /// one ScoreBatch call). Keep a GRPO group's lines together in the file.
    #[arg(long, default_value_t = 512)]
    group_window: usize,
    /// Score through `verdict serve` replicas instead of locally (URL[,URL…]; load-balanced,
    /// with retries). --config is then the servers' business.
    #[arg(long, value_delimiter = ',', env = "VERDICT_REMOTE")]
    remote: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct VerifiersArgs {
    /// Chain configuration (TOML). Default: the built-in chain.
    #[arg(short, long, env = "VERDICT_CONFIG")]
    config: Option<PathBuf>,
    /// Print the built-in default configuration as TOML (a starting point for your own).
    #[arg(long)]
    default_config: bool,
    /// List the verifier kinds this build knows, plus the plug-ins of --config, with where each
    /// came from (built-in, rust, python, wasm).
    #[arg(long)]
    kinds: bool,
}

/// Set up logging (`RUST_LOG`, default `warn`, on stderr), run the command line of this process
/// with the kinds of `registry`, print any error, and return the exit status.
pub fn main_with(registry: Registry) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(std::env::args_os(), &registry) {
        Ok(code) => code,
        Err(CliError::Usage(e)) => {
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            let mut cause = std::error::Error::source(&err);
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            ExitCode::from(2)
        }
    }
}

/// Run the command line `args` (the first is the program name) with the kinds of `registry`:
/// exit status 0 or 1 (see `verdict score --help`), or the error.
pub fn run(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    registry: &Registry,
) -> Result<ExitCode, CliError> {
    let cli = Cli::try_parse_from(args)?;
    match cli.command {
        Command::Score(args) => score(args, registry),
        Command::Verifiers(args) => verifiers(args, registry).map(|()| ExitCode::SUCCESS),
        Command::Runtime(args) => runtime(args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve(args, registry).map(|()| ExitCode::SUCCESS),
        Command::Tests(TestsCommand::Eval(args)) => tests_eval(args).map(|()| ExitCode::SUCCESS),
        Command::Tests(TestsCommand::Generate(args)) => {
            tests_generate(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Tests(TestsCommand::Show(args)) => tests_show(args).map(|()| ExitCode::SUCCESS),
        Command::Plugin(args) => plugin(args).map(|()| ExitCode::SUCCESS),
        Command::SandboxWorker => crate::sandbox::serve_worker()
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
    }
}

fn score(args: ScoreArgs, registry: &Registry) -> Result<ExitCode, CliError> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(jobs.max(1))
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "starting the async runtime".into(),
            source,
        })?;

    let input_path = args.input.filter(|p| p.as_os_str() != "-");
    let (input, total): (Box<dyn std::io::Read + Send>, Option<u64>) = match &input_path {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|source| CliError::Io {
                what: format!("opening input {}", path.display()),
                source,
            })?;
            (Box::new(file), batch::count_records(path).ok())
        }
        None => (Box::new(std::io::stdin()), None),
    };
    let already = match (&args.output, args.resume) {
        (Some(out), true) => batch::prepare_resume(out)?,
        _ => batch::Resumed::default(),
    };
    let output: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(batch::open_output(path, args.resume)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let options = BatchOptions {
        jobs,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        group_window: args.group_window,
    };
    let summary = runtime.block_on(async {
        let scorer = if args.remote.is_empty() {
            let config = with_sandbox_workers(Config::load(args.config.as_deref())?);
            Scorer::local(Arc::new(config.build_in(registry)?), jobs)
        } else {
            let client = crate::client::Client::resolve(&args.remote, Default::default()).await?;
            Scorer::remote(Arc::new(client))
        };
        let summary = batch::score_lines(scorer, input, output, already, &options, total).await?;
        Ok::<_, CliError>(summary)
    })?;
    eprintln!("{summary}");
    Ok(if summary.any_invalid() || summary.any_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `verdict score` and `verdict serve` run rollouts in one sandbox worker process per core
/// unless the configuration sets `sandbox.workers` (see `SandboxConfig::workers`).
fn with_sandbox_workers(mut config: Config) -> Config {
    config
        .sandbox
        .engine
        .workers
        .get_or_insert_with(
            || match std::thread::available_parallelism().map_or(1, |n| n.get()) {
                1 => 0,
                n => u32::try_from(n).unwrap_or(u32::MAX).min(64),
            },
        );
    config
}

#[allow(clippy::print_stdout)]
fn serve(args: ServeArgs, registry: &Registry) -> Result<(), CliError> {
    use std::io::Write as _;
    let config = with_sandbox_workers(Config::load(args.config.as_deref())?);
    let registry = config.registry_in(registry)?;
    let chain = Arc::new(config.build_registered(&registry)?);
    let runtime = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "starting the async runtime".into(),
        source,
    })?;
    let io = |what: String| move |source| CliError::Io { what, source };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .map_err(io(format!("binding {}", args.addr)))?;
        let http_listener = match &args.http_addr {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(io(format!("binding {addr}")))?,
            ),
            None => None,
        };
        let local = listener
            .local_addr()
            .map_err(io("reading the bound address".into()))?;
        println!("listening on {local}");
        if let Some(l) = &http_listener {
            let http = l
                .local_addr()
                .map_err(io("reading the bound HTTP address".into()))?;
            println!("http on {http}");
        }
        std::io::stdout()
            .flush()
            .map_err(io("writing stdout".into()))?;
        let opts = crate::server::ServeOptions {
            max_in_flight: args.max_in_flight,
            max_queued: args.max_queued,
            grace: std::time::Duration::from_secs_f64(args.grace_secs),
            max_message_bytes: args.max_message_bytes,
            config_origin: config.origin.clone(),
            registry,
            http_listener,
            ..Default::default()
        };
        crate::server::run(listener, chain, opts, crate::server::shutdown_signal()).await?;
        Ok(())
    })
}

/// The config's testgen and sandbox for `verdict tests`, its `generated` step's settings, and
/// the rollouts of `input` (unreadable lines reported and skipped).
fn tests_setup(
    config: Option<&std::path::Path>,
    input: &std::path::Path,
) -> Result<
    (
        Config,
        crate::verifiers::generated::GeneratedConfig,
        Vec<crate::Rollout>,
    ),
    CliError,
> {
    let config = Config::load(config)?;
    let problems = config.testgen.problems();
    if !problems.is_empty() {
        return Err(CliError::Tests(problems.join("; ")));
    }
    let step = config
        .verifiers
        .iter()
        .find(|v| v.kind == "generated")
        .map(|v| crate::registry::settings_of(&v.settings))
        .transpose()
        .map_err(|e| CliError::Tests(format!("the generated step: {e}")))?
        .unwrap_or_default();
    let text = std::fs::read_to_string(input).map_err(|source| CliError::Io {
        what: format!("reading {}", input.display()),
        source,
    })?;
    let mut rollouts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match crate::Rollout::from_json(line) {
            Ok(r) => rollouts.push(r),
            Err(e) => eprintln!("{}:{}: skipped: {e}", input.display(), i + 1),
        }
    }
    Ok((config, step, rollouts))
}

/// The generator and sandbox of `config`, or why there is none.
fn tests_resources(
    config: &Config,
) -> Result<(crate::testgen::Testgen, crate::sandbox::Sandbox), CliError> {
    let testgen =
        crate::testgen::from_config(&config.testgen, || config.sandbox.resolved_cache_dir().ok())
            .map_err(CliError::Tests)?
            .ok_or_else(|| {
                CliError::Tests(
            "no LLM endpoint: set testgen.model and testgen.base_url (or OPENAI_BASE_URL) in \
             --config"
                .into(),
        )
            })?;
    let sandbox = with_sandbox_workers(config.clone()).sandbox;
    sandbox.validate()?;
    Ok((testgen, crate::sandbox::Sandbox::new(&sandbox)?))
}

fn tests_generate(args: GenerateArgs) -> Result<(), CliError> {
    use std::io::Write as _;
    let (config, step, mut rollouts) = tests_setup(args.config.as_deref(), &args.input)?;
    let min_tests = args.min_tests.unwrap_or(step.min_tests).max(1);
    let runtime = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "starting the async runtime".into(),
        source,
    })?;
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new_spinner().with_message("problems")
    };
    let report = runtime.block_on(async {
        let (testgen, sandbox) = tests_resources(&config)?;
        crate::testgen::offline::fill_tests(&sandbox, &testgen, &mut rollouts, min_tests, || {
            bar.inc(1)
        })
        .await
        .map_err(|e| CliError::Tests(e.to_string()))
    })?;
    bar.finish_and_clear();
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|source| CliError::Io {
            what: format!("creating {}", path.display()),
            source,
        })?),
        None => Box::new(std::io::stdout().lock()),
    };
    let io = |source| CliError::Io {
        what: "writing the rollouts".into(),
        source,
    };
    for r in &rollouts {
        let line = serde_json::to_string(r).expect("a rollout serializes");
        writeln!(out, "{line}").map_err(io)?;
    }
    out.flush().map_err(io)?;
    for p in &report {
        let dropped: Vec<String> = p.dropped.iter().map(|(r, n)| format!("{r}={n}")).collect();
        eprintln!(
            "{}: {} ({} generated, {} kept; dropped {})",
            p.problem,
            p.status,
            p.generated,
            p.kept,
            if dropped.is_empty() {
                "none".to_string()
            } else {
                dropped.join(" ")
            }
        );
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn tests_show(args: ShowArgs) -> Result<(), CliError> {
    use crate::testgen::show::{render, ShowReport, MAX_ENTRIES};
    use crate::testgen::sqlite::{Access, SqliteCache};
    use crate::testgen::TestCache as _;
    let config = Config::load(args.config.as_deref())?;
    let file =
        crate::testgen::cache_file(&config.testgen, || config.sandbox.resolved_cache_dir().ok())
            .map_err(CliError::Tests)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|source| CliError::Io {
            what: "starting the async runtime".into(),
            source,
        })?;
    let cache = SqliteCache::open(&file, Access::ReadOnly);
    let entries = runtime
        .block_on(cache.entries(&args.problem_id, MAX_ENTRIES))
        .map_err(|e| CliError::Tests(e.to_string()))?;
    let location = file.display().to_string();
    if entries.is_empty() {
        return Err(CliError::Tests(format!(
            "no cached tests for problem {:?} in {location} (looked up by problem_id, rollout              id and cache key)",
            args.problem_id
        )));
    }
    if args.json {
        let report = ShowReport {
            problem: &args.problem_id,
            cache: &location,
            entries: &entries,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serializes")
        );
    } else {
        print!("{}", render(&args.problem_id, &location, &entries));
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn tests_eval(args: EvalArgs) -> Result<(), CliError> {
    use crate::testgen::eval::{evaluate, EvalOptions};
    let (config, step, rollouts) = tests_setup(args.config.as_deref(), &args.input)?;
    let options = EvalOptions {
        min_tests: args.min_tests.unwrap_or(step.min_tests).max(1),
        min_agreeing: args.min_agreeing.unwrap_or(step.min_agreeing).max(1),
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "starting the async runtime".into(),
        source,
    })?;
    let report = runtime.block_on(async {
        let (testgen, sandbox) = tests_resources(&config)?;
        evaluate(&sandbox, &testgen, &rollouts, options)
            .await
            .map_err(|e| CliError::Tests(e.to_string()))
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serializes")
        );
        return Ok(());
    }
    let pct = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{:.1}%", 100.0 * x));
    println!(
        "{:<24} {:<10} {:>5} {:>5} {:>8} {:>9}  dropped",
        "problem", "validation", "gen", "kept", "correct", "wrong"
    );
    for p in &report.per_problem {
        let dropped: Vec<String> = p.dropped.iter().map(|(r, n)| format!("{r}={n}")).collect();
        println!(
            "{:<24} {:<10} {:>5} {:>5} {:>8} {:>9}  {}",
            p.problem,
            p.validation,
            p.generated,
            if p.unavailable {
                "-".to_string()
            } else {
                p.kept.to_string()
            },
            format!("{}/{}", p.correct_accepted, p.correct),
            format!("{}/{}", p.wrong_rejected, p.wrong),
            dropped.join(" ")
        );
    }
    println!(
        "problems: {} ({} tests_unavailable: {}); programs judged: {}; generations sent: {}",
        report.problems,
        report.problems_unavailable,
        pct(report.unavailable),
        report.programs,
        report.generations
    );
    println!(
        "recall_of_wrong {}  pass_rate_of_correct {}  precision_of_accept {}  agreement {}",
        pct(report.recall_of_wrong),
        pct(report.pass_rate_of_correct),
        pct(report.precision_of_accept),
        pct(report.agreement)
    );
    Ok(())
}

fn runtime(args: RuntimeArgs) -> Result<(), CliError> {
    use crate::sandbox::cli::{runtime_command, RuntimeAction};
    let config = Config::load(args.config.as_deref())?;
    let action = match args.action {
        RuntimeVerb::Show => RuntimeAction::Show,
        RuntimeVerb::Install => RuntimeAction::Install,
        RuntimeVerb::Verify => RuntimeAction::Verify,
    };
    runtime_command(&config.sandbox, action, &mut std::io::stdout().lock())?;
    Ok(())
}

#[allow(clippy::print_stdout)]
fn plugin(args: PluginArgs) -> Result<(), CliError> {
    match args.action {
        PluginAction::Wit => {
            print!("{}", crate::plugins::wasm::PLUGIN_WIT);
            Ok(())
        }
        PluginAction::Build {
            source,
            output,
            config,
        } => {
            let config = Config::load(config.as_deref())?;
            let output = output.unwrap_or_else(|| source.with_extension("wasm"));
            let built = crate::plugins::build::build_python(&config.sandbox, &source, &output)?;
            println!(
                "built {} ({:.1} MB, sha256 {}{})",
                built.output.display(),
                built.bytes as f64 / 1e6,
                &built.sha256[..16],
                if built.cached { ", from the cache" } else { "" }
            );
            Ok(())
        }
    }
}

#[allow(clippy::print_stdout)]
fn verifiers(args: VerifiersArgs, registry: &Registry) -> Result<(), CliError> {
    if args.default_config {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    let config = Config::load(args.config.as_deref())?;
    let registry = config.registry_in(registry)?;
    if args.kinds {
        println!(
            "{:<12} {:<9} description [file or module]",
            "kind", "origin"
        );
        for kind in registry.kinds() {
            let sandbox = if kind.needs_sandbox { " (sandbox)" } else { "" };
            let source = kind
                .origin
                .source()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            println!(
                "{:<12} {:<9} {}{sandbox}{source}",
                kind.name,
                kind.origin.label(),
                kind.description,
            );
        }
        return Ok(());
    }
    let chain = config.build_registered(&registry)?;
    println!("chain from {}:", config.origin);
    println!(
        "{:<3} {:<12} {:<8} {:>6}  {:<5} settings",
        "#", "name", "kind", "weight", "gate"
    );
    for (i, step) in chain.steps().iter().enumerate() {
        let gate = if step.gate {
            format!("yes (min_score {})", step.min_score)
        } else {
            "no".to_string()
        };
        println!(
            "{:<3} {:<12} {:<8} {:>6}  {:<5} {}",
            i + 1,
            step.name,
            step.verifier.kind(),
            step.weight,
            gate,
            step.verifier.describe()
        );
    }
    println!(
        "reward = weighted mean of the steps that ran; a failed gate gives 0 and ends the chain"
    );
    Ok(())
}
