//! The log scanner on arbitrary bytes, whole and in two chunks split anywhere: it must
//! return, never panic, and agree with itself however the text is cut into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wedge::log::{Scanner, scan_bytes, snapshot};

fuzz_target!(|data: &[u8]| {
    let whole = scan_bytes(data);
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut s = Scanner::new();
    s.feed(&data[..split]);
    s.feed(&data[split..]);
    let parts = s.finish();
    assert_eq!(whole.lines, parts.lines);
    assert_eq!(whole.dumps.len(), parts.dumps.len());
    assert_eq!(whole.races.len(), parts.races.len());
    assert_eq!(whole.nsexec, parts.nsexec);
    let snap = snapshot(whole, "fuzz");
    let _ = wedge::signatures::run(&snap);
});
