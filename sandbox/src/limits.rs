//! The memory limiter of an instance: caps linear-memory growth and remembers a hit.

use wasmtime::ResourceLimiter;

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
