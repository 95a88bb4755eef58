//! The embedded reward server: a `verdict serve` child process on a free local port, stopped
//! when the handle is dropped (at the end of the run, on an error, or after ctrl-c stops the
//! loop).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Why the local server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No `verdict` binary was found.
    #[error(
        "no `verdict` binary found (looked at {}); build it with `cargo build --bin verdict`, \
         point VERDICT_BIN or grpo.reward.verdict_bin at it, or pass --reward-endpoint",
        .looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        /// The places searched, in order.
        looked: Vec<PathBuf>,
    },
    /// The process could not be spawned.
    #[error("cannot start {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The process exited or stayed silent instead of printing its address.
    #[error("`{bin} serve` did not start: {why}; its log ({log}) ends with:\n{tail}")]
    NotListening {
        /// The binary.
        bin: PathBuf,
        /// What happened.
        why: String,
        /// Where its stderr went.
        log: PathBuf,
        /// The end of that log.
        tail: String,
    },
}

/// Where to look for the `verdict` binary, in order: the configured path, `$VERDICT_BIN`,
/// `verdict` beside the current executable, then one directory up (cargo puts test binaries
/// in `target/<profile>/deps`).
pub fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(path) = configured {
        out.push(path.to_path_buf());
    }
    if let Some(env) = std::env::var_os("VERDICT_BIN") {
        out.push(PathBuf::from(env));
    }
    if let Ok(exe) = std::env::current_exe() {
        let name = format!("verdict{}", std::env::consts::EXE_SUFFIX);
        if let Some(dir) = exe.parent() {
            out.push(dir.join(&name));
            if let Some(up) = dir.parent() {
                out.push(up.join(&name));
            }
        }
    }
    out
}

/// The first candidate that is a file. A configured path or `$VERDICT_BIN` that does not exist
/// is an error rather than silently falling through to another binary.
pub fn find_verdict(configured: Option<&Path>) -> Result<PathBuf, ServerError> {
    let looked = candidates(configured);
    let explicit =
        usize::from(configured.is_some()) + usize::from(std::env::var_os("VERDICT_BIN").is_some());
    for (i, path) in looked.iter().enumerate() {
        if path.is_file() {
            return Ok(path.clone());
        }
        if i < explicit {
            break;
        }
    }
    Err(ServerError::NotFound { looked })
}

/// A running `verdict serve`; killed (and reaped) on drop.
#[derive(Debug)]
pub struct LocalServer {
    child: Child,
    addr: String,
}

impl LocalServer {
    /// Start `bin serve --addr 127.0.0.1:0` (with `--config` where given), its stderr going to
    /// `log`, and wait up to `wait` for the `listening on ADDR` line.
    pub fn start(
        bin: &Path,
        config: Option<&Path>,
        log: &Path,
        wait: Duration,
    ) -> Result<Self, ServerError> {
        let stderr = std::fs::File::create(log).map_err(|source| ServerError::Spawn {
            bin: bin.to_path_buf(),
            source,
        })?;
        let mut command = Command::new(bin);
        command
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command.spawn().map_err(|source| ServerError::Spawn {
            bin: bin.to_path_buf(),
            source,
        })?;
        let stdout = child.stdout.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let Some(stdout) = stdout else { return };
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                    break;
                }
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let not_listening = |child: &mut Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            ServerError::NotListening {
                bin: bin.to_path_buf(),
                why,
                log: log.to_path_buf(),
                tail: log_tail(log, 2000),
            }
        };
        match rx.recv_timeout(wait) {
            Ok(addr) => {
                tracing::info!(%addr, bin = %bin.display(), "Started a local verdict serve.");
                Ok(Self { child, addr })
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(not_listening(
                &mut child,
                format!("no address printed within {wait:?}"),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map_or("closed its stdout".to_string(), |s| format!("exited ({s})"));
                Err(not_listening(&mut child, status))
            }
        }
    }

    /// `http://ADDR` of the server.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        tracing::info!(addr = %self.addr, "Stopped the local verdict serve.");
    }
}

/// The last `max` bytes of a file, lossily decoded.
fn log_tail(path: &Path, max: usize) -> String {
    let mut text = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_end(&mut text);
    }
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_configured_binary_is_a_clear_error() {
        let err = find_verdict(Some(Path::new("/nonexistent/verdict"))).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/nonexistent/verdict"), "{message}");
        assert!(message.contains("--reward-endpoint"), "{message}");
    }

    #[test]
    fn a_process_that_exits_at_once_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-verdict");
        std::fs::write(
            &script,
            "#!/bin/sh\necho 'runtime not installed' >&2\nexit 3\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let log = dir.path().join("serve.log");
        let err = LocalServer::start(&script, None, &log, Duration::from_secs(20)).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("runtime not installed"), "{message}");
        assert!(
            message.contains("exited") || message.contains("closed"),
            "{message}"
        );
    }

    #[test]
    fn the_server_is_killed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-verdict");
        // Prints the line a real server prints, then would run forever.
        std::fs::write(
            &script,
            "#!/bin/sh\necho 'listening on 127.0.0.1:9'\nexec sleep 600\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let server = LocalServer::start(
            &script,
            None,
            &dir.path().join("l"),
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(server.endpoint(), "http://127.0.0.1:9");
        let proc = PathBuf::from(format!("/proc/{}", server.pid()));
        assert!(proc.exists());
        drop(server);
        assert!(!proc.exists(), "the child was killed and reaped");
    }
}
