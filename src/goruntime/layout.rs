//! Per-release struct layouts of the Go runtime (Go 1.19–1.25, amd64 and arm64) and the
//! wait-reason names, looked up by the Go version that buildinfo reports.
//!
//! The tables in layouts/ were computed from each release's runtime source with go/types
//! (see layouts/README.md). They are data to validate against, not truth: every structure
//! read through them must still pass plausibility checks.

use crate::model::Arch;
use std::collections::HashMap;

/// (Go minor version, arch, struct table, wait-reason table).
const TABLES: &[(u32, Arch, &str, &str)] = &[
    (
        19,
        Arch::X86_64,
        include_str!("layouts/1.19-amd64.txt"),
        include_str!("layouts/wait_1.19.txt"),
    ),
    (
        19,
        Arch::Aarch64,
        include_str!("layouts/1.19-arm64.txt"),
        include_str!("layouts/wait_1.19.txt"),
    ),
    (
        20,
        Arch::X86_64,
        include_str!("layouts/1.20-amd64.txt"),
        include_str!("layouts/wait_1.20.txt"),
    ),
    (
        20,
        Arch::Aarch64,
        include_str!("layouts/1.20-arm64.txt"),
        include_str!("layouts/wait_1.20.txt"),
    ),
    (
        21,
        Arch::X86_64,
        include_str!("layouts/1.21-amd64.txt"),
        include_str!("layouts/wait_1.21.txt"),
    ),
    (
        21,
        Arch::Aarch64,
        include_str!("layouts/1.21-arm64.txt"),
        include_str!("layouts/wait_1.21.txt"),
    ),
    (
        22,
        Arch::X86_64,
        include_str!("layouts/1.22-amd64.txt"),
        include_str!("layouts/wait_1.22.txt"),
    ),
    (
        22,
        Arch::Aarch64,
        include_str!("layouts/1.22-arm64.txt"),
        include_str!("layouts/wait_1.22.txt"),
    ),
    (
        23,
        Arch::X86_64,
        include_str!("layouts/1.23-amd64.txt"),
        include_str!("layouts/wait_1.23.txt"),
    ),
    (
        23,
        Arch::Aarch64,
        include_str!("layouts/1.23-arm64.txt"),
        include_str!("layouts/wait_1.23.txt"),
    ),
    (
        24,
        Arch::X86_64,
        include_str!("layouts/1.24-amd64.txt"),
        include_str!("layouts/wait_1.24.txt"),
    ),
    (
        24,
        Arch::Aarch64,
        include_str!("layouts/1.24-arm64.txt"),
        include_str!("layouts/wait_1.24.txt"),
    ),
    (
        25,
        Arch::X86_64,
        include_str!("layouts/1.25-amd64.txt"),
        include_str!("layouts/wait_1.25.txt"),
    ),
    (
        25,
        Arch::Aarch64,
        include_str!("layouts/1.25-arm64.txt"),
        include_str!("layouts/wait_1.25.txt"),
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read Go version {0:?}")]
    BadVersion(String),
    #[error("no runtime layout for {version} on {arch}: wedge knows Go 1.19 to 1.25")]
    Unknown { version: String, arch: &'static str },
    #[error("the layout table has no field {0}")]
    MissingField(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub offset: u64,
    pub ty: String,
    pub size: u64,
}

#[derive(Debug, Clone, Default)]
pub struct StructLayout {
    pub size: u64,
    pub fields: HashMap<String, Field>,
}

/// The runtime's struct layouts and wait reasons for one Go release and architecture.
#[derive(Debug, Clone)]
pub struct RuntimeLayout {
    pub minor: u32,
    pub arch: Arch,
    pub structs: HashMap<String, StructLayout>,
    /// Index = the waitReason byte in runtime.g.
    pub wait_reasons: Vec<String>,
}

/// `go1.21.5` → 21; `go1.22rc1` → 22; anything else is an error.
pub fn go_minor(version: &str) -> Result<u32, LayoutError> {
    let bad = || LayoutError::BadVersion(version.to_string());
    let rest = version.trim().strip_prefix("go1.").ok_or_else(bad)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().map_err(|_| bad())
}

impl RuntimeLayout {
    pub fn for_version(version: &str, arch: Arch) -> Result<RuntimeLayout, LayoutError> {
        let minor = go_minor(version)?;
        let (_, _, structs, waits) = TABLES
            .iter()
            .find(|(m, a, _, _)| *m == minor && *a == arch)
            .ok_or_else(|| LayoutError::Unknown {
                version: version.to_string(),
                arch: arch.name(),
            })?;
        Ok(RuntimeLayout {
            minor,
            arch,
            structs: parse_structs(structs),
            wait_reasons: parse_wait_reasons(waits),
        })
    }

    pub fn field(&self, strukt: &str, field: &str) -> Result<&Field, LayoutError> {
        self.structs
            .get(strukt)
            .and_then(|s| s.fields.get(field))
            .ok_or_else(|| LayoutError::MissingField(format!("{strukt}.{field}")))
    }

    pub fn offset(&self, strukt: &str, field: &str) -> Result<u64, LayoutError> {
        self.field(strukt, field).map(|f| f.offset)
    }

    pub fn size(&self, strukt: &str) -> Result<u64, LayoutError> {
        self.structs
            .get(strukt)
            .map(|s| s.size)
            .ok_or_else(|| LayoutError::MissingField(strukt.to_string()))
    }

    pub fn wait_reason(&self, n: u8) -> Option<&str> {
        self.wait_reasons
            .get(n as usize)
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
    }
}

/// Parses `## runtime.NAME size=N` headers and `OFFSET NAME TYPE (size N)` lines.
fn parse_structs(text: &str) -> HashMap<String, StructLayout> {
    let mut out: HashMap<String, StructLayout> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## runtime.") {
            let mut it = h.split_whitespace();
            let name = it.next().unwrap_or("").trim_end_matches(':').to_string();
            let size = it
                .next()
                .and_then(|s| s.strip_prefix("size="))
                .and_then(|s| s.parse().ok());
            current = size.map(|size| {
                out.insert(
                    name.clone(),
                    StructLayout {
                        size,
                        fields: HashMap::new(),
                    },
                );
                name
            });
            continue;
        }
        let Some(cur) = &current else { continue };
        let t = line.trim();
        let Some((head, size)) = t.rsplit_once("(size ") else {
            continue;
        };
        let Ok(size) = size.trim_end_matches(')').parse::<u64>() else {
            continue;
        };
        let mut it = head.split_whitespace();
        let (Some(off), Some(name)) = (it.next().and_then(|o| o.parse::<u64>().ok()), it.next())
        else {
            continue;
        };
        let ty = it.collect::<Vec<_>>().join(" ");
        if let Some(s) = out.get_mut(cur) {
            // `_` padding fields repeat; the first of a name wins.
            s.fields.entry(name.to_string()).or_insert(Field {
                offset: off,
                ty,
                size,
            });
        }
    }
    out
}

/// Parses `N<TAB>constant<TAB>string` lines into a table indexed by N.
fn parse_wait_reasons(text: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, '\t');
        let (Some(n), Some(_), s) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let Ok(n) = n.trim().parse::<usize>() else {
            continue;
        };
        if v.len() <= n {
            v.resize(n + 1, String::new());
        }
        v[n] = s.unwrap_or("").to_string();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions() {
        assert_eq!(go_minor("go1.19.8"), Ok(19));
        assert_eq!(go_minor("go1.22rc1"), Ok(22));
        assert!(go_minor("devel +abc").is_err());
        assert!(matches!(
            RuntimeLayout::for_version("go1.18.1", Arch::X86_64),
            Err(LayoutError::Unknown { .. })
        ));
    }

    #[test]
    fn key_offsets_match_the_documented_ones() {
        // GO-RUNTIME.md: atomicstatus 144|144|152|144, goid 152|152|160|152, waitsince
        // 168|168|176|168, gopc 296|280|288|280 for 1.19|1.21|1.23|1.25.
        for (v, status, goid, since, gopc) in [
            ("go1.19", 144, 152, 168, 296),
            ("go1.21", 144, 152, 168, 280),
            ("go1.23", 152, 160, 176, 288),
            ("go1.25", 144, 152, 168, 280),
        ] {
            let l = RuntimeLayout::for_version(v, Arch::X86_64).unwrap();
            assert_eq!(l.offset("g", "atomicstatus").unwrap(), status, "{v}");
            assert_eq!(l.offset("g", "goid").unwrap(), goid, "{v}");
            assert_eq!(l.offset("g", "waitsince").unwrap(), since, "{v}");
            assert_eq!(l.offset("g", "gopc").unwrap(), gopc, "{v}");
            assert_eq!(l.offset("g", "sched").unwrap(), 56, "{v}");
        }
        let l = RuntimeLayout::for_version("go1.25.1", Arch::X86_64).unwrap();
        assert!(l.field("gobuf", "ret").is_err(), "gobuf.ret left in 1.25");
        assert_eq!(l.offset("gobuf", "bp").unwrap(), 40);
        assert_eq!(l.size("g").unwrap(), 440);
    }

    #[test]
    fn wait_reasons_by_number() {
        let l = RuntimeLayout::for_version("go1.19.8", Arch::X86_64).unwrap();
        assert_eq!(l.wait_reason(14), Some("chan receive"));
        assert_eq!(l.wait_reason(0), None);
        assert_eq!(l.wait_reason(200), None);
        let l = RuntimeLayout::for_version("go1.25", Arch::Aarch64).unwrap();
        assert_eq!(l.wait_reason(2), Some("IO wait"));
    }
}
