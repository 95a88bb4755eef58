//! The instance pool of an in-process sandbox: the engine, the pre-linked component, the slots
//! that cap how many interpreters are alive at once, and instances made ahead of demand.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::Engine;

use crate::config::SandboxConfig;
use crate::engine::RunState;
use crate::engine::{self, HarnessPre, Live, Ticker};
use crate::error::SandboxError;
use crate::runtime;

/// Fresh instances of the harness, for either role.
pub(crate) struct Pool {
    engine: Engine,
    pre: Arc<HarnessPre<RunState>>,
    /// One permit per interpreter alive in a run.
    slots: Semaphore,
    /// Permits there are in all (`max_instances`).
    capacity: u32,
    /// Rollouts waiting for slots.
    waiting: AtomicUsize,
    /// How many instances to keep made ahead (`prewarm`).
    prewarm: usize,
    /// The made-ahead instances, never used.
    ready: Arc<Mutex<Vec<Live>>>,
    /// Instances being made for `ready` right now.
    refilling: Arc<AtomicUsize>,
    /// Whether taking a ready instance starts making the next one (else the owner calls
    /// [`Pool::refill`] when it is idle: a single-threaded worker process).
    refill_when_taken: bool,
    /// Whether the compiled component came from the cache (read by [`crate::SandboxLoad`]).
    component_cached: bool,
    _ticker: Ticker,
}

impl Pool {
    /// Loads (installing and compiling when needed) the component and starts the epoch ticker.
    pub(crate) fn new(
        config: &SandboxConfig,
        refill_when_taken: bool,
    ) -> Result<Pool, SandboxError> {
        let engine = engine::engine(config)?;
        let (component, component_cached) = runtime::load(config, &engine)?;
        let pre = Arc::new(engine::instance_pre(&engine, &component)?);
        let ticker = Ticker::start(engine.clone());
        Ok(Pool {
            engine,
            pre,
            slots: Semaphore::new(config.engine.max_instances as usize),
            capacity: config.engine.max_instances,
            waiting: AtomicUsize::new(0),
            prewarm: config.engine.prewarm as usize,
            ready: Arc::default(),
            refilling: Arc::default(),
            refill_when_taken,
            component_cached,
            _ticker: ticker,
        })
    }

    /// Waits for `n` interpreter slots (all the instances one rollout may hold at once, taken
    /// together so that concurrent rollouts cannot deadlock holding one each).
    pub(crate) async fn slots(&self, n: u32) -> SemaphorePermit<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self
            .slots
            .acquire_many(n.min(self.capacity))
            .await
            .expect("semaphore never closed");
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        permit
    }

    /// How many rollouts are waiting for slots.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// How many interpreter slots there are.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Whether the compiled component came from the cache.
    pub(crate) fn component_cached(&self) -> bool {
        self.component_cached
    }

    /// How many interpreter slots are in use.
    pub(crate) fn in_use(&self) -> usize {
        (self.capacity as usize).saturating_sub(self.slots.available_permits())
    }

    /// How many instances are ready, made ahead of demand.
    pub(crate) fn ready(&self) -> usize {
        self.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// A never-used instance: one made ahead of demand when there is one, else a new one.
    /// Either way the made-ahead instances are topped up in the background.
    pub(crate) async fn fresh(&self) -> Result<Live, SandboxError> {
        let ready = self
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if self.refill_when_taken {
            self.refill();
        }
        match ready {
            Some(live) => Ok(live),
            None => Live::new(&self.engine, &self.pre).await,
        }
    }

    /// Starts making instances in the background until `prewarm` are ready or being made.
    /// Needs a tokio runtime; without one (or with `prewarm = 0`) nothing is made ahead.
    pub(crate) fn refill(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        loop {
            let ready = self.ready();
            let making = self.refilling.load(Ordering::Acquire);
            if ready + making >= self.prewarm {
                return;
            }
            if self
                .refilling
                .compare_exchange(making, making + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let making = Making(Arc::clone(&self.refilling));
            let (engine, pre, ready) = (
                self.engine.clone(),
                Arc::clone(&self.pre),
                self.ready.clone(),
            );
            handle.spawn(async move {
                let _making = making;
                match Live::new(&engine, &pre).await {
                    Ok(live) => ready
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(live),
                    Err(e) => tracing::warn!(error = %e, "Making an instance ahead failed."),
                }
            });
        }
    }
}

/// One instance being made ahead; the count drops when it is done or abandoned (its runtime
/// shut down).
struct Making(Arc<AtomicUsize>);

impl Drop for Making {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
