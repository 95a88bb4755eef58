//! `verdict runtime`: where the sandbox's Python runtime is, whether it verifies, installing it.

use std::io::Write;
use std::path::PathBuf;

use super::CliError;
use crate::config::Config;
use crate::sandbox::{runtime, Sandbox, SandboxConfig, SandboxError};

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
    let config = Config::load(args.config.as_deref())?;
    report(&config.sandbox, args.action, &mut std::io::stdout().lock())?;
    Ok(())
}

/// Writes the runtime's state to `out`: installing it first for `install`, verifying it (its
/// hashes and the self-test, in this process) for `install` and `verify`, and for `show` when
/// it is present.
fn report(
    config: &SandboxConfig,
    action: RuntimeVerb,
    out: &mut dyn Write,
) -> Result<(), SandboxError> {
    let w = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(|e| SandboxError::io("write", "output", e))
    };
    let mut config = config.clone();
    config.runtime.auto_install = matches!(action, RuntimeVerb::Install);
    let dir = runtime::runtime_dir(&config)?;
    w(out, format!("runtime directory: {}", dir.display()))?;
    w(
        out,
        format!("inputs hash:       {}", runtime::inputs_hash()),
    )?;
    if matches!(action, RuntimeVerb::Show) && runtime::verify(&config).is_err() {
        w(
            out,
            "state:             not installed (run `verdict runtime install`)".into(),
        )?;
        return Ok(());
    }
    // In this process, so the self-test runs here (it builds, calibrates and self-tests).
    Sandbox::in_process(&config)?;
    let info = runtime::info(&config)?;
    let sha = runtime::verify(&config)?;
    w(
        out,
        format!(
            "componentize-py:   {} (pinned in sandbox/runtime.lock)",
            info.componentize_py
        ),
    )?;
    w(
        out,
        format!("component:         {}", info.component.display()),
    )?;
    w(out, format!("component sha256:  {sha} (verified)"))?;
    if let Some(c) = &info.compiled {
        w(out, format!("compiled:          {}", c.display()))?;
    }
    w(
        out,
        "self-test:         passed (assert through the judge, stdio and call runs)".into(),
    )?;
    Ok(())
}
