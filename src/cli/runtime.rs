//! `verdict runtime`: where the sandbox's Python runtime is, whether it verifies, installing it.

use std::path::PathBuf;

use super::CliError;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub(super) struct RuntimeArgs {
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

pub(super) fn run(args: RuntimeArgs) -> Result<(), CliError> {
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
