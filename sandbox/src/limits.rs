//! Per-instance state: the memory limiter, the deadline, and (in a judge's store) the candidate
//! it forwards to.

use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::engine::{Ended, Live};

/// Caps linear-memory growth and remembers whether the cap was hit, so a `MemoryError` (or the
/// trap that follows an allocation failure) can be reported as `memory_limit`.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    /// Most bytes of linear memory the instance may use.
    pub(crate) max_bytes: usize,
    /// Most table elements (generous; the interpreter's tables are fixed-size in practice).
    pub(crate) max_table_elements: usize,
    /// Set when a growth request was refused.
    pub(crate) hit: bool,
    /// Largest linear memory seen, in bytes.
    pub(crate) peak_bytes: usize,
}

impl MemoryLimiter {
    pub(crate) fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            max_table_elements: 1 << 20,
            hit: false,
            peak_bytes: 0,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes && maximum.is_none_or(|m| desired <= m);
        if allowed {
            self.peak_bytes = self.peak_bytes.max(desired);
        } else {
            self.hit = true;
            tracing::trace!(current, desired, "Memory growth refused.");
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements && maximum.is_none_or(|m| desired <= m))
    }
}

/// What a [`wasmtime::Store`] holds for one instance.
pub(crate) struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// Past this instant the epoch callback interrupts the guest.
    pub(crate) deadline: Instant,
    /// Set by the epoch callback when it interrupted the guest for the deadline.
    pub(crate) interrupted: bool,
    /// In a judge's store while it runs a test: the candidate its `peer.forward` reaches.
    pub(crate) peer: Option<Box<Peer>>,
}

/// The candidate instance as the judge's `forward` sees it during one test.
pub(crate) struct Peer {
    /// The candidate instance.
    pub(crate) live: Live,
    /// Set when a forwarded call ended the candidate (trap, exit, fuel, deadline).
    pub(crate) ended: Option<Ended>,
    /// Set when a request or an answer was larger than `limit`.
    pub(crate) refused: Option<String>,
    /// Operations forwarded so far (each costs the candidate a calibrated `serve` baseline).
    pub(crate) calls: u64,
    /// Most bytes of one request or answer.
    pub(crate) limit: usize,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut l = MemoryLimiter::new(64 << 20);
        assert!(l.memory_growing(0, 32 << 20, None).unwrap());
        assert!(!l.hit);
        assert!(!l.memory_growing(32 << 20, 65 << 20, None).unwrap());
        assert!(l.hit);
        assert_eq!(l.peak_bytes, 32 << 20);
    }
}
