//! An in-process sandbox's parts (its behaviour, `Local::new` and `Local::run`, is the façade's,
//! in `lib.rs`): what one rollout's run reads.

use crate::calibrate::Baselines;
use crate::config::SandboxConfig;
use crate::pool::Pool;

/// An in-process sandbox: the instance pool and the calibrated baselines.
pub(crate) struct Local {
    pub(crate) config: SandboxConfig,
    pub(crate) pool: Pool,
    pub(crate) baselines: Baselines,
}
