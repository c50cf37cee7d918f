pub mod artifacts;
pub mod capability;
pub mod hcc;
pub mod jobs;
pub mod llm;
pub mod run;
pub mod runtime;
pub mod task;
