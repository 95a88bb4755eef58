//! `verdict score`: a JSONL file of rollouts in, one score line out per rollout, in order.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::{with_sandbox_workers, CliError};
use crate::batch::{self, BatchOptions, Scorer};
use crate::config::Config;
use crate::registry::Registry;

#[derive(Debug, clap::Args)]
pub(super) struct ScoreArgs {
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

pub(super) fn run(args: ScoreArgs, registry: &Registry) -> Result<ExitCode, CliError> {
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
