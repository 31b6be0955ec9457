//! The module text of .go.buildinfo from arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wedge::binary::go::buildinfo::parse_blob_bytes(data);
});
