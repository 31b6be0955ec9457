//! Compressed core files as systemd-coredump stores them (`core.….zst`, `.lz4`, `.xz`):
//! recognized by their magic bytes, not their name, and inflated by streaming into an
//! unnamed temporary file, which is then mapped like any core — memory use stays small
//! whatever the core's size, and nothing is left on disk.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// A compression format wedge opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Lz4,
    Xz,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Xz => "xz",
        }
    }

    /// The format of a file starting with `head`, if it is one of the three.
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            Some(Compression::Lz4)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Compression::Xz)
        } else {
            None
        }
    }
}

/// Inflates `input` (of format `c`) into an unnamed temporary file in `tmp_dir`, rewound.
/// Errors name the format and what failed (a truncated or damaged stream, a full disk).
pub fn inflate(c: Compression, input: File, tmp_dir: &Path) -> std::io::Result<(File, u64)> {
    let mut out = tempfile::tempfile_in(tmp_dir)?;
    let input = std::io::BufReader::with_capacity(1 << 20, input);
    let mut reader: Box<dyn Read> = match c {
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(input)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} stream damaged or truncated after {total} bytes: {e}",
                        c.name()
                    ),
                ));
            }
        };
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    out.flush()?;
    out.seek(SeekFrom::Start(0))?;
    Ok((out, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
        match c {
            Compression::Zstd => zstd::encode_all(data, 3).unwrap(),
            Compression::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 3);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    fn file_of(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f
    }

    #[test]
    fn each_format_is_sniffed_and_inflated_and_damage_is_an_error() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        for c in [Compression::Zstd, Compression::Lz4, Compression::Xz] {
            let packed = compress(c, &data);
            assert_eq!(Compression::sniff(&packed), Some(c));
            let (mut f, n) = inflate(c, file_of(&packed), &std::env::temp_dir()).unwrap();
            assert_eq!(n, data.len() as u64);
            let mut back = Vec::new();
            f.read_to_end(&mut back).unwrap();
            assert!(back == data, "{} round trip", c.name());
            let cut = &packed[..packed.len() / 2];
            let e = inflate(c, file_of(cut), &std::env::temp_dir()).unwrap_err();
            assert!(e.to_string().contains(c.name()), "{e}");
        }
        assert_eq!(Compression::sniff(b"\x7fELF\x02\x01"), None);
        assert_eq!(Compression::sniff(b""), None);
    }
}
