//! What a plugin instance's store holds: its WASI context (no ambient authority), resource
//! table, memory limiter, watchdog, captured output and the capabilities it was granted.

use super::grants::EffectiveGrants;
use super::manifest::World;
use super::watchdog::Watchdog;
use crate::artifacts::ArtifactStore;
use crate::capability::{CapResult, CapabilityError};
use crate::hcc::CognitiveCache;
use crate::jobs::JobService;
use crate::journal::Journal;
use crate::llm::LanguageModel;
use crate::run_context::RunContext;
use crate::task::TaskService;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The capability services a plugin instance can reach. A missing service answers
/// `unavailable`; a service present but not granted answers `not-granted`.
#[derive(Clone, Default)]
pub struct HostServices {
    pub llm: Option<Arc<dyn LanguageModel>>,
    pub jobs: Option<Arc<dyn JobService>>,
    pub hcc: Option<Arc<dyn CognitiveCache>>,
    pub task: Option<Arc<dyn TaskService>>,
    pub run: Option<Arc<dyn RunContext>>,
    pub artifacts: Option<Arc<ArtifactStore>>,
    /// The run's journal: when set, what the plugin observes of concurrent operations (which
    /// are ready) is journaled and replayed too.
    pub journal: Option<Arc<Journal>>,
}

/// Identity and grants of a loaded plugin, shared by its instances.
#[derive(Debug)]
pub struct PluginIdentity {
    pub name: String,
    pub version: String,
    pub world: World,
    pub sha256: String,
    pub grants: EffectiveGrants,
}

/// Limits on host calls, from `[runtime]` in `sophon.toml`.
#[derive(Clone, Debug)]
pub struct HostCallLimits {
    /// Wall-clock limit of one awaited capability call (an LLM reply, a job submission).
    pub host_call_timeout: Duration,
    /// Largest log line a plugin may send; longer ones are cut.
    pub max_log_line_bytes: usize,
}

impl Default for HostCallLimits {
    fn default() -> Self {
        HostCallLimits {
            host_call_timeout: Duration::from_secs(600),
            max_log_line_bytes: 16 * 1024,
        }
    }
}

/// The data of one plugin instance's store.
pub struct PluginState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) watchdog: Watchdog,
    pub(crate) identity: Arc<PluginIdentity>,
    pub(crate) services: HostServices,
    pub(crate) limits: HostCallLimits,
    pub(crate) stderr: OutputCapture,
    /// Chat calls started and not yet collected or dropped.
    pub(crate) pending_llm_calls: u64,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl PluginState {
    /// The service behind `capability`, if this plugin was granted it and the run has one.
    pub(crate) fn service<S: ?Sized>(
        &self,
        capability: super::manifest::Capability,
        service: &Option<Arc<S>>,
    ) -> CapResult<Arc<S>> {
        if !self.identity.grants.has(capability) {
            return Err(CapabilityError::NotGranted(format!(
                "plugin `{}` was not granted capability `{capability}`: declare [capabilities.{capability}] \
                 in its plugin.toml and grant it under [plugins.{}.grants.{capability}] in sophon.toml",
                self.identity.name, self.identity.name
            )));
        }
        service.clone().ok_or_else(|| {
            CapabilityError::Unavailable(format!(
                "this run has no `{capability}` service configured for plugin `{}`",
                self.identity.name
            ))
        })
    }
}

/// How long one awaited host call may take: the host-call timeout, cut for a strategy to the
/// time left in its run, so that nothing a strategy waits on (an LLM reply, a promotion at
/// `hcc.end-phase`) outlives the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CallDeadline {
    pub(crate) limit: Duration,
    /// The limit is the run's remaining time, not the host-call timeout.
    pub(crate) run_ends: bool,
}

impl CallDeadline {
    fn timeout(&self, what: &str) -> CapabilityError {
        CapabilityError::Timeout(if self.run_ends {
            format!(
                "{what} did not finish within the {} s left in the run (its wall-clock \
                 budget): the run is ending",
                crate::units::seconds(self.limit)
            )
        } else {
            format!(
                "{what} did not finish within the host-call timeout of {} s \
                 (runtime.host-call-timeout-secs)",
                crate::units::seconds(self.limit)
            )
        })
    }
}

impl PluginState {
    /// The deadline of an awaited host call starting now: min(host-call timeout, time left in
    /// the run) for a strategy in a run with a wall-clock budget, else the host-call timeout.
    pub(crate) fn deadline(&self) -> CallDeadline {
        let timeout = self.limits.host_call_timeout;
        let run_left = match (&self.services.run, self.identity.world) {
            (Some(run), World::Strategy) => run.time_left(),
            _ => None,
        };
        match run_left {
            Some(left) if left < timeout => CallDeadline {
                limit: left,
                run_ends: true,
            },
            _ => CallDeadline {
                limit: timeout,
                run_ends: false,
            },
        }
    }
}

/// Await `operation` on the capability `service` (if the plugin may use it) until `deadline`.
/// The shape of every awaited host call.
pub(crate) async fn call<S: ?Sized, T, Fut>(
    service: CapResult<Arc<S>>,
    deadline: CallDeadline,
    what: &str,
    operation: impl FnOnce(Arc<S>) -> Fut,
) -> CapResult<T>
where
    Fut: Future<Output = CapResult<T>>,
{
    bounded(deadline, what, operation(service?)).await
}

/// Cut `text` to at most `limit` bytes at a character boundary, marking the cut.
pub(crate) fn truncate_marked(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" [truncated]");
    }
    text
}

/// Await `operation` until `deadline`; an operation that is ready at once succeeds even when
/// no time is left.
pub(crate) async fn bounded<T>(
    deadline: CallDeadline,
    what: &str,
    operation: impl Future<Output = CapResult<T>>,
) -> CapResult<T> {
    match tokio::time::timeout(deadline.limit, operation).await {
        Ok(result) => result,
        Err(_) => Err(deadline.timeout(what)),
    }
}

/// Caps a store's linear memories and tables; remembers whether a cap was hit so the error can
/// say so. A refused growth makes `memory.grow` fail (the guest may handle it; Rust guests
/// abort, which traps).
pub struct MemoryLimiter {
    pub(crate) memory_limit: usize,
    pub(crate) exceeded: Option<usize>,
}

const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.exceeded = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// A plugin's stdout or stderr: the tail is kept for error reports, complete lines are
/// forwarded to the host log until a byte budget is spent. Writes never fail or block, so a
/// plugin printing gigabytes costs only the CPU to discard them.
#[derive(Clone)]
pub struct OutputCapture {
    inner: Arc<Mutex<Captured>>,
    /// Something was written since the tail was last cleared (checked without the lock).
    dirty: Arc<AtomicBool>,
}

struct Captured {
    plugin: String,
    stream: &'static str,
    tail: VecDeque<u8>,
    line: Vec<u8>,
    forwarded: usize,
}

const TAIL_BYTES: usize = 16 * 1024;
const FORWARD_BYTES: usize = 64 * 1024;
const MAX_LINE: usize = 4 * 1024;

impl OutputCapture {
    pub fn new(plugin: &str, stream: &'static str) -> Self {
        OutputCapture {
            inner: Arc::new(Mutex::new(Captured {
                plugin: plugin.to_string(),
                stream,
                tail: VecDeque::with_capacity(1024),
                line: Vec::new(),
                forwarded: 0,
            })),
            dirty: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The last bytes written (at most 16 KiB), lossily decoded.
    pub fn tail(&self) -> String {
        let inner = self.inner.lock().unwrap();
        let (a, b) = inner.tail.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Forget the tail (between calls, so an error shows only its own call's output).
    pub fn clear_tail(&self) {
        if self.dirty.swap(false, Ordering::AcqRel) {
            self.inner.lock().unwrap().tail.clear();
        }
    }

    fn write(&self, buf: &[u8]) {
        self.dirty.store(true, Ordering::Release);
        let mut inner = self.inner.lock().unwrap();
        let keep = &buf[buf.len().saturating_sub(TAIL_BYTES)..];
        let overflow = (inner.tail.len() + keep.len()).saturating_sub(TAIL_BYTES);
        inner.tail.drain(..overflow);
        inner.tail.extend(keep);
        if inner.forwarded >= FORWARD_BYTES {
            return;
        }
        for &byte in buf {
            if byte == b'\n' || inner.line.len() >= MAX_LINE {
                let line = String::from_utf8_lossy(&inner.line).into_owned();
                inner.forwarded += line.len() + 1;
                tracing::debug!(plugin = %inner.plugin, stream = inner.stream, "{line}");
                inner.line.clear();
                if inner.forwarded >= FORWARD_BYTES {
                    tracing::warn!(
                        plugin = %inner.plugin,
                        stream = inner.stream,
                        "plugin output over {FORWARD_BYTES} bytes; the rest is not logged"
                    );
                    return;
                }
                if byte == b'\n' {
                    continue;
                }
            }
            inner.line.push(byte);
        }
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for OutputCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
