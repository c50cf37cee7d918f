//! The error every host call can return.

use crate::bindings::host::sophon::host::types::Error as WitError;
use std::fmt;

/// What kind of failure a host call reported. Mirrors `sophon:host/types.error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotGranted,
    BudgetExhausted,
    InvalidArgument,
    NotFound,
    TooLarge,
    Timeout,
    RateLimited,
    Unavailable,
    Upstream,
    MalformedReply,
    Cancelled,
    Internal,
}

impl ErrorKind {
    /// The WIT case name, e.g. `not-granted`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotGranted => "not-granted",
            ErrorKind::BudgetExhausted => "budget-exhausted",
            ErrorKind::InvalidArgument => "invalid-argument",
            ErrorKind::NotFound => "not-found",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::Timeout => "timeout",
            ErrorKind::RateLimited => "rate-limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Upstream => "upstream",
            ErrorKind::MalformedReply => "malformed-reply",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A failed host call: its kind and the host's explanation (which says how to fix it where
/// there is a fix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

/// Result of a host call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// True when retrying later cannot help (the call itself or the plugin's grants are wrong).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::NotGranted
                | ErrorKind::InvalidArgument
                | ErrorKind::NotFound
                | ErrorKind::TooLarge
                | ErrorKind::BudgetExhausted
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<WitError> for Error {
    fn from(e: WitError) -> Self {
        let (kind, message) = match e {
            WitError::NotGranted(m) => (ErrorKind::NotGranted, m),
            WitError::BudgetExhausted(m) => (ErrorKind::BudgetExhausted, m),
            WitError::InvalidArgument(m) => (ErrorKind::InvalidArgument, m),
            WitError::NotFound(m) => (ErrorKind::NotFound, m),
            WitError::TooLarge(m) => (ErrorKind::TooLarge, m),
            WitError::Timeout(m) => (ErrorKind::Timeout, m),
            WitError::RateLimited(m) => (ErrorKind::RateLimited, m),
            WitError::Unavailable(m) => (ErrorKind::Unavailable, m),
            WitError::Upstream(m) => (ErrorKind::Upstream, m),
            WitError::MalformedReply(m) => (ErrorKind::MalformedReply, m),
            WitError::Cancelled(m) => (ErrorKind::Cancelled, m),
            WitError::Internal(m) => (ErrorKind::Internal, m),
        };
        Error { kind, message }
    }
}

/// Lets a strategy return `Err(e.into())` or use `?` on host calls inside an export
/// returning `Result<_, String>`.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}
