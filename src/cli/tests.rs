//! `verdict tests`: LLM-generated tests — `eval` (how good they are against real ones),
//! `generate` (written into a dataset offline) and `show` (what the cache holds for a problem).

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Subcommand;

use super::{with_sandbox_workers, CliError};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub(super) enum TestsCommand {
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
pub(super) struct ShowArgs {
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
pub(super) struct GenerateArgs {
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
pub(super) struct EvalArgs {
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

/// Run one `verdict tests` subcommand.
pub(super) fn run(command: TestsCommand) -> Result<(), CliError> {
    match command {
        TestsCommand::Eval(args) => eval(args),
        TestsCommand::Generate(args) => generate(args),
        TestsCommand::Show(args) => show(args),
    }
}

/// The config's testgen and sandbox for `verdict tests`, its `generated` step's settings, and
/// the rollouts of `input` (unreadable lines reported and skipped).
fn setup(
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
fn resources(
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

fn generate(args: GenerateArgs) -> Result<(), CliError> {
    use std::io::Write as _;
    let (config, step, mut rollouts) = setup(args.config.as_deref(), &args.input)?;
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
        let (testgen, sandbox) = resources(&config)?;
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
fn show(args: ShowArgs) -> Result<(), CliError> {
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
fn eval(args: EvalArgs) -> Result<(), CliError> {
    use crate::testgen::eval::{evaluate, EvalOptions};
    let (config, step, rollouts) = setup(args.config.as_deref(), &args.input)?;
    let options = EvalOptions {
        min_tests: args.min_tests.unwrap_or(step.min_tests).max(1),
        min_agreeing: args.min_agreeing.unwrap_or(step.min_agreeing).max(1),
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "starting the async runtime".into(),
        source,
    })?;
    let report = runtime.block_on(async {
        let (testgen, sandbox) = resources(&config)?;
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
