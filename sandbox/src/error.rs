//! [`SandboxError`]: failures of the sandbox service itself.
//!
//! A misbehaving *program* never produces one of these: its timeouts, traps and wrong answers
//! are verdicts in a [`RunReport`](crate::RunReport).

use std::path::PathBuf;

/// A failure of the sandbox machinery (runtime set-up, engine, host resources).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The runtime is not installed and `auto_install` is off.
    #[error("the Python runtime is not installed in {dir}; run `verdict runtime install`")]
    NotInstalled {
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// A file or directory of the runtime cache could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An external tool (python, pip, componentize-py) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Tool {
        /// The command line, for the message.
        command: String,
        /// Its exit status, or why it did not start.
        status: String,
        /// The tail of its standard error.
        stderr: String,
    },
    /// A downloaded or cached artifact does not match the pinned hash.
    #[error("{what} has sha256 {actual}, but sandbox/runtime.lock pins {expected}")]
    HashMismatch {
        /// The artifact.
        what: String,
        /// The pinned hash.
        expected: String,
        /// The hash found.
        actual: String,
    },
    /// `sandbox/runtime.lock` is malformed.
    #[error("sandbox/runtime.lock: {0}")]
    Lock(String),
    /// The configuration is invalid.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// wasmtime refused the engine configuration, the component, or an instantiation for a
    /// reason that is not the program's fault.
    #[error("wasmtime: {context}: {error:#}")]
    Wasm {
        /// What was being done.
        context: &'static str,
        /// The wasmtime error (its whole chain is in the message).
        error: wasmtime::Error,
    },
    /// A sandbox worker process failed or exited (see `sandbox.workers`).
    #[error("sandbox worker: {0}")]
    Worker(String),
}

impl SandboxError {
    /// An I/O failure: `action` (a verb) on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SandboxError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn wasm(context: &'static str, error: wasmtime::Error) -> Self {
        SandboxError::Wasm { context, error }
    }
}
