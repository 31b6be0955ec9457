//! Runtime struct layouts from the binary's own DWARF, when it has any: exact for every
//! release (the tables only cover the releases wedge knows), and the wait-reason names from
//! the binary's `runtime.waitReasonStrings`.

use super::layout::{Field, RuntimeLayout, StructLayout, go_minor};
use crate::binary::Binary;
use crate::model::Arch;
use gimli::{AttributeValue, EndianSlice, RunTimeEndian};
use std::borrow::Cow;
use std::collections::HashMap;

/// The structs wedge reads, by DWARF name.
const STRUCTS: [(&str, &str); 5] = [
    ("runtime.g", "g"),
    ("runtime.m", "m"),
    ("runtime.gobuf", "gobuf"),
    ("runtime.stack", "stack"),
    ("runtime.moduledata", "moduledata"),
];

/// The layout of `binary`'s runtime from its DWARF; None when it has no DWARF or lacks
/// one of the structs.
pub fn layout(binary: &Binary, version: &str, arch: Arch) -> Option<RuntimeLayout> {
    let elf = &binary.elf;
    let load =
        |name: &str| -> Cow<'_, [u8]> { elf.section_data(name).unwrap_or(Cow::Borrowed(&[])) };
    let info = load(".debug_info");
    if info.is_empty() {
        return None;
    }
    let abbrev = load(".debug_abbrev");
    let strs = load(".debug_str");
    let endian = RunTimeEndian::Little;
    let dwarf: gimli::Dwarf<EndianSlice<'_, RunTimeEndian>> = gimli::Dwarf {
        debug_info: gimli::DebugInfo::new(&info, endian),
        debug_abbrev: gimli::DebugAbbrev::new(&abbrev, endian),
        debug_str: gimli::DebugStr::new(&strs, endian),
        ..Default::default()
    };

    let mut structs: HashMap<String, StructLayout> = HashMap::new();
    let mut units = dwarf.units();
    while let Ok(Some(header)) = units.next() {
        // Only the entries: no line programs or other sections are needed (or loaded).
        let Ok(abbrevs) = header.abbreviations(&dwarf.debug_abbrev) else {
            continue;
        };
        let Ok(mut tree) = header.entries_tree(&abbrevs, None) else {
            continue;
        };
        let Ok(root) = tree.root() else { continue };
        let mut children = root.children();
        while let Ok(Some(node)) = children.next() {
            let e = node.entry();
            if e.tag() != gimli::DW_TAG_structure_type {
                continue;
            }
            let Some(name) = attr_string(&dwarf, e, gimli::DW_AT_name) else {
                continue;
            };
            let Some((_, short)) = STRUCTS.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            if structs.contains_key(*short) {
                continue;
            }
            let size = e
                .attr_value(gimli::DW_AT_byte_size)
                .and_then(|v| v.udata_value())
                .unwrap_or(0);
            let mut fields = HashMap::new();
            let mut members = node.children();
            while let Ok(Some(m)) = members.next() {
                let me = m.entry();
                if me.tag() != gimli::DW_TAG_member {
                    continue;
                }
                let Some(fname) = attr_string(&dwarf, me, gimli::DW_AT_name) else {
                    continue;
                };
                let Some(offset) = me
                    .attr_value(gimli::DW_AT_data_member_location)
                    .and_then(|v| v.udata_value())
                else {
                    continue;
                };
                fields.entry(fname).or_insert(Field {
                    offset,
                    ty: String::new(),
                    size: 0,
                });
            }
            structs.insert(short.to_string(), StructLayout { size, fields });
        }
        if structs.len() == STRUCTS.len() {
            break;
        }
    }
    if STRUCTS.iter().any(|(_, s)| !structs.contains_key(*s)) {
        return None;
    }
    let minor = go_minor(version).unwrap_or(0);
    let wait_reasons = wait_reason_strings(binary)
        .or_else(|| {
            RuntimeLayout::for_version(version, arch)
                .ok()
                .map(|l| l.wait_reasons)
        })
        .unwrap_or_default();
    Some(RuntimeLayout {
        minor,
        arch,
        structs,
        wait_reasons,
    })
}

fn attr_string(
    dwarf: &gimli::Dwarf<EndianSlice<'_, RunTimeEndian>>,
    e: &gimli::DebuggingInformationEntry<EndianSlice<'_, RunTimeEndian>>,
    at: gimli::DwAt,
) -> Option<String> {
    match e.attr_value(at)? {
        AttributeValue::String(s) => Some(s.to_string_lossy().into_owned()),
        AttributeValue::DebugStrRef(off) => dwarf
            .debug_str
            .get_str(off)
            .ok()
            .map(|s| s.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// `runtime.waitReasonStrings`, a `[N]string` in .data: the names of this release's wait
/// reasons, straight from the binary.
fn wait_reason_strings(binary: &Binary) -> Option<Vec<String>> {
    let (addr, size) = binary.data_symbol_sized("runtime.waitReasonStrings")?;
    let n = (size / 16) as usize;
    if n == 0 || n > 256 {
        return None;
    }
    let table = binary.elf.bytes_at(addr, n * 16)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let w = |o: usize| u64::from_le_bytes(table[o..o + 8].try_into().unwrap_or([0; 8]));
        let (ptr, len) = (w(16 * i), w(16 * i + 8) as usize);
        let s = if len == 0 || len > 256 {
            String::new()
        } else {
            binary
                .elf
                .bytes_at(ptr, len)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        out.push(s);
    }
    out.iter().any(|s| !s.is_empty()).then_some(out)
}
