//! # Sophon SDK for Rust plugins
//!
//! A Sophon plugin is a WebAssembly component that implements one of three worlds:
//! a search [`Strategy`], a competition [`TaskAdapter`], or a memory [`PromotionPolicy`].
//! Implement the trait on a type, export it with one macro, and describe the plugin in a
//! `plugin.toml` next to its `Cargo.toml` (the macro embeds it in the component):
//!
//! ```ignore
//! use sophon_sdk::{Strategy, Outcome, llm};
//!
//! struct Hello;
//!
//! impl Strategy for Hello {
//!     fn run(_config: String) -> Result<Outcome, String> {
//!         let reply = llm::chat(&llm::ChatRequest::user("Say hello"))?;
//!         Ok(Outcome { best_node: None, nodes: 0, summary: reply.text })
//!     }
//! }
//!
//! sophon_sdk::export_strategy!(Hello);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; load with `sophon plugin
//! inspect target/wasm32-wasip2/release/hello.wasm`. Host capabilities are in the modules
//! below ([`llm`], [`jobs`], [`hcc`], [`task`], [`run`], [`artifacts`]); [`rt`] runs several
//! host operations concurrently.
//!
//! A panic inside a plugin stops only the current call; its message reaches the host's error.

extern crate self as sophon_sdk;

/// One host call: the WIT import in a plugin (wasm32) build, the [`testing::MockHost`]
/// installed on the current thread in a native build (an author's `cargo test`).
macro_rules! host {
    ($wasm:expr, $mock:expr) => {{
        #[cfg(target_arch = "wasm32")]
        let answer = $wasm;
        #[cfg(not(target_arch = "wasm32"))]
        let answer = $mock;
        answer
    }};
}

pub mod artifacts;
pub mod bindings;
pub mod config;
mod error;
pub mod hcc;
pub mod jobs;
pub mod llm;
pub mod rt;
pub mod run;
pub mod task;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use error::{Error, ErrorKind, Result};
pub use futures;
/// `serde_json`, for parsing the JSON configs the host passes to plugins.
pub use serde;
pub use serde_json as json;

pub use bindings::host::sophon::host::types::{Artifact, Direction, LogLevel};
pub use bindings::promotion_policy::exports::sophon::plugin::promotion_policy_api::{
    PhaseTrace, RunTrace,
};
pub use bindings::strategy::exports::sophon::plugin::strategy_api::Outcome;
pub use bindings::task_adapter::exports::sophon::plugin::task_adapter_api::{
    GradeResult, TaskRequest,
};
pub use hcc::{KnowledgeUnit, TaskDescriptor, WisdomEntry};
pub use task::{TaskInfo, Validation};

/// A search strategy: the `sophon:plugin/strategy` world.
///
/// The host calls [`Strategy::run`] once per run. On resume it calls it again on a fresh
/// instance and replays every earlier host answer, so everything the strategy does must follow
/// from host answers, `config` and [`run::info`]'s seed (no other source of randomness or time).
pub trait Strategy {
    /// `config` is this strategy's settings from `sophon.toml` as a JSON object (`{}` if none).
    fn run(config: String) -> Result<Outcome, String>;
}

/// A competition adapter: the `sophon:plugin/task-adapter` world.
///
/// Each call runs in a fresh instance whose filesystem holds, read-only, the public data at
/// `/data/public`, the private answers at `/data/private` (for `validate` and `grade`, where
/// granted) and the submission under `/submission`.
pub trait TaskAdapter {
    fn describe(request: TaskRequest) -> Result<TaskInfo, String>;
    /// `submission` is a path in the adapter's filesystem.
    fn validate(request: TaskRequest, submission: String) -> Result<Validation, String>;
    /// `submission` is a path in the adapter's filesystem.
    fn grade(request: TaskRequest, submission: String) -> Result<GradeResult, String>;
}

/// A memory promotion policy: the `sophon:plugin/promotion-policy` world.
pub trait PromotionPolicy {
    fn describe_task(task: TaskInfo) -> Result<TaskDescriptor, String>;
    fn on_phase_end(trace: PhaseTrace) -> Result<Option<KnowledgeUnit>, String>;
    fn on_task_end(trace: RunTrace) -> Result<Vec<WisdomEntry>, String>;
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// The line prefix the host looks for in a plugin's stderr to report a panic.
    pub const PANIC_PREFIX: &str = "sophon-plugin-panic: ";

    /// Make panics print one recognisable line (message and location) before the abort, so
    /// the host can put the message into the error it reports.
    pub fn install_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let payload = info.payload();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "Box<dyn Any>".to_string());
                let location = info
                    .location()
                    .map(|l| format!(" (at {}:{})", l.file(), l.line()))
                    .unwrap_or_default();
                eprintln!("{PANIC_PREFIX}{message}{location}");
            }));
        });
    }
}

/// Embed the plugin's manifest (`plugin.toml` beside `Cargo.toml`, or the given path relative
/// to it) in the component's `sophon-manifest` custom section. The export macros call this.
#[doc(hidden)]
#[macro_export]
macro_rules! __embed_manifest {
    () => {
        $crate::__embed_manifest!("plugin.toml");
    };
    ($path:literal) => {
        #[cfg(target_arch = "wasm32")]
        #[unsafe(link_section = "sophon-manifest")]
        #[used]
        static __SOPHON_MANIFEST: [u8; include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/",
            $path
        ))
        .len()] = *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path));
    };
}

/// Export a type implementing [`Strategy`] as this component's strategy and embed its
/// `plugin.toml`. Optionally: `export_strategy!(MyType, manifest = "other.toml")`.
#[macro_export]
macro_rules! export_strategy {
    ($ty:ty) => {
        $crate::export_strategy!($ty, manifest = "plugin.toml");
    };
    ($ty:ty, manifest = $path:literal) => {
        $crate::__embed_manifest!($path);
        const _: () = {
            struct __SophonExport;
            impl $crate::bindings::strategy::exports::sophon::plugin::strategy_api::Guest
                for __SophonExport
            {
                fn run(config: String) -> ::core::result::Result<$crate::Outcome, String> {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::Strategy>::run(config)
                }
            }
            // Exported in wasm builds only: component export names (`a:b/c@0.1.0#run`) do
            // not link as native symbols. Native builds (`cargo test`, `cargo package`) call
            // the trait directly and reach the export type through this reference only.
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn(String) -> ::core::result::Result<$crate::Outcome, String> =
                <__SophonExport as $crate::bindings::strategy::exports::sophon::plugin::strategy_api::Guest>::run;
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::strategy::__export_strategy_world!(
                __SophonExport with_types_in $crate::bindings::strategy
            );
        };
    };
}

/// Export a type implementing [`TaskAdapter`] and embed its `plugin.toml`.
#[macro_export]
macro_rules! export_task_adapter {
    ($ty:ty) => {
        $crate::export_task_adapter!($ty, manifest = "plugin.toml");
    };
    ($ty:ty, manifest = $path:literal) => {
        $crate::__embed_manifest!($path);
        const _: () = {
            struct __SophonExport;
            impl $crate::bindings::task_adapter::exports::sophon::plugin::task_adapter_api::Guest
                for __SophonExport
            {
                fn describe(
                    request: $crate::TaskRequest,
                ) -> ::core::result::Result<$crate::TaskInfo, String> {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::TaskAdapter>::describe(request)
                }
                fn validate(
                    request: $crate::TaskRequest,
                    submission: String,
                ) -> ::core::result::Result<$crate::Validation, String> {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::TaskAdapter>::validate(request, submission)
                }
                fn grade(
                    request: $crate::TaskRequest,
                    submission: String,
                ) -> ::core::result::Result<$crate::GradeResult, String> {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::TaskAdapter>::grade(request, submission)
                }
            }
            // Exported in wasm builds only: component export names (`a:b/c@0.1.0#run`) do
            // not link as native symbols. Native builds (`cargo test`, `cargo package`) call
            // the trait directly and reach the export type through this reference only.
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn($crate::TaskRequest) -> ::core::result::Result<$crate::TaskInfo, String> =
                <__SophonExport as $crate::bindings::task_adapter::exports::sophon::plugin::task_adapter_api::Guest>::describe;
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::task_adapter::__export_task_adapter_world!(
                __SophonExport with_types_in $crate::bindings::task_adapter
            );
        };
    };
}

/// Export a type implementing [`PromotionPolicy`] and embed its `plugin.toml`.
#[macro_export]
macro_rules! export_promotion_policy {
    ($ty:ty) => { $crate::export_promotion_policy!($ty, manifest = "plugin.toml"); };
    ($ty:ty, manifest = $path:literal) => {
        $crate::__embed_manifest!($path);
        const _: () = {
            struct __SophonExport;
            impl $crate::bindings::promotion_policy::exports::sophon::plugin::promotion_policy_api::Guest
                for __SophonExport
            {
                fn describe_task(
                    task: $crate::TaskInfo,
                ) -> ::core::result::Result<$crate::TaskDescriptor, String> {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::PromotionPolicy>::describe_task(task)
                }
                fn on_phase_end(
                    trace: $crate::PhaseTrace,
                ) -> ::core::result::Result<Option<$crate::KnowledgeUnit>, String> {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::PromotionPolicy>::on_phase_end(trace)
                }
                fn on_task_end(
                    trace: $crate::RunTrace,
                ) -> ::core::result::Result<Vec<$crate::WisdomEntry>, String> {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::PromotionPolicy>::on_task_end(trace)
                }
            }
            // Exported in wasm builds only: component export names (`a:b/c@0.1.0#run`) do
            // not link as native symbols. Native builds (`cargo test`, `cargo package`) call
            // the trait directly and reach the export type through this reference only.
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn($crate::TaskInfo) -> ::core::result::Result<$crate::TaskDescriptor, String> =
                <__SophonExport as $crate::bindings::promotion_policy::exports::sophon::plugin::promotion_policy_api::Guest>::describe_task;
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::promotion_policy::__export_promotion_policy_world!(
                __SophonExport with_types_in $crate::bindings::promotion_policy
            );
        };
    };
}
