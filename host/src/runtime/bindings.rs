//! Host bindings generated from `wit/`: one set of `sophon:host` interface traits shared by
//! every plugin world.

/// Every `sophon:host` interface (the `sophon:plugin/host` world). All host functions are
/// async (so a call can await a capability under a deadline) and trappable (so the host can
/// end a misbehaving plugin's call), except the cheap synchronous queries.
pub mod host {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sophon:plugin/host",
        imports: {
            "sophon:host/run.should-stop": trappable,
            "sophon:host/run.info": trappable,
            "sophon:host/run.budget": trappable,
            "sophon:host/run.log": trappable,
            "sophon:host/llm.models": trappable,
            "sophon:host/llm.budget": trappable,
            "sophon:host/jobs.inventory": trappable,
            default: async | trappable,
        },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "sophon:host/llm.pending-completion": crate::runtime::host::llm::PendingChat,
            "sophon:host/jobs.job": crate::runtime::host::jobs::RunningJob,
        },
    });
}

/// The `sophon:plugin/strategy` world's exports.
pub mod strategy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sophon:plugin/strategy",
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "sophon:host": super::host::sophon::host,
        },
    });
}

/// The `sophon:plugin/task-adapter` world's exports.
pub mod task_adapter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sophon:plugin/task-adapter",
        exports: { default: async },
        with: {
            "sophon:host": super::host::sophon::host,
        },
    });
}

/// The `sophon:plugin/promotion-policy` world's exports.
pub mod promotion_policy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sophon:plugin/promotion-policy",
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "sophon:host": super::host::sophon::host,
        },
    });
}
