//! The prefix a log puts before each line (CI timestamps, `[job 12] `, journal
//! `Dec 02 11:00:00 host buildkitd[123]: `): learnt from a traceback's first line as a shape —
//! digit runs match any digits, space runs any spaces — and stripped from the lines after it.

/// One piece of a learnt prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// One or more ASCII digits.
    Digits,
    /// One or more spaces; at the end of the prefix exactly this many (what follows may be
    /// indented with spaces: the race detector's frames are).
    Spaces(usize),
    Byte(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prefix {
    pieces: Vec<Piece>,
    /// The journal's `program[pid]:` at the end of the prefix, if any.
    pub program: Option<String>,
    pub pid: Option<i32>,
}

impl Prefix {
    /// The shape of `text`, the bytes before a traceback's first word.
    pub fn learn(text: &[u8]) -> Prefix {
        let mut pieces = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let b = text[i];
            if b.is_ascii_digit() {
                while i < text.len() && text[i].is_ascii_digit() {
                    i += 1;
                }
                pieces.push(Piece::Digits);
            } else if b == b' ' {
                let start = i;
                while i < text.len() && text[i] == b' ' {
                    i += 1;
                }
                pieces.push(Piece::Spaces(i - start));
            } else {
                pieces.push(Piece::Byte(b));
                i += 1;
            }
        }
        let (program, pid) = journal_program(text).unzip();
        Prefix {
            pieces,
            program,
            pid,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// `line` without the prefix, or None when the line does not start with it.
    pub fn strip<'a>(&self, line: &'a [u8]) -> Option<&'a [u8]> {
        let mut i = 0;
        for (k, p) in self.pieces.iter().enumerate() {
            if let Piece::Spaces(n) = p
                && k + 1 == self.pieces.len()
            {
                if line.len() < i + n || line[i..i + n].iter().any(|&b| b != b' ') {
                    return None;
                }
                i += n;
                continue;
            }
            match p {
                Piece::Digits | Piece::Spaces(_) => {
                    let want = |b: u8| match p {
                        Piece::Digits => b.is_ascii_digit(),
                        _ => b == b' ',
                    };
                    let start = i;
                    while i < line.len() && want(line[i]) {
                        i += 1;
                    }
                    if i == start {
                        return None;
                    }
                }
                Piece::Byte(b) => {
                    if line.get(i) != Some(b) {
                        return None;
                    }
                    i += 1;
                }
            }
        }
        Some(&line[i..])
    }
}

/// `… name[123]: ` at the end of a prefix (journal and syslog lines).
fn journal_program(text: &[u8]) -> Option<(String, i32)> {
    let t = std::str::from_utf8(text).ok()?.trim_end();
    let t = t.strip_suffix("]:")?;
    let (head, pid) = t.rsplit_once('[')?;
    let pid: i32 = pid.parse().ok()?;
    let name = head.rsplit(' ').next()?;
    if name.is_empty() || pid <= 0 {
        return None;
    }
    Some((name.to_string(), pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_other_digits_still_match() {
        let p = Prefix::learn(b"2026-01-02T03:04:05.123Z ");
        assert_eq!(
            p.strip(b"2026-01-02T03:04:06.9Z \tmain.go:12"),
            Some(&b"\tmain.go:12"[..])
        );
        assert_eq!(p.strip(b"[job 1] x"), None);
        assert_eq!(p.strip(b"2026-01-02"), None);
        assert!(Prefix::learn(b"").strip(b"abc") == Some(&b"abc"[..]));
        // The indentation after the prefix is the line's own.
        assert_eq!(
            p.strip(b"2026-01-02T03:04:06.9Z   main.f()"),
            Some(&b"  main.f()"[..])
        );
    }

    #[test]
    fn journal_prefixes_name_the_program_and_pid() {
        let p = Prefix::learn(b"Dec 02 11:00:00 host buildkitd[123]: ");
        assert_eq!(p.program.as_deref(), Some("buildkitd"));
        assert_eq!(p.pid, Some(123));
        assert_eq!(
            p.strip(b"Dec  2 11:00:01 host buildkitd[123]: goroutine 1 [running]:"),
            Some(&b"goroutine 1 [running]:"[..])
        );
        assert_eq!(Prefix::learn(b"[job 12] ").pid, None);
    }
}
