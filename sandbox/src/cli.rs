//! `verdict runtime`: where the sandbox runtime is, whether it verifies, and installing it.

use std::io::Write;

use crate::{runtime, Sandbox, SandboxConfig, SandboxError};

/// What `verdict runtime` should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeAction {
    /// Print where the runtime is and its state; verify it when present (the default).
    #[default]
    Show,
    /// Install (pip, hash-pinned), build, compile and self-test the runtime. Idempotent; this is
    /// what CI runs before the tests.
    Install,
    /// Check the built component's hash and run the self-test; fails when anything is off.
    Verify,
}

/// Runs `verdict runtime [show|install|verify]`, writing a human-readable report to `out`.
pub fn runtime_command(
    config: &SandboxConfig,
    action: RuntimeAction,
    out: &mut dyn Write,
) -> Result<(), SandboxError> {
    let w = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(|e| SandboxError::io("write", "output", e))
    };
    let mut config = config.clone();
    config.runtime.auto_install = action == RuntimeAction::Install;
    let dir = runtime::runtime_dir(&config)?;
    w(out, format!("runtime directory: {}", dir.display()))?;
    w(
        out,
        format!("inputs hash:       {}", runtime::inputs_hash()),
    )?;
    if action == RuntimeAction::Show && runtime::verify(&config).is_err() {
        w(
            out,
            "state:             not installed (run `verdict runtime install`)".into(),
        )?;
        return Ok(());
    }
    // In this process, so the self-test runs here (it builds, calibrates and self-tests).
    Sandbox::in_process(&config)?;
    let info = runtime::info(&config, &crate::engine::engine(&config)?)?;
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
