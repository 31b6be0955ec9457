//! Output: the human report (comfy-table, colour on terminals only) and JSON.

pub mod goroutines;
pub mod human;
pub mod style;

pub use human::{ReportOptions, report};
pub use style::Style;

/// The JSON document of a diagnosis: the Snapshot with its findings beside it.
pub fn json(d: &crate::model::Diagnosis) -> String {
    serde_json::to_string_pretty(d).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
