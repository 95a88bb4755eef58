//! Randomness and clocks that depend only on the job, so the same rollout gets the same verdict
//! on every run, in any order, in any mode: WASI `random` (behind `os.urandom`, `secrets`,
//! `uuid.uuid4`, `random.SystemRandom`) is a ChaCha stream seeded from the job's seed, and both
//! WASI clocks (behind `time.time`, `time.monotonic`, `time.perf_counter`, `datetime.now`) start
//! at a fixed instant and advance one microsecond per reading. Both restart at every test
//! ([`Entropy::reset`]), so a test sees the same values whatever ran before it.
//!
//! Wall-clock limits are the host's own business (epochs, `Instant`), never these clocks; a
//! program that waits for its clock to pass a point is waiting on its own readings, and its fuel
//! runs out.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{SeedableRng as _, TryRng};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// 2025-01-01T00:00:00Z, in seconds since the Unix epoch: where the wall clock starts.
const WALL_START_SECS: u64 = 1_735_689_600;

/// How far each clock reading advances the clocks, in nanoseconds.
const TICK_NS: u64 = 1_000;

/// The job's randomness and clocks; clones share them (one per instance).
#[derive(Clone)]
pub(crate) struct Entropy {
    rng: Arc<Mutex<StdRng>>,
    readings: Arc<AtomicU64>,
}

impl Default for Entropy {
    fn default() -> Self {
        Entropy {
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(0))),
            readings: Arc::default(),
        }
    }
}

impl Entropy {
    /// Restarts the random stream from `seed` and both clocks from their start.
    pub(crate) fn reset(&self, seed: u64) {
        *self.rng.lock().unwrap_or_else(PoisonError::into_inner) = StdRng::seed_from_u64(seed);
        self.readings.store(0, Ordering::Relaxed);
    }

    /// Nanoseconds since the clocks started: one tick per reading so far.
    fn elapsed_ns(&self) -> u64 {
        self.readings
            .fetch_add(1, Ordering::Relaxed)
            .saturating_mul(TICK_NS)
    }
}

impl TryRng for Entropy {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_fill_bytes(dst)
    }
}

impl HostWallClock for Entropy {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(TICK_NS)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(WALL_START_SECS) + Duration::from_nanos(self.elapsed_ns())
    }
}

impl HostMonotonicClock for Entropy {
    fn resolution(&self) -> u64 {
        TICK_NS
    }

    fn now(&self) -> u64 {
        self.elapsed_ns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_replays_the_same_stream_and_clocks() {
        let mut e = Entropy::default();
        e.reset(7);
        let a: Vec<u64> = (0..4).map(|_| e.try_next_u64().unwrap()).collect();
        let t0 = HostMonotonicClock::now(&e);
        let w = HostWallClock::now(&e);
        e.reset(7);
        let b: Vec<u64> = (0..4).map(|_| e.try_next_u64().unwrap()).collect();
        assert_eq!(a, b);
        assert_eq!(HostMonotonicClock::now(&e), t0);
        assert_eq!(HostWallClock::now(&e), w);
        assert_eq!(
            w,
            Duration::from_secs(WALL_START_SECS) + Duration::from_nanos(TICK_NS)
        );
        e.reset(8);
        assert_ne!(e.try_next_u64().unwrap(), a[0]);
        // The clocks only move forward between resets.
        let (x, y) = (HostMonotonicClock::now(&e), HostMonotonicClock::now(&e));
        assert!(y > x);
    }
}
