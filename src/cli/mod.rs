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
//!
//! One file per subcommand, its clap arguments with its body: `score.rs`, `serve.rs`,
//! `verifiers.rs`, `runtime.rs`, `tests.rs` (`verdict tests eval`, `generate`, `show`) and
//! `plugin.rs`. This file holds the command enum, [`run`], [`main_with`], [`CliError`] and the
//! helpers the subcommands share.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::registry::Registry;

mod plugin;
mod runtime;
mod score;
mod serve;
mod tests;
mod verifiers;

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
    Score(score::ScoreArgs),
    /// Print the effective verifier chain (from --config, or the built-in default).
    Verifiers(verifiers::VerifiersArgs),
    /// Serve the gRPC reward service (plus grpc.health.v1, reflection, and with --http-addr
    /// /metrics and the HTTP/JSON gateway) until SIGTERM/SIGINT, then drain. Prints
    /// `listening on ADDR` on stdout once bound (and `http on ADDR` for --http-addr).
    Serve(serve::ServeArgs),
    /// Show, install or verify the sandbox's Python runtime (CPython compiled to WebAssembly).
    ///
    /// The runtime is installed on first use anyway; `install` does it up front (what CI runs),
    /// `verify` checks hashes and runs a self-test.
    Runtime(runtime::RuntimeArgs),
    /// LLM-generated tests (the `[testgen]` section): pre-generate them for a dataset, measure
    /// how good they are, and show what the cache kept for a problem and why it dropped the rest.
    ///
    /// Generated tests are cached in `generated-tests.sqlite3` in `testgen.cache_dir` (default:
    /// `testgen/` in the verdict cache directory, `$VERDICT_CACHE_DIR` or `~/.cache/verdict`).
    #[command(subcommand)]
    Tests(tests::TestsCommand),
    /// Build a verifier plug-in: a Python file → a WebAssembly component (componentize-py,
    /// pinned in sandbox/runtime.lock), to name in verdict.toml as `[plugins.NAME] wasm = …`.
    Plugin(plugin::PluginArgs),
    /// Internal: serve sandbox runs for a parent process over stdin/stdout (`sandbox.workers`).
    #[command(hide = true)]
    SandboxWorker,
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
        Command::Score(args) => score::run(args, registry),
        Command::Verifiers(args) => verifiers::run(args, registry).map(|()| ExitCode::SUCCESS),
        Command::Runtime(args) => runtime::run(args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(args, registry).map(|()| ExitCode::SUCCESS),
        Command::Tests(command) => tests::run(command).map(|()| ExitCode::SUCCESS),
        Command::Plugin(args) => plugin::run(args).map(|()| ExitCode::SUCCESS),
        Command::SandboxWorker => crate::sandbox::serve_worker()
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
    }
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
