//! Reading a target's memory through one trait, whatever the source.
//!
//! A live capture copies address ranges during the freeze into a [`MemoryImage`]; a core file
//! maps its PT_LOAD segments; a bundle carries the image. The unwinder and the Go walker read
//! only through [`Memory`], so they run the same way over all three.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    #[error("address {addr:#x} (+{len}) is not in the captured memory")]
    NotCaptured { addr: u64, len: usize },
}

/// Read-only access to a target's address space (or the part of it that was captured).
pub trait Memory {
    /// Fills `buf` with the bytes at `addr`; fails unless every byte is available.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

/// One copied address range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub start: u64,
    #[serde(with = "hex_bytes")]
    pub bytes: Vec<u8>,
}

impl Region {
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

/// A set of copied address ranges: a small memory image of one process.
///
/// Regions are kept non-overlapping in a map keyed by start address, so inserting and
/// reading stay logarithmic with hundreds of thousands of regions (one per goroutine stack).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "RegionList", into = "RegionList")]
pub struct MemoryImage {
    regions: BTreeMap<u64, Vec<u8>>,
}

/// The serialized form: a sorted list of regions.
#[derive(Serialize, Deserialize)]
struct RegionList {
    regions: Vec<Region>,
}

impl From<RegionList> for MemoryImage {
    fn from(list: RegionList) -> MemoryImage {
        let mut m = MemoryImage::new();
        for r in list.regions {
            m.insert(r.start, r.bytes);
        }
        m
    }
}

impl From<MemoryImage> for RegionList {
    fn from(m: MemoryImage) -> RegionList {
        RegionList {
            regions: m
                .regions
                .into_iter()
                .map(|(start, bytes)| Region { start, bytes })
                .collect(),
        }
    }
}

impl MemoryImage {
    pub fn new() -> MemoryImage {
        MemoryImage::default()
    }

    /// Adds a range; where it overlaps or touches ranges already present they merge, and
    /// the new bytes win on the overlap.
    pub fn insert(&mut self, start: u64, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let end = start.saturating_add(bytes.len() as u64);
        // Regions that overlap or touch [start, end]: those starting at or before `end`
        // whose end reaches `start`. Scan backwards from the last one starting <= end.
        let mut touching: Vec<u64> = Vec::new();
        for (&s, b) in self.regions.range(..=end).rev() {
            if s + b.len() as u64 >= start {
                touching.push(s);
            } else {
                break;
            }
        }
        if touching.is_empty() {
            self.regions.insert(start, bytes);
            return;
        }
        let mut lo = start;
        let mut hi = end;
        let old: Vec<(u64, Vec<u8>)> = touching
            .into_iter()
            .filter_map(|s| self.regions.remove(&s).map(|b| (s, b)))
            .collect();
        for (s, b) in &old {
            lo = lo.min(*s);
            hi = hi.max(s + b.len() as u64);
        }
        let mut buf = vec![0u8; (hi - lo) as usize];
        for (s, b) in &old {
            let off = (s - lo) as usize;
            buf[off..off + b.len()].copy_from_slice(b);
        }
        let off = (start - lo) as usize;
        buf[off..off + bytes.len()].copy_from_slice(&bytes);
        self.regions.insert(lo, buf);
    }

    /// The regions, by start address.
    pub fn regions(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.regions.iter().map(|(s, b)| (*s, b.as_slice()))
    }

    pub fn region_count(&self) -> usize {
        self.regions.len()
    }

    /// Total bytes held.
    pub fn len(&self) -> usize {
        self.regions.values().map(|b| b.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }
}

impl Memory for MemoryImage {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let err = || MemoryError::NotCaptured {
            addr,
            len: buf.len(),
        };
        let (start, bytes) = self.regions.range(..=addr).next_back().ok_or_else(err)?;
        let off = (addr - start) as usize;
        let end = off.checked_add(buf.len()).ok_or_else(err)?;
        let src = bytes.get(off..end).ok_or_else(err)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Bytes as a hex string in JSON: readable, diffable, and exact.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(D::Error::custom("odd number of hex digits"));
        }
        let digit = |c: u8| -> Result<u8, D::Error> {
            (c as char)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or_else(|| D::Error::custom("not a hex digit"))
        };
        s.as_bytes()
            .chunks(2)
            .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_and_refuses_outside() {
        let mut m = MemoryImage::new();
        m.insert(0x1000, (0u8..16).collect());
        assert_eq!(
            m.read_u32(0x1004).unwrap(),
            u32::from_le_bytes([4, 5, 6, 7])
        );
        assert!(m.read_u64(0x100c).is_err(), "crosses the end");
        assert!(m.read_u32(0xffc).is_err(), "before the start");
    }

    #[test]
    fn overlapping_inserts_merge() {
        let mut m = MemoryImage::new();
        m.insert(0x10, vec![1; 8]);
        m.insert(0x20, vec![3; 8]);
        m.insert(0x14, vec![2; 16]); // bridges both
        assert_eq!(m.region_count(), 1);
        let mut b = [0u8; 24];
        m.read(0x10, &mut b).unwrap();
        assert_eq!(&b[..4], &[1; 4]);
        assert_eq!(&b[4..20], &[2; 16]);
        assert_eq!(&b[20..], &[3; 4]);
    }

    #[test]
    fn many_small_regions_stay_separate() {
        let mut m = MemoryImage::new();
        for i in 0..100_000u64 {
            m.insert(0x10_0000 + i * 64, vec![i as u8; 32]);
        }
        assert_eq!(m.region_count(), 100_000);
        assert_eq!(
            m.read_u32(0x10_0000 + 99_999 * 64).unwrap(),
            u32::from_le_bytes([159; 4])
        );
        assert!(m.read_u32(0x10_0000 + 32).is_err(), "the gaps stay gaps");
    }

    #[test]
    fn json_round_trip() {
        let mut m = MemoryImage::new();
        m.insert(0xdead0, vec![0, 0xff, 0x10]);
        let j = serde_json::to_string(&m).unwrap();
        assert!(j.contains("00ff10"));
        let back: MemoryImage = serde_json::from_str(&j).unwrap();
        assert_eq!(back, m);
        assert!(
            serde_json::from_str::<MemoryImage>(r#"{"regions":[{"start":1,"bytes":"zz"}]}"#)
                .is_err()
        );
    }
}
