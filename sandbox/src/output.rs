//! [`TestOutput`]: the WASI stdout (or stderr) of an instance, captured per test with a cap.
//!
//! The host empties it and sets the cap before each test ([`TestOutput::begin`]). A write past
//! the cap traps the guest ("write beyond capacity"), which stops an output flood at the cap
//! rather than after it has filled host memory; the host reports it as `output_limit`.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The message of the trap raised by a write past the cap.
pub(crate) const OVERFLOW: &str = "write beyond capacity";

#[derive(Default)]
struct Captured {
    bytes: BytesMut,
    cap: usize,
    /// A write was refused: the test tried to write past the cap. Output of exactly `cap`
    /// bytes is within it.
    overflowed: bool,
}

/// Captured output of the current test. Clones share the buffer.
#[derive(Clone, Default)]
pub(crate) struct TestOutput {
    inner: Arc<Mutex<Captured>>,
}

impl TestOutput {
    /// Starts a test: drops what earlier tests wrote and caps this one at `cap` bytes.
    pub(crate) fn begin(&self, cap: usize) {
        let mut inner = self.lock();
        inner.bytes.clear();
        inner.cap = cap;
        inner.overflowed = false;
    }

    /// Whether the current test tried to write past the cap.
    pub(crate) fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// What the current test has written so far.
    pub(crate) fn contents(&self) -> Bytes {
        Bytes::copy_from_slice(&self.lock().bytes)
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl IsTerminal for TestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for TestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for TestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        let mut inner = self.lock();
        if bytes.len() > inner.cap.saturating_sub(inner.bytes.len()) {
            // Keep what fits, so the host sees the cap reached.
            let room = inner.cap.saturating_sub(inner.bytes.len());
            inner.bytes.extend_from_slice(&bytes[..room]);
            inner.overflowed = true;
            return Err(StreamError::trap(OVERFLOW));
        }
        inner.bytes.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let inner = self.lock();
        // Always offer at least one byte: a write past the cap must reach `write` and trap,
        // rather than leave the guest waiting on a stream that never becomes writable.
        Ok(inner.cap.saturating_sub(inner.bytes.len()).max(1))
    }
}

#[async_trait::async_trait]
impl Pollable for TestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for TestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut inner = self.lock();
        let room = inner.cap.saturating_sub(inner.bytes.len());
        if room == 0 && !buf.is_empty() {
            inner.overflowed = true;
            return Poll::Ready(Err(std::io::Error::other(OVERFLOW)));
        }
        let n = buf.len().min(room);
        inner.overflowed |= n < buf.len();
        inner.bytes.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_test_is_captured_alone_and_capped() {
        let out = TestOutput::default();
        let mut stream = out.p2_stream();
        out.begin(8);
        stream.write(Bytes::from_static(b"hello ")).unwrap();
        assert!(matches!(
            stream.write(Bytes::from_static(b"world")),
            Err(StreamError::Trap(e)) if e.to_string().contains(OVERFLOW)
        ));
        assert_eq!(&out.contents()[..], b"hello wo");
        assert!(out.overflowed());
        out.begin(8);
        assert!(out.contents().is_empty() && !out.overflowed());
        // Exactly the cap is within it.
        stream.write(Bytes::from_static(b"12345678")).unwrap();
        assert!(!out.overflowed());
        out.begin(8);
        stream.write(Bytes::from_static(b"next")).unwrap();
        assert_eq!(&out.contents()[..], b"next");
    }
}
