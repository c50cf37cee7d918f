//! Sophon: a host platform for autonomous machine-learning-engineering agents.
//!
//! The host owns the capabilities that touch the world — LLM access ([`llm`]), job dispatch
//! ([`jobs`]), the Hierarchical Cognitive Cache ([`hcc`]), the task ([`task`]), the run's
//! contract ([`run_context`]) and its artifacts ([`artifacts`]) — each a plain Rust service
//! behind a trait — and the [`journal`] that lets a run resume.
//! Everything that is policy (search strategies, task adapters, memory promotion policies) is a
//! sandboxed WebAssembly component loaded by the [`runtime`], the only module that knows about
//! wasm. Above it, [`run`] orchestrates one agent run, [`grading`] scores submissions and
//! [`ab`] compares strategies; the [`cli`] ties them together as the `sophon` command. Imports
//! only go down these floors (`layering` checks it).

pub mod ab;
pub mod artifacts;
pub mod builtin;
pub mod capability;
pub mod cli;
pub mod config;
pub mod grading;
pub mod hcc;
pub mod jobs;
pub mod journal;
#[cfg(test)]
mod layering;
pub mod llm;
pub mod pyenv;
pub mod report;
pub mod run;
pub mod run_context;
pub mod runtime;
pub mod task;
pub mod term;
pub mod units;
