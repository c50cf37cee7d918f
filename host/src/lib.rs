//! Sophon: a host platform for autonomous machine-learning-engineering agents.
//!
//! The host owns the capabilities that touch the world — LLM access ([`llm`]), job dispatch
//! ([`jobs`]), the Hierarchical Cognitive Cache ([`hcc`]), the task ([`task`]), the run
//! ([`run`]) and its artifacts ([`artifacts`]) — each a plain Rust service behind a trait.
//! Everything that is policy (search strategies, task adapters, memory promotion policies) is a
//! sandboxed WebAssembly component loaded by the [`runtime`], the only module that knows about
//! wasm. The [`cli`] ties them together as the `sophon` command.

pub mod ab;
pub mod artifacts;
pub mod builtin;
pub mod capability;
pub mod cli;
pub mod config;
pub mod grading;
pub mod hcc;
pub mod jobs;
pub mod llm;
pub mod pyenv;
pub mod report;
pub mod run;
pub mod runtime;
pub mod task;
pub mod term;
pub mod units;
