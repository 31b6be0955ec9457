//! Output: human tables and JSON.
