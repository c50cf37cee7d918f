//! One agent run: the pieces of `sophon run`, built on the run contract plugins see as
//! `sophon:host/run` ([`crate::run_context`], re-exported here):
//!
//! - [`live::LiveRun`]: the run context of a real run (budgets, validated best submission
//!   copied at once);
//! - [`dir::RunDir`]: the run directory;
//! - [`events`]: what a run reports as it goes;
//! - [`execute`]: one run end to end, from competition id to grade;
//! - [`demo`]: the demo competition Sophon prepares itself;
//! - [`session::SessionRun`]: an in-memory run context for `sophon plugin run` and tests;
//! - [`journaled`]: the capabilities a resumed run answers from its [`crate::journal`].

pub mod baseline;
pub mod demo;
pub mod dir;
pub mod events;
pub mod execute;
pub mod jobs;
pub mod journaled;
pub mod live;
pub mod policy;
pub mod services;
pub mod session;

pub use crate::run_context::*;
