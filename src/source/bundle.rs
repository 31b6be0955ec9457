//! Reading a support bundle back (`wedge analyze`): the zstd-compressed tar that
//! [`crate::bundle`] writes, checked member by member against its manifest's sha256, its
//! snapshots loaded, and the catalog run on them again, with no access to the machine the
//! bundle came from.

use crate::bundle::Analyzed;
use crate::bundle::manifest::{self, FORMAT, FORMAT_VERSION, MANIFEST, Manifest};
use crate::model::{Diagnosis, SCHEMA_VERSION, Snapshot};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// A bundle, read and verified.
#[derive(Debug)]
pub struct Bundle {
    pub manifest: Manifest,
    /// Each input's snapshot, in the manifest's order.
    pub snapshots: Vec<Snapshot>,
    /// Each input's trace timeline (`wedge trace --bundle`), where it has one.
    pub traces: Vec<Option<crate::trace::Timeline>>,
    /// Every member but the binaries, by name.
    pub members: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: not a wedge bundle ({1})")]
    NotABundle(String, String),
    #[error("{0}: damaged bundle: {1}")]
    Damaged(String, String),
    #[error("{0}: made by a newer wedge (bundle format {1}, this wedge reads {2}); upgrade wedge")]
    TooNew(String, u32, u32),
}

/// Upper bound on one member kept in memory, and on all of them together.
const MAX_MEMBER: u64 = 1 << 30;
const MAX_TOTAL: u64 = 4 << 30;

/// Opens, decompresses, verifies and loads a bundle.
pub fn open(path: &Path) -> Result<Bundle, BundleError> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| BundleError::Io {
        path: name.clone(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.is_dir() {
        return Err(BundleError::NotABundle(name, "a directory".into()));
    }
    let mut head = [0u8; 4];
    let n = (&file).read(&mut head).map_err(io)?;
    if n < 4 || head != [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(BundleError::NotABundle(
            name,
            "not zstd-compressed; `wedge bundle` writes .tar.zst".into(),
        ));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let dec = zstd::Decoder::new(file).map_err(io)?;
    let damaged = |what: String| BundleError::Damaged(name.clone(), what);
    let mut archive = tar::Archive::new(dec);
    let entries = archive
        .entries()
        .map_err(|e| damaged(format!("reading the archive: {e}")))?;
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut hashes: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut total = 0u64;
    let mut manifest: Option<Manifest> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(format!("reading the archive: {e}")))?;
        let member = entry
            .path()
            .map_err(|e| damaged(format!("a member's name: {e}")))?
            .display()
            .to_string();
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        if member.starts_with("binaries/") {
            // Hashed as it streams by; not kept.
            let (len, sha) =
                hash_stream(&mut entry).map_err(|e| damaged(format!("{member}: {e}")))?;
            hashes.insert(member, (len, sha));
            continue;
        }
        if size > MAX_MEMBER || total + size > MAX_TOTAL {
            return Err(damaged(format!(
                "{member}: implausibly large ({size} bytes)"
            )));
        }
        total += size;
        let mut data = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| damaged(format!("{member}: {e}")))?;
        if member == MANIFEST && manifest.is_none() {
            let m: Manifest = serde_json::from_slice(&data).map_err(|e| {
                BundleError::NotABundle(name.clone(), format!("manifest.json: {e}"))
            })?;
            if m.format != FORMAT {
                return Err(BundleError::NotABundle(
                    name,
                    format!("manifest format is {:?}", m.format),
                ));
            }
            if m.format_version > FORMAT_VERSION {
                return Err(BundleError::TooNew(name, m.format_version, FORMAT_VERSION));
            }
            manifest = Some(m);
            continue;
        }
        hashes.insert(
            member.clone(),
            (data.len() as u64, manifest::sha256_hex(&data)),
        );
        members.insert(member, data);
    }
    let manifest = manifest.ok_or_else(|| {
        BundleError::NotABundle(name.clone(), "no manifest.json in the archive".into())
    })?;
    for m in &manifest.members {
        match hashes.get(&m.name) {
            None => return Err(damaged(format!("{} is missing", m.name))),
            Some((size, sha)) if *size != m.size || *sha != m.sha256 => {
                return Err(damaged(format!(
                    "{} does not match its sha256 in manifest.json (altered or truncated)",
                    m.name
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = hashes
        .keys()
        .find(|k| !manifest.members.iter().any(|m| &m.name == *k))
    {
        return Err(damaged(format!("{extra} is not listed in manifest.json")));
    }
    let mut snapshots = Vec::new();
    let mut traces = Vec::new();
    for input in &manifest.inputs {
        let trace = match &input.trace {
            None => None,
            Some(member) => {
                let data = members
                    .get(member)
                    .ok_or_else(|| damaged(format!("{member} is missing")))?;
                Some(serde_json::from_slice(data).map_err(|e| damaged(format!("{member}: {e}")))?)
            }
        };
        traces.push(trace);
        let data = members
            .get(&input.snapshot)
            .ok_or_else(|| damaged(format!("{} is missing", input.snapshot)))?;
        let snap: Snapshot = serde_json::from_slice(data)
            .map_err(|e| damaged(format!("{}: {e}", input.snapshot)))?;
        if snap.schema_version > SCHEMA_VERSION {
            return Err(BundleError::TooNew(
                name,
                snap.schema_version,
                SCHEMA_VERSION,
            ));
        }
        snapshots.push(snap);
    }
    Ok(Bundle {
        manifest,
        snapshots,
        traces,
        members,
    })
}

fn hash_stream(r: &mut impl Read) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        h.update(&buf[..n]);
    }
    Ok((len, manifest::hex(&h.finalize())))
}

impl Bundle {
    /// Each input analyzed again: the catalog on its snapshot, the rules on its timeline.
    pub fn analyzed(&self) -> Vec<Analyzed> {
        self.snapshots
            .iter()
            .zip(&self.traces)
            .map(|(s, t)| Analyzed::of(s.clone(), t.clone()))
            .collect()
    }

    /// Each input's findings as a diagnosis (a trace's: its fault capture, or an empty
    /// snapshot, with the trace's findings).
    pub fn diagnoses(&self) -> Vec<Diagnosis> {
        self.analyzed()
            .into_iter()
            .map(Analyzed::into_diagnosis)
            .collect()
    }
}
