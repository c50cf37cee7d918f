//! Raw bindings generated from Sophon's WIT (`wit/` at the repository root).
//!
//! Plugin authors normally use the typed wrappers in the crate root ([`crate::llm`],
//! [`crate::jobs`], ...) and the export macros; these modules are public for the rare case
//! that needs a WIT item the wrappers do not cover.

/// Every host interface (the `sophon:plugin/host` world), generated once and shared by the
/// plugin worlds below, so a strategy and a promotion policy use the same Rust types.
pub mod host {
    wit_bindgen::generate!({
        path: "wit",
        world: "sophon:plugin/host",
        runtime_path: "::sophon_sdk::__private::wit_bindgen::rt",
        additional_derives: [PartialEq],
        generate_all,
    });
}

/// The `sophon:plugin/strategy` world.
pub mod strategy {
    wit_bindgen::generate!({
        path: "wit",
        world: "sophon:plugin/strategy",
        runtime_path: "::sophon_sdk::__private::wit_bindgen::rt",
        additional_derives: [PartialEq],
        with: {
            "sophon:host/types@0.2.0": crate::bindings::host::sophon::host::types,
            "sophon:host/artifacts@0.2.0": crate::bindings::host::sophon::host::artifacts,
            "sophon:host/llm@0.2.0": crate::bindings::host::sophon::host::llm,
            "sophon:host/jobs@0.2.0": crate::bindings::host::sophon::host::jobs,
            "sophon:host/hcc@0.2.0": crate::bindings::host::sophon::host::hcc,
            "sophon:host/task@0.2.0": crate::bindings::host::sophon::host::task,
            "sophon:host/run@0.2.0": crate::bindings::host::sophon::host::run,
            "wasi:io/poll@0.2.0": crate::bindings::host::wasi::io::poll,
        },
        pub_export_macro: true,
        export_macro_name: "__export_strategy_world",
        default_bindings_module: "::sophon_sdk::bindings::strategy",
    });
}

/// The `sophon:plugin/task-adapter` world.
pub mod task_adapter {
    wit_bindgen::generate!({
        path: "wit",
        world: "sophon:plugin/task-adapter",
        runtime_path: "::sophon_sdk::__private::wit_bindgen::rt",
        additional_derives: [PartialEq],
        with: {
            "sophon:host/types@0.2.0": crate::bindings::host::sophon::host::types,
            "sophon:host/task@0.2.0": crate::bindings::host::sophon::host::task,
            "sophon:host/run@0.2.0": crate::bindings::host::sophon::host::run,
        },
        pub_export_macro: true,
        export_macro_name: "__export_task_adapter_world",
        default_bindings_module: "::sophon_sdk::bindings::task_adapter",
    });
}

/// The `sophon:plugin/promotion-policy` world.
pub mod promotion_policy {
    wit_bindgen::generate!({
        path: "wit",
        world: "sophon:plugin/promotion-policy",
        runtime_path: "::sophon_sdk::__private::wit_bindgen::rt",
        additional_derives: [PartialEq],
        with: {
            "sophon:host/types@0.2.0": crate::bindings::host::sophon::host::types,
            "sophon:host/llm@0.2.0": crate::bindings::host::sophon::host::llm,
            "sophon:host/hcc@0.2.0": crate::bindings::host::sophon::host::hcc,
            "sophon:host/task@0.2.0": crate::bindings::host::sophon::host::task,
            "sophon:host/run@0.2.0": crate::bindings::host::sophon::host::run,
            "wasi:io/poll@0.2.0": crate::bindings::host::wasi::io::poll,
        },
        pub_export_macro: true,
        export_macro_name: "__export_promotion_policy_world",
        default_bindings_module: "::sophon_sdk::bindings::promotion_policy",
    });
}
