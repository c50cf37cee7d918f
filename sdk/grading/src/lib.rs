//! Grading at parity with MLE-bench: CSV files read as pandas reads them ([`table`]), the
//! competitions' metrics with scikit-learn's semantics ([`metrics`]), their validation
//! checks ([`grade`]), the competition table ([`competitions`]) and medals from Kaggle
//! leaderboards ([`medals`]).
//!
//! Pure Rust with no I/O beyond reading the files it is given, so it runs natively (the host
//! computes medals) and inside the sandboxed `mlebench` task adapter (which alone reads the
//! private answers).

pub mod competitions;
pub mod grade;
pub mod medals;
pub mod metrics;
pub mod table;

pub use competitions::{COMPETITIONS, Competition, GenericSpec, Split, find};
pub use grade::{Columns, Failure, GradeOutcome, Recipe, RowSums, grade, read_answers};
pub use medals::{CompetitionReport, GradingReport, Thresholds};
pub use table::{Limits, Table};
