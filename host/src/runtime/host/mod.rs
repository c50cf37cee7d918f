//! The `sophon:host` interfaces, implemented on [`PluginState`] by delegating to the
//! capability services after the grant checks. One file per interface.

pub mod artifacts;
pub mod convert;
pub mod hcc;
pub mod jobs;
pub mod llm;
pub mod poll;
pub mod run;
pub mod task;

use super::bindings::host::sophon::host::types;
use super::state::PluginState;
use crate::capability::{CapResult, CapabilityError};
use convert::Conv;

impl types::Host for PluginState {}

impl From<CapabilityError> for types::Error {
    fn from(e: CapabilityError) -> Self {
        match e {
            CapabilityError::NotGranted(m) => types::Error::NotGranted(m),
            CapabilityError::BudgetExhausted(m) => types::Error::BudgetExhausted(m),
            CapabilityError::InvalidArgument(m) => types::Error::InvalidArgument(m),
            CapabilityError::NotFound(m) => types::Error::NotFound(m),
            CapabilityError::TooLarge(m) => types::Error::TooLarge(m),
            CapabilityError::Timeout(m) => types::Error::Timeout(m),
            CapabilityError::RateLimited(m) => types::Error::RateLimited(m),
            CapabilityError::Unavailable(m) => types::Error::Unavailable(m),
            CapabilityError::Upstream(m) => types::Error::Upstream(m),
            CapabilityError::MalformedReply(m) => types::Error::MalformedReply(m),
            CapabilityError::Cancelled(m) => types::Error::Cancelled(m),
            CapabilityError::Internal(m) => types::Error::Internal(m),
        }
    }
}

/// A capability result as a WIT result (host functions never trap on capability errors).
pub(crate) fn answer<T: Conv<U>, U>(
    result: CapResult<T>,
) -> wasmtime::Result<Result<U, types::Error>> {
    Ok(result.map(Conv::conv).map_err(types::Error::from))
}

convert::record!(
    crate::artifacts::Artifact,
    types::Artifact {
        id,
        name,
        size,
        sha256
    }
);
convert::unit_enum!(
    crate::task::Direction,
    types::Direction { Maximize, Minimize }
);
convert::unit_enum!(
    crate::run_context::LogLevel,
    types::LogLevel {
        Trace,
        Debug,
        Info,
        Warn,
        Error
    }
);

impl Conv<()> for () {
    fn conv(self) {}
}
