//! `verdict plugin build`: a Python source file → a wasm plug-in component, with the same
//! componentize-py the sandbox runtime is built with (pinned and hash-checked in
//! `sandbox/runtime.lock`, installed into the cache directory on first use).
//!
//! The module must define a class `Verifier` with a method
//! `verify(self, settings, rollout, findings)` (see `wit/plugin.wit` and
//! `plugins/repetition/repetition.py`). Builds are cached under
//! `<cache>/plugin-builds/<hash>/`, keyed by the lock, the WIT and every `.py` file next to the
//! source, so building the same plug-in again is a copy.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::wasm::PLUGIN_WIT;
use crate::sandbox::runtime::{componentize_py, run, write_atomic, RUNTIME_LOCK};
use crate::sandbox::{SandboxConfig, SandboxError};

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// Where the component was written.
    pub output: PathBuf,
    /// Its sha256.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether it came from the build cache.
    pub cached: bool,
}

/// Build the Python plug-in `source` into the component `output`.
pub fn build_python(
    config: &SandboxConfig,
    source: &Path,
    output: &Path,
) -> Result<Built, SandboxError> {
    let not_python = || SandboxError::Tool {
        command: format!("verdict plugin build {}", source.display()),
        status: "refused".into(),
        stderr: "the source must be a Python file (NAME.py) whose name is a module name".into(),
    };
    let module = source
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .filter(|_| source.extension().is_some_and(|e| e == "py"))
        .ok_or_else(not_python)?;
    let dir = source
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let hash = inputs_hash(dir, module)?;
    let build_dir = config
        .resolved_cache_dir()?
        .join("plugin-builds")
        .join(&hash[..16]);
    let built = build_dir.join(format!("{module}.wasm"));
    let cached = built.exists();
    if !cached {
        let tool = componentize_py(config)?;
        let wit = build_dir.join("wit");
        std::fs::create_dir_all(&wit).map_err(|e| SandboxError::io("create", &wit, e))?;
        let wit_file = wit.join("plugin.wit");
        std::fs::write(&wit_file, PLUGIN_WIT)
            .map_err(|e| SandboxError::io("write", &wit_file, e))?;
        let tmp = build_dir.join(format!("{module}.wasm.tmp{}", std::process::id()));
        eprintln!(
            "verdict: building plug-in {} with componentize-py (CPython, pre-initialized)…",
            source.display()
        );
        run(Command::new(&tool)
            .arg("-d")
            .arg(&wit)
            .args(["-w", "plugin", "componentize", "-p"])
            .arg(dir)
            .arg(module)
            .arg("-o")
            .arg(&tmp)
            .env_remove("PYTHONPATH"))?;
        std::fs::rename(&tmp, &built).map_err(|e| SandboxError::io("rename", &built, e))?;
    }
    let bytes = std::fs::read(&built).map_err(|e| SandboxError::io("read", &built, e))?;
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| SandboxError::io("create", parent, e))?;
    }
    write_atomic(output, &bytes)?;
    Ok(Built {
        output: output.to_path_buf(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes: bytes.len() as u64,
        cached,
    })
}

/// The hash of what a build reads: the lock, the WIT, the module name and every `.py` file in
/// the source directory (names and contents, in name order).
fn inputs_hash(dir: &Path, module: &str) -> Result<String, SandboxError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SandboxError::io("read", dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "py") && p.is_file())
        .collect();
    files.sort();
    let mut h = Sha256::new();
    for part in [RUNTIME_LOCK, PLUGIN_WIT, module] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for file in files {
        let text = std::fs::read(&file).map_err(|e| SandboxError::io("read", &file, e))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(&text);
    }
    Ok(hex::encode(h.finalize()))
}
