//! [`TestStdin`]: the WASI stdin of an instance, refilled by the host before each test.
//!
//! All tests of a rollout run in one instance, so stdin cannot be fixed when the instance is
//! created. Every stream the guest opens on stdin shares one buffer; the host replaces its
//! contents before each test (the rest of the previous test's input is discarded), and the
//! stream reports end-of-file when the buffer is empty. Reads through fd 0 therefore see the
//! current test's input whatever the program uses: `input()`, `sys.stdin`, `sys.stdin.buffer`,
//! `open(0)` or `os.read(0, n)`.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError};

/// A stdin whose contents the host sets per test. Clones share the buffer.
#[derive(Clone, Default)]
pub(crate) struct TestStdin {
    buffer: Arc<Mutex<Bytes>>,
}

impl TestStdin {
    /// Replaces whatever is left with `input`.
    pub(crate) fn set(&self, input: &str) {
        *self.lock() = Bytes::copy_from_slice(input.as_bytes());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bytes> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, max: usize) -> Bytes {
        let mut buffer = self.lock();
        let n = max.min(buffer.len());
        buffer.split_to(n)
    }
}

impl IsTerminal for TestStdin {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for TestStdin {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl InputStream for TestStdin {
    fn read(&mut self, size: usize) -> Result<Bytes, StreamError> {
        let chunk = self.take(size);
        if chunk.is_empty() && size > 0 {
            // End of this test's input. The stream stays usable: the next test refills it.
            return Err(StreamError::Closed);
        }
        Ok(chunk)
    }
}

#[async_trait::async_trait]
impl Pollable for TestStdin {
    async fn ready(&mut self) {}
}

impl AsyncRead for TestStdin {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let chunk = self.take(buf.remaining());
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_test_sees_only_its_own_input() {
        let stdin = TestStdin::default();
        let mut stream = stdin.p2_stream();
        stdin.set("1 2\n3\n");
        assert_eq!(&stream.read(4).unwrap()[..], b"1 2\n");
        // The program stopped reading; the next test's input replaces the rest.
        stdin.set("9\n");
        assert_eq!(&stream.read(100).unwrap()[..], b"9\n");
        assert!(matches!(stream.read(100), Err(StreamError::Closed)));
        // End of input is not final: a refill is readable again.
        stdin.set("x");
        assert_eq!(&stream.read(100).unwrap()[..], b"x");
    }
}
