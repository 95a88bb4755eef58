//! Calibration and the self-test: the fuel the harness itself burns for an empty program (so
//! that a test's fuel is the candidate's own work), and one full run of every test kind before
//! a sandbox is handed out.

use std::time::{Duration, Instant};

use crate::engine::{InstanceLimits, Live, Status};
use crate::error::SandboxError;
use crate::pool::Pool;
use verdict_contract::rollout::TestCase;

/// The kinds of test, for fuel baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestKind {
    Assert,
    Stdio,
    Call,
}

impl TestKind {
    pub(crate) fn of(test: &TestCase) -> TestKind {
        match test {
            TestCase::Assert { .. } | TestCase::Suite { .. } => TestKind::Assert,
            TestCase::Stdio { .. } => TestKind::Stdio,
            TestCase::Call { .. } => TestKind::Call,
        }
    }
}

/// Fuel the candidate instance burns on harness work alone: loading an empty program, as a
/// module or as `__main__`, and the least any operation can cost. A test's fuel is what its
/// candidate instance burnt minus its kind's load baseline and one operation floor per
/// operation served (the same on every run: fuel is deterministic).
///
/// The floor is a lower bound, never the honest harness's cost: it is what `serve` costs when
/// the candidate's harness is patched to answer at once with a constant (the cheapest codec
/// there is), so no patched fast path can make an operation cheaper than what is subtracted
/// for it, and no work of the program hides behind it. An honest operation costs more than the
/// floor (decoding the request, encoding the answer): that difference is charged to the
/// program (PROTOCOL.md, "Fuel").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Baselines {
    /// `load` of an empty program as a module (assert and call tests).
    pub load_module: u64,
    /// `load` of an empty program as `__main__` (stdio tests).
    pub load_main: u64,
    /// `serve` of one operation by a harness patched to answer a constant at once.
    pub call: u64,
    /// `serve` of a call of `def f(): pass` by the honest harness (for the record: what an
    /// honest operation costs beyond the floor is `honest_call - call`).
    pub honest_call: u64,
}

impl Baselines {
    /// The harness's share of a test of `kind` that served `calls` operations.
    pub(crate) fn of(&self, kind: TestKind, calls: u64) -> u64 {
        let load = match kind {
            TestKind::Stdio => self.load_main,
            TestKind::Assert | TestKind::Call => self.load_module,
        };
        load.saturating_add(self.call.saturating_mul(calls))
    }
}

const CALIBRATION_FUEL: u64 = 1 << 40;

fn bad(what: &str) -> SandboxError {
    SandboxError::Config(format!("the runtime failed its self-test ({what})"))
}

async fn load_empty(live: &mut Live, main: bool) -> Result<u64, SandboxError> {
    live.begin("", CALIBRATION_FUEL, 0)?;
    let loaded = live
        .load("", "", main, 0)
        .await
        .map_err(|e| bad(&e.describe()))?;
    if !matches!(loaded.status, Status::Ok) {
        return Err(bad("loading an empty program"));
    }
    Ok(live.fuel_used())
}

/// Measures the baselines on a fresh instance.
pub(crate) async fn measure(pool: &Pool) -> Result<Baselines, SandboxError> {
    let mut live = pool.fresh().await?;
    live.configure(InstanceLimits {
        memory_bytes: 256 << 20,
        output_bytes: 1 << 20,
        deadline: Instant::now() + Duration::from_secs(60),
    });
    let load_module = load_empty(&mut live, false).await?;
    let load_main = load_empty(&mut live, true).await?;
    live.begin("", CALIBRATION_FUEL, 0)?;
    let loaded = live
        .load("def f(): pass", "", false, 0)
        .await
        .map_err(|e| bad(&e.describe()))?;
    if !matches!(loaded.status, Status::Ok) {
        return Err(bad("loading `def f(): pass`"));
    }
    live.begin("", CALIBRATION_FUEL, 0)?;
    let reply = live
        .serve(
            &crate::request::call("f", &[]).map_err(|e| bad(&e))?,
            1 << 20,
        )
        .await
        .map_err(|e| bad(&e.describe()))?;
    if reply != r#"{"ok":null,"args":[]}"# && reply != r#"{"ok":null}"# {
        return Err(bad(&format!("calling an empty function answered {reply}")));
    }
    let honest_call = live.fuel_used();
    let call = floor(pool).await?;
    Ok(Baselines {
        load_module,
        load_main,
        call: call.min(honest_call),
        honest_call,
    })
}

/// A program that patches its own harness to answer every operation with a constant.
const FLOOR_PROGRAM: &str = r#"import sys
for _m in list(sys.modules.values()):
    if getattr(_m, '_call_test', None) is not None and hasattr(_m, 'WitWorld'):
        _m.WitWorld.serve = lambda self, request, limit: '{"ok":null}'
"#;

/// The least one operation can cost: `serve` on a harness patched to answer at once.
async fn floor(pool: &Pool) -> Result<u64, SandboxError> {
    let mut live = pool.fresh().await?;
    live.configure(InstanceLimits {
        memory_bytes: 256 << 20,
        output_bytes: 1 << 20,
        deadline: Instant::now() + Duration::from_secs(60),
    });
    live.begin("", CALIBRATION_FUEL, 0)?;
    let loaded = live
        .load(FLOOR_PROGRAM, "", false, 0)
        .await
        .map_err(|e| bad(&e.describe()))?;
    if !matches!(loaded.status, Status::Ok) {
        return Err(bad("loading the floor program"));
    }
    live.begin("", CALIBRATION_FUEL, 0)?;
    let reply = live
        .serve(r#"["next",{"global":"f"}]"#, 1 << 20)
        .await
        .map_err(|e| bad(&e.describe()))?;
    if reply != r#"{"ok":null}"# {
        return Err(bad(&format!("the patched harness answered {reply}")));
    }
    Ok(live.fuel_used())
}
