//! manifest.json: the table of contents of a support bundle, written first in the archive
//! and checked member by member when the bundle is read back.

use serde::{Deserialize, Serialize};

/// The `format` field of every wedge bundle.
pub const FORMAT: &str = "wedge-bundle";
/// Bumped when a member changes meaning or a required field is added.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's own member name.
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub wedge_version: String,
    /// Milliseconds since the Unix epoch when the bundle was written.
    pub created_unix_ms: u64,
    /// wedge's own command line, redacted like everything else.
    pub command: Vec<String>,
    /// False with `--no-redact`: the bundle may hold secrets.
    pub redacted: bool,
    /// How many values were redacted where they were found.
    pub redactions: usize,
    /// `uname -r` of the machine the bundle was made on.
    pub kernel_release: String,
    pub inputs: Vec<InputEntry>,
    pub collectors: Vec<CollectorRecord>,
    /// Every other member, with its size and sha256.
    pub members: Vec<MemberEntry>,
}

/// One thing the bundle was asked to collect: a pid, a core or a log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputEntry {
    /// The argument as given (`1234`, `core.567`, `ci.log`).
    pub arg: String,
    /// `live`, `core`, `log` or `trace`.
    pub kind: String,
    /// The member holding its snapshot (`snapshot.json`, `snapshot-2.json`, …).
    pub snapshot: String,
    /// `wedge trace --bundle`: the member holding the timeline (`trace.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Signature ids of the findings made when the bundle was written.
    pub findings: Vec<String>,
}

/// What one collector did: how long it took and whether it ran into its deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorRecord {
    pub name: String,
    pub duration_ms: f64,
    pub deadline_ms: u64,
    pub hit_deadline: bool,
    /// What it could not collect, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// Lowercase hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(data))
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
