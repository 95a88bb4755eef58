//! Obtaining the Python runtime: install componentize-py (pinned, hash-checked), build the
//! harness component, compile it once and cache the compiled form.
//!
//! Layout under the cache directory (see [`SandboxConfig::resolved_cache_dir`]):
//!
//! ```text
//! componentize-py-<version>-<lock hash>/venv/   python -m venv; componentize-py installed
//!                                 with pip --require-hashes (shared by harness versions)
//! runtime-<inputs hash>/          one per version of sandbox/{runtime.lock, wit, harness.py}
//!   src/harness.py, src/wit/      the guest sources this binary was built with
//!   harness.wasm                  the pre-initialized component (CPython 3.14 + harness)
//!   harness.wasm.sha256           its hash, recorded at build time and checked on every load
//!   harness-<wasmtime>-<engine>.cwasm   the component compiled for this engine configuration
//! ```
//!
//! The guest sources are compiled into the verdict binary (`include_str!`), so a deployed binary
//! needs no checkout; the inputs hash names the directory, so editing any of them rebuilds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::config::SandboxConfig;
use crate::error::SandboxError;

/// `sandbox/runtime.lock`: the pinned componentize-py version and wheel hashes.
pub const RUNTIME_LOCK: &str = include_str!("../runtime.lock");
/// `sandbox/wit/harness.wit`: the host–guest contract.
pub const HARNESS_WIT: &str = include_str!("../wit/harness.wit");
/// `sandbox/harness.py`: what runs inside the sandbox.
pub const HARNESS_PY: &str = include_str!("../harness.py");

/// Serializes installs within one process (tests build concurrently); across processes the
/// final renames are atomic, so a concurrent build costs time, never correctness.
static INSTALL: Mutex<()> = Mutex::new(());

/// The wasmtime major version this crate is built against (see Cargo.toml).
pub const WASMTIME_MAJOR: &str = "48";

#[derive(Debug, Deserialize)]
struct Lock {
    #[serde(rename = "componentize-py")]
    componentize_py: Pinned,
}

#[derive(Debug, Deserialize)]
struct Pinned {
    version: String,
    wheel: Vec<Wheel>,
}

#[derive(Debug, Deserialize)]
struct Wheel {
    file: String,
    sha256: String,
}

fn lock() -> Result<Lock, SandboxError> {
    let lock: Lock = toml::from_str(RUNTIME_LOCK).map_err(|e| SandboxError::Lock(e.to_string()))?;
    let ok = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if lock.componentize_py.wheel.is_empty()
        || !lock
            .componentize_py
            .wheel
            .iter()
            .all(|w| ok(&w.sha256) && w.file.ends_with(".whl"))
    {
        return Err(SandboxError::Lock(
            "every wheel needs a .whl file name and a 64-digit sha256".into(),
        ));
    }
    Ok(lock)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash of the guest inputs (lock, WIT, harness) that names the runtime directory.
pub fn inputs_hash() -> String {
    let mut h = Sha256::new();
    for part in [RUNTIME_LOCK, HARNESS_WIT, HARNESS_PY] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Where the runtime for this binary lives and what state it is in.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    /// `runtime-<inputs hash>` under the cache directory.
    pub dir: PathBuf,
    /// The pinned componentize-py version.
    pub componentize_py: String,
    /// The built component.
    pub component: PathBuf,
    /// Its sha256 as recorded at build time, if built.
    pub component_sha256: Option<String>,
    /// The compiled component for this engine, if compiled.
    pub compiled: Option<PathBuf>,
}

/// The runtime directory for a configuration.
pub fn runtime_dir(config: &SandboxConfig) -> Result<PathBuf, SandboxError> {
    Ok(config
        .resolved_cache_dir()?
        .join(format!("runtime-{}", &inputs_hash()[..16])))
}

/// Describes the runtime without building anything (the compiled form's path depends on the
/// engine the sandbox configures from `config`).
pub fn info(config: &SandboxConfig) -> Result<RuntimeInfo, SandboxError> {
    let engine = &crate::engine::engine(config)?;
    let dir = runtime_dir(config)?;
    let component = dir.join("harness.wasm");
    let component_sha256 = std::fs::read_to_string(dir.join("harness.wasm.sha256"))
        .ok()
        .map(|s| s.trim().to_string());
    let compiled = compiled_path(&dir, engine);
    Ok(RuntimeInfo {
        componentize_py: lock()?.componentize_py.version,
        component_sha256,
        compiled: compiled.exists().then_some(compiled),
        component,
        dir,
    })
}

/// Checks that the built component matches the hash recorded when it was built.
pub fn verify(config: &SandboxConfig) -> Result<String, SandboxError> {
    let dir = runtime_dir(config)?;
    let wasm = dir.join("harness.wasm");
    let recorded = std::fs::read_to_string(dir.join("harness.wasm.sha256"))
        .map_err(|_| SandboxError::NotInstalled { dir: dir.clone() })?;
    let bytes = std::fs::read(&wasm).map_err(|e| SandboxError::io("read", &wasm, e))?;
    let actual = sha256_hex(&bytes);
    if actual != recorded.trim() {
        return Err(SandboxError::HashMismatch {
            what: wasm.display().to_string(),
            expected: recorded.trim().to_string(),
            actual,
        });
    }
    Ok(actual)
}

fn compiled_path(dir: &Path, engine: &Engine) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    // The compatibility hash covers the compiler settings; the serialized header also carries
    // the exact wasmtime version, and a mismatch makes `deserialize_file` fail and recompile.
    dir.join(format!(
        "harness-wasmtime{WASMTIME_MAJOR}-{:016x}.cwasm",
        h.finish()
    ))
}

fn progress(msg: &str) {
    tracing::info!(msg, "Sandbox runtime set-up.");
    eprintln!("verdict: {msg}");
}

/// Makes sure the runtime is installed and built (installing it when allowed), and returns
/// the compiled component for `engine`, compiling and caching it on first use, with whether it
/// came from the cache.
pub fn load(config: &SandboxConfig, engine: &Engine) -> Result<(Component, bool), SandboxError> {
    let dir = runtime_dir(config)?;
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let compiled = compiled_path(&dir, engine);
    let wasm_sha = match verify(config) {
        Ok(sha) => sha,
        Err(SandboxError::NotInstalled { .. }) if config.runtime.auto_install => {
            install(config)?;
            verify(config)?
        }
        Err(e) => return Err(e),
    };
    let stamp = compiled.with_extension("cwasm.source");
    if compiled.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == wasm_sha) {
        // SAFETY: the file was written by `Component::serialize` for an engine with the same
        // compatibility hash (part of its name), in a directory only verdict writes.
        match unsafe { Component::deserialize_file(engine, &compiled) } {
            Ok(c) => return Ok((c, true)),
            Err(e) => {
                tracing::warn!(error = %e, "Cached compiled component unusable; recompiling.")
            }
        }
    }
    progress("compiling the Python component for this machine (once; about 15 s)…");
    let start = std::time::Instant::now();
    let wasm = dir.join("harness.wasm");
    let component =
        Component::from_file(engine, &wasm).map_err(|e| SandboxError::wasm("compile", e))?;
    let bytes = component
        .serialize()
        .map_err(|e| SandboxError::wasm("serialize", e))?;
    write_atomic(&compiled, &bytes)?;
    write_atomic(&stamp, wasm_sha.as_bytes())?;
    progress(&format!(
        "compiled in {:.1} s, cached at {}",
        start.elapsed().as_secs_f64(),
        compiled.display()
    ));
    Ok((component, false))
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so a reader never
/// sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SandboxError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| SandboxError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| SandboxError::io("rename", path, e))
}

/// Runs a set-up command (pip, componentize-py), its output kept for the error when it fails.
pub fn run(cmd: &mut Command) -> Result<(), SandboxError> {
    let command = format!("{cmd:?}");
    tracing::debug!(%command, "Running a runtime set-up command.");
    let out = cmd.output().map_err(|e| SandboxError::Tool {
        command: command.clone(),
        status: format!("did not start: {e}"),
        stderr: String::new(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = stderr
        .chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(SandboxError::Tool {
        command,
        status: out.status.to_string(),
        stderr: tail,
    })
}

/// The componentize-py executable, installed (pinned, hash-checked by pip) into a virtual
/// environment under the cache directory on first use. The sandbox runtime and wasm verifier
/// plug-ins (`verdict plugin build`) are built with it.
pub fn componentize_py(config: &SandboxConfig) -> Result<PathBuf, SandboxError> {
    let lock = lock()?;
    let version = &lock.componentize_py.version;

    // The virtual environment depends only on the lock, so harness edits reuse it.
    let lock_hash = sha256_hex(RUNTIME_LOCK.as_bytes());
    let venv = config
        .resolved_cache_dir()?
        .join(format!("componentize-py-{version}-{}", &lock_hash[..16]))
        .join("venv");
    let bin = venv.join("bin");
    let tool = bin.join("componentize-py");
    if !tool.exists() {
        progress(&format!(
            "installing componentize-py {version} (pinned, hash-checked) into {}…",
            venv.display()
        ));
        run(Command::new(&config.runtime.python)
            .arg("-m")
            .arg("venv")
            .arg(&venv))?;
        let mut req = format!("componentize-py=={version}");
        for w in &lock.componentize_py.wheel {
            req.push_str(&format!(" \\\n    --hash=sha256:{}", w.sha256));
        }
        req.push('\n');
        let req_path = venv.with_file_name("requirements.txt");
        let parent = venv.parent().unwrap_or(&venv);
        std::fs::create_dir_all(parent).map_err(|e| SandboxError::io("create", &venv, e))?;
        std::fs::write(&req_path, req).map_err(|e| SandboxError::io("write", &req_path, e))?;
        run(Command::new(bin.join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--require-hashes", "--no-deps", "--only-binary=:all:", "-r"])
            .arg(&req_path))?;
    }

    Ok(tool)
}

/// Installs componentize-py (pinned, hash-checked by pip) into a virtual environment under the
/// runtime directory and builds the pre-initialized harness component. Idempotent.
pub fn install(config: &SandboxConfig) -> Result<PathBuf, SandboxError> {
    let dir = runtime_dir(config)?;
    if verify(config).is_ok() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| SandboxError::io("create", &dir, e))?;
    let tool = componentize_py(config)?;

    progress("building the sandbox component (CPython 3.14 + harness, pre-initialized)…");
    let start = std::time::Instant::now();
    let src = dir.join("src");
    let wit = src.join("wit");
    std::fs::create_dir_all(&wit).map_err(|e| SandboxError::io("create", &wit, e))?;
    for (path, text) in [
        (src.join("harness.py"), HARNESS_PY),
        (wit.join("harness.wit"), HARNESS_WIT),
    ] {
        std::fs::write(&path, text).map_err(|e| SandboxError::io("write", &path, e))?;
    }
    let out = dir.join(format!("harness.wasm.tmp{}", std::process::id()));
    run(Command::new(&tool)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "harness", "componentize", "-p"])
        .arg(&src)
        .arg("harness")
        .arg("-o")
        .arg(&out)
        .env_remove("PYTHONPATH")
        .current_dir(&dir))?;
    let bytes = std::fs::read(&out).map_err(|e| SandboxError::io("read", &out, e))?;
    let sha = sha256_hex(&bytes);
    std::fs::rename(&out, dir.join("harness.wasm"))
        .map_err(|e| SandboxError::io("rename", &out, e))?;
    write_atomic(&dir.join("harness.wasm.sha256"), sha.as_bytes())?;
    progress(&format!(
        "built {} ({:.1} MB, sha256 {}) in {:.1} s",
        dir.join("harness.wasm").display(),
        bytes.len() as f64 / 1e6,
        &sha[..16],
        start.elapsed().as_secs_f64()
    ));
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_parses_and_pins_hashes() {
        let lock = lock().unwrap();
        assert_eq!(lock.componentize_py.version, "0.25.1");
        assert!(lock.componentize_py.wheel.len() >= 2);
    }

    #[test]
    fn the_inputs_hash_covers_the_harness() {
        let h = inputs_hash();
        assert_eq!(h.len(), 64);
        assert!(HARNESS_PY.contains("class WitWorld"));
    }
}
