//! A whole file as an ELF Go binary: ELF parsing, buildinfo and pclntab discovery by
//! section or by scanning, and moduledata.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(elf) = wedge::binary::elf::ElfFile::from_bytes(Arc::new(data.to_vec()), "fuzz") else { return };
    if let Ok(Some(go)) = wedge::binary::go::GoBinary::read(&elf) {
        for f in go.pclntab.funcs().take(32) {
            let _ = (f.name(), f.file_line(f.entry()));
        }
    }
});
