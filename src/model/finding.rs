//! Findings: what the signature catalog concludes from a snapshot, with its evidence.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The shape matches; other explanations remain.
    Possible,
    /// Most of the signature's facts hold.
    Likely,
    /// Every fact the signature needs holds.
    Certain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Signature id, e.g. `clone-fork-mix`.
    pub id: String,
    pub title: String,
    pub confidence: Confidence,
    pub evidence: Vec<Evidence>,
    /// What is going on, in plain words.
    pub explanation: String,
    /// What to do now.
    pub workaround: Option<String>,
    /// First upstream version with the fix.
    pub fixed_in: Option<String>,
    /// Upstream issues and pull requests.
    #[serde(default)]
    pub references: Vec<String>,
}

/// A pointer into the snapshot that supports a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Evidence {
    pub pid: Option<i32>,
    pub tid: Option<i32>,
    pub goroutine: Option<i64>,
    pub fd: Option<i32>,
    /// Start address of a mapping.
    pub mapping: Option<u64>,
    pub text: String,
}
