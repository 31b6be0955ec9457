//! A pclntab header and tables from arbitrary bytes: parsing and every lookup must return,
//! never panic or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use wedge::binary::go::pclntab::{Bytes, Pclntab};

fuzz_target!(|data: &[u8]| {
    let bytes: Bytes = Arc::new(data.to_vec());
    let Some(mut tab) = Pclntab::parse_at(bytes, 0, 0x1000) else { return };
    tab.set_gofunc(0x2000);
    let read = |addr: u64, len: usize| -> Option<Vec<u8>> {
        let at = addr.checked_sub(0x1000)? as usize;
        data.get(at..at.checked_add(len)?).map(|b| b.to_vec())
    };
    for f in tab.funcs().take(64) {
        let _ = (f.name(), f.flag(), f.start_line());
        for pc in [f.entry(), f.entry() + 1, f.end().saturating_sub(1)] {
            let _ = (f.file_line(pc), f.sp_delta(pc), f.inlined_at(pc, &read));
        }
    }
    let _ = tab.func_at(tab.text_start() + 7);
});
