//! Sophon's integration tests, one binary with a module per topic (as wasmtime's `tests/all`):
//! linking wasmtime, cranelift, SQLite, reqwest and the tokenizer once instead of once per topic.
//!
//! Run one topic with a filter on its module path, e.g. `cargo test --test all jobs::` or
//! `cargo test --test all -- --exact hcc::kill_9_loses_at_most_the_event_being_written`.
//! The suites that need outside services stay behind their switches: the Slurm and Ray tests
//! pass with a note when no cluster is configured (`SOPHON_SLURM_URL`, `SOPHON_RAY_URL`) unless
//! `SOPHON_REQUIRE_SLURM=1` / `SOPHON_REQUIRE_RAY=1`, which `tests/run` sets where it starts
//! them. The local-model module (`local_llm::`) runs the quick start's embedded model, installed
//! on first use (once per machine).
//!
//! Fixture plugins, loopback servers and cluster helpers come from the `sophon-tests` support
//! library (`tests/support/`); the tests belong to the `sophon` package so that
//! `CARGO_BIN_EXE_sophon` names the freshly built binary.

mod ab;
mod agent_run;
mod attacks;
mod cli;
mod grading;
mod grading_families;
mod hcc;
mod hostile_text;
mod jobs;
mod llm;
mod local_llm;
mod ray;
mod runtime;
mod scaffold;
mod slurm;
mod wit_evolution;
