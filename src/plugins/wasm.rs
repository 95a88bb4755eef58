//! WebAssembly plug-ins: a component exporting `verdict:plugin/verifier@0.1.0`
//! (`wit/plugin.wit`), run under wasmtime with fuel, memory and wall-time limits.
//!
//! Instances come from a pre-linked [`PluginPre`]. One that answered a call is kept for a later
//! one (up to [`MAX_CALLS_PER_INSTANCE`] calls): instantiating a componentize-py component and
//! its first call cost milliseconds, a later call tens of microseconds. A plug-in may thus keep
//! state (a cache) from one rollout to the next within an instance, never across a failure: a
//! call that traps or runs out of anything drops its instance. The limits, all per call:
//! - **fuel** (`fuel`, default [`DEFAULT_FUEL`]): wasm instructions, deterministic;
//! - **memory** (`memory_mb`, default [`DEFAULT_MEMORY_MB`]): growing linear memory past the
//!   cap traps at once;
//! - **time** (`timeout_ms`): an epoch deadline checked every [`EPOCH_TICK`]; the guest also
//!   yields to the async runtime at each tick, so a long call never holds a worker thread.
//!
//! The plug-in gets a WASI with no preopened directories, no environment, no network and
//! empty stdio. Whatever it returns is checked: a score outside [0, 1] or not finite, details
//! that are not a bounded JSON object, a string that is not UTF-8, a trap, running out of
//! fuel, memory or time — each becomes a clear error and the `error` outcome for that rollout.
//!
//! Compiling a component (a componentize-py one holds a whole CPython) takes seconds, so the
//! compiled form is cached under the sandbox cache directory, keyed by the component's sha256
//! and the engine's compatibility hash.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::{checked_verdict, parse_details, Input, PluginConfig};
use crate::rollout::Rollout;
use crate::sandbox::SandboxConfig;
use crate::verifiers::{Context, Verdict, Verifier};

#[allow(missing_docs, unreachable_pub, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/plugin.wit",
        world: "plugin",
        exports: { default: async },
    });
}

use bindings::exports::verdict::plugin::verifier;
pub use bindings::{Plugin, PluginPre};

/// The interface a plug-in must export (name and version).
pub const INTERFACE: &str = "verdict:plugin/verifier@0.1.0";

/// `wit/plugin.wit`, as this binary was built with it.
pub const PLUGIN_WIT: &str = include_str!("../../wit/plugin.wit");

/// Default fuel per call.
pub const DEFAULT_FUEL: u64 = 2_000_000_000;
/// Default linear-memory cap per call, in MiB.
pub const DEFAULT_MEMORY_MB: u64 = 256;
/// How often the epoch advances: the granularity of the time limit.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Largest string handed to a plug-in (completion, prompt, extra JSON) — longer ones are
/// refused before the call.
pub const MAX_INPUT_BYTES: usize = 8 << 20;

/// The engine all wasm plug-ins of the process share, with its epoch ticker.
fn engine() -> Result<&'static Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut c = Config::new();
            c.consume_fuel(true);
            c.epoch_interruption(true);
            c.memory_init_cow(true);
            c.max_wasm_stack(8 << 20);
            c.async_stack_size(10 << 20);
            let engine = Engine::new(&c).map_err(|e| format!("wasm engine: {e:#}"))?;
            let ticking = engine.clone();
            std::thread::Builder::new()
                .name("verdict-plugin-epoch".into())
                .spawn(move || loop {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                })
                .map_err(|e| format!("starting the epoch thread: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Growing memory past the cap traps at once (and says so), unlike the sandbox's limiter,
/// which lets the guest see a failed allocation: a plug-in has no business near its cap.
struct Limiter {
    max_bytes: usize,
    hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes || maximum.is_some_and(|m| desired > m) {
            self.hit = true;
            return Err(wasmtime::Error::msg("memory limit"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20 && maximum.is_none_or(|m| desired <= m))
    }
}

struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    deadline: Instant,
    timed_out: bool,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// An instance that answered its calls so far, kept for the next.
struct Instance {
    store: Store<CallState>,
    plugin: Plugin,
    calls: u64,
}

/// Calls one instance serves before it is replaced by a fresh one.
pub const MAX_CALLS_PER_INSTANCE: u64 = 1000;
/// Idle instances kept per plug-in.
const MAX_IDLE: usize = 64;

/// A loaded wasm plug-in: the compiled component, linked once, and its idle instances.
pub struct WasmPlugin {
    name: &'static str,
    path: PathBuf,
    pre: PluginPre<CallState>,
    idle: std::sync::Mutex<Vec<Instance>>,
    fuel: u64,
    memory_bytes: usize,
    timeout: Duration,
}

impl std::fmt::Debug for WasmPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPlugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WasmPlugin {
    /// Load (compile, or read the cached compiled form of) the component at `path` and check
    /// that it exports [`INTERFACE`].
    pub fn load(
        name: &'static str,
        path: &Path,
        config: &PluginConfig,
        sandbox: &SandboxConfig,
    ) -> Result<WasmPlugin, String> {
        let engine = engine()?;
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let component = compile_cached(engine, &bytes, sandbox)
            .map_err(|e| format!("{} is not a usable component: {e}", path.display()))?;
        check_interface(engine, &component).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut linker = Linker::<CallState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| format!("linking WASI: {e:#}"))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| format!("{}: cannot link its imports: {e:#}", path.display()))?;
        let pre = PluginPre::new(pre).map_err(|e| format!("{}: {e:#}", path.display()))?;
        let memory_mb = config.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        Ok(WasmPlugin {
            name,
            path: path.to_path_buf(),
            pre,
            idle: std::sync::Mutex::new(Vec::new()),
            fuel: config.fuel.unwrap_or(DEFAULT_FUEL),
            memory_bytes: usize::try_from(memory_mb << 20).unwrap_or(usize::MAX),
            timeout: config.timeout(),
        })
    }

    /// A verifier of this plug-in with a step's settings.
    pub fn verifier(self: &Arc<Self>, settings: Map<String, Value>) -> WasmVerifier {
        WasmVerifier {
            plugin: Arc::clone(self),
            settings: Value::Object(settings).to_string(),
        }
    }

    /// Run the plug-in on one input in a fresh instance.
    pub async fn call(&self, settings: &str, input: &Input) -> Verdict {
        match self.run(settings, input).await {
            Ok(verdict) => verdict,
            Err(message) => Verdict::error(format!("wasm plug-in `{}`: {message}", self.name)),
        }
    }

    /// A fresh instance, made within this plug-in's limits.
    async fn instantiate(&self) -> Result<Instance, String> {
        let engine = engine()?;
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(
            engine,
            CallState {
                wasi,
                table: ResourceTable::new(),
                limiter: Limiter {
                    max_bytes: self.memory_bytes,
                    hit: false,
                },
                deadline: Instant::now() + self.timeout,
                timed_out: false,
            },
        );
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(self.fuel)
            .map_err(|e| format!("setting fuel: {e:#}"))?;
        store.epoch_deadline_callback(|mut ctx| {
            if Instant::now() >= ctx.data().deadline {
                ctx.data_mut().timed_out = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        match self.pre.instantiate_async(&mut store).await {
            Ok(plugin) => Ok(Instance {
                store,
                plugin,
                calls: 0,
            }),
            Err(e) => Err(format!(
                "instantiating: {}",
                self.describe_failure(&store, &e)
            )),
        }
    }

    async fn run(&self, settings: &str, input: &Input) -> Result<Verdict, String> {
        let (rollout, findings) = wire(input)?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.instantiate().await?,
        };
        // This call's limits: fresh fuel, a fresh deadline, the memory cap as it was.
        let store = &mut instance.store;
        store
            .set_fuel(self.fuel)
            .map_err(|e| format!("setting fuel: {e:#}"))?;
        let state = store.data_mut();
        state.deadline = Instant::now() + self.timeout;
        state.timed_out = false;
        state.limiter.hit = false;
        store.set_epoch_deadline(1);
        let outcome = instance
            .plugin
            .verdict_plugin_verifier()
            .call_verify(&mut instance.store, settings, &rollout, &findings)
            .await;
        let answer = match outcome {
            Ok(Ok(v)) => parse_details(&v.details).and_then(|d| checked_verdict(v.score, d)),
            Ok(Err(message)) => Err(format!(
                "the plug-in could not judge the rollout: {}",
                cap(&message, 500)
            )),
            // A trap leaves the instance unusable: it is dropped here.
            Err(e) => return Err(self.describe_failure(&instance.store, &e)),
        };
        instance.calls += 1;
        if instance.calls < MAX_CALLS_PER_INSTANCE {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(instance);
            }
        }
        answer
    }

    fn describe_failure(&self, store: &Store<CallState>, e: &wasmtime::Error) -> String {
        let state = store.data();
        if state.limiter.hit {
            return format!(
                "stopped: it tried to use more than its memory limit of {} MiB",
                self.memory_bytes >> 20
            );
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => {
                format!("stopped: it ran out of fuel ({} units)", self.fuel)
            }
            Some(Trap::Interrupt) => format!(
                "stopped: it ran past its time limit of {} ms",
                self.timeout.as_millis()
            ),
            _ if state.timed_out => format!(
                "stopped: it ran past its time limit of {} ms",
                self.timeout.as_millis()
            ),
            _ => format!("it failed: {}", cap(&format!("{e:#}"), 500)),
        }
    }
}

fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The WIT records for one input; refuses strings past [`MAX_INPUT_BYTES`].
fn wire(input: &Input) -> Result<(verifier::Rollout, verifier::Findings), String> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let r = input.rollout.as_object().cloned().unwrap_or_default();
    let defined = ["id", "problem_id", "prompt", "completion", "answer"];
    let extra: Map<String, Value> = r
        .iter()
        .filter(|(k, _)| !defined.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let rollout = verifier::Rollout {
        id: text(r.get("id")),
        problem_id: r
            .get("problem_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        prompt: text(r.get("prompt")),
        completion: text(r.get("completion")),
        answer: r.get("answer").and_then(Value::as_str).map(str::to_string),
        extra: Value::Object(extra).to_string(),
    };
    let count = |key: &str| {
        input
            .tests
            .as_ref()
            .and_then(|t| t.get(key))
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let findings = verifier::Findings {
        code: input.code.clone(),
        reasoning: input.reasoning.clone(),
        parse_class: input
            .parse
            .as_ref()
            .and_then(|p| p.get("class"))
            .and_then(Value::as_str)
            .map(str::to_string),
        tests_passed: count("passed"),
        tests_total: count("total"),
        tests: input.tests.as_ref().map(Value::to_string),
    };
    let total = rollout.prompt.len() + rollout.completion.len() + rollout.extra.len();
    if total > MAX_INPUT_BYTES {
        return Err(format!(
            "the rollout is {} MiB, more than the {} MiB a plug-in is given",
            total >> 20,
            MAX_INPUT_BYTES >> 20
        ));
    }
    Ok((rollout, findings))
}

/// Checks that the component exports [`INTERFACE`]; names the version it has otherwise.
fn check_interface(engine: &Engine, component: &Component) -> Result<(), String> {
    let ty = component.component_type();
    let names: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if names.iter().any(|n| n == INTERFACE) {
        return Ok(());
    }
    match names
        .iter()
        .find(|n| n.starts_with("verdict:plugin/verifier"))
    {
        Some(other) => Err(format!(
            "it exports `{other}`, but this verdict speaks `{INTERFACE}` (rebuild the plug-in \
             against wit/plugin.wit of this version)"
        )),
        None => Err(format!(
            "it does not export `{INTERFACE}` (it exports: {})",
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        )),
    }
}

/// Compile `bytes`, or load the compiled form cached for this engine.
fn compile_cached(
    engine: &Engine,
    bytes: &[u8],
    sandbox: &SandboxConfig,
) -> Result<Component, String> {
    use std::hash::{Hash, Hasher};
    // One compilation at a time in a process: configurations loaded together (tests, several
    // chains) that name the same component compile it once and read the cache after.
    static COMPILING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    let sha = hex::encode(Sha256::digest(bytes));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let dir = sandbox.resolved_cache_dir().map(|d| d.join("plugins")).ok();
    let cached = dir.as_ref().map(|d| {
        d.join(format!(
            "{}-wasmtime{}-{:016x}.cwasm",
            &sha[..32],
            crate::sandbox::runtime::WASMTIME_MAJOR,
            h.finish()
        ))
    });
    if let Some(path) = cached.as_ref().filter(|p| p.exists()) {
        // SAFETY: written below by `Component::serialize` for an engine with the same
        // compatibility hash (part of the name), from the component with this sha256, in a
        // directory only verdict writes; a version mismatch makes deserialize fail cleanly.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => return Ok(c),
            Err(e) => tracing::warn!(error = %e, "Cached compiled plug-in unusable; recompiling."),
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    if let (Some(dir), Some(path)) = (dir, cached) {
        let written = component.serialize().ok().and_then(|bytes| {
            std::fs::create_dir_all(&dir).ok()?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes).ok()?;
            std::fs::rename(&tmp, &path).ok()
        });
        if written.is_none() {
            tracing::warn!(path = %path.display(), "Could not cache the compiled plug-in.");
        }
    }
    Ok(component)
}

/// A step of a wasm plug-in kind.
pub struct WasmVerifier {
    plugin: Arc<WasmPlugin>,
    settings: String,
}

#[async_trait]
impl Verifier for WasmVerifier {
    fn kind(&self) -> &'static str {
        self.plugin.name
    }

    fn describe(&self) -> String {
        let p = &self.plugin;
        format!(
            "wasm fuel={} memory_mb={} timeout_ms={} {}",
            p.fuel,
            p.memory_bytes >> 20,
            p.timeout.as_millis(),
            self.settings
        )
    }

    async fn verify(&self, rollout: &Rollout, ctx: &mut Context) -> Verdict {
        let input = Input::new(rollout, ctx, &Map::new());
        self.plugin.call(&self.settings, &input).await
    }
}
