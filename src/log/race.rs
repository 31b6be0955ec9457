//! The race detector's reports (`-race`): from `WARNING: DATA RACE` to the closing
//! `==================`, the accesses (`Read at 0x… by goroutine N:`, `Previous write at …`)
//! and the creation stacks (`Goroutine N (running) created at:`), each with two-line frames
//! (`  pkg.func()` then `      /file.go:12 +0x…`).

use super::traceback::{file_line, function_line, parse_hex};
use crate::model::{DataRace, Frame, FrameTrust, RaceStack};

/// Whether the line belonged to the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    Taken,
    /// The closing `==================`: taken, and the report is complete.
    Done,
    /// Not part of the report; the report ended before it.
    Ended,
}

pub struct Parser {
    race: DataRace,
    pub first_line: u64,
    pub last_line: u64,
    pending: Option<String>,
}

impl Parser {
    pub fn start(line: &str, line_no: u64) -> Option<Parser> {
        (line.trim_end() == "WARNING: DATA RACE").then(|| Parser {
            race: DataRace::default(),
            first_line: line_no,
            last_line: line_no,
            pending: None,
        })
    }

    pub fn feed(&mut self, line: &str, line_no: u64) -> Fed {
        let fed = self.take(line.strip_suffix('\r').unwrap_or(line));
        if fed != Fed::Ended {
            self.last_line = line_no;
        }
        fed
    }

    fn take(&mut self, line: &str) -> Fed {
        if let Some(func) = self.pending.take() {
            let mut f = Frame::bare(0, 0, FrameTrust::Text);
            f.function = Some(func);
            if let Some((file, l, off, pc)) = file_line(line) {
                f.file = Some(file);
                f.line = l;
                f.function_offset = off;
                f.pc = pc.unwrap_or(0);
                self.push(f);
                return Fed::Taken;
            }
            self.push(f);
        }
        let t = line.trim();
        if t.is_empty() {
            return Fed::Taken;
        }
        if t.starts_with("==================") {
            return Fed::Done;
        }
        if let Some(s) = heading(t) {
            self.race.stacks.push(s);
            return Fed::Taken;
        }
        if line.starts_with(' ')
            && !self.race.stacks.is_empty()
            && let Some((func, _)) = function_line(t)
        {
            self.pending = Some(func);
            return Fed::Taken;
        }
        if t.starts_with("[failed to restore the stack]") {
            return Fed::Taken;
        }
        Fed::Ended
    }

    fn push(&mut self, f: Frame) {
        if let Some(s) = self.race.stacks.last_mut() {
            s.frames.push(f);
        }
    }

    /// The report, when it named at least one access.
    pub fn finish(mut self) -> Option<DataRace> {
        if let Some(func) = self.pending.take() {
            let mut f = Frame::bare(0, 0, FrameTrust::Text);
            f.function = Some(func);
            self.push(f);
        }
        (!self.race.stacks.is_empty()).then_some(self.race)
    }
}

/// `Read at 0x00c000012345 by goroutine 8:`, `Previous write at 0x… by main goroutine:`,
/// `Goroutine 8 (running) created at:`.
fn heading(t: &str) -> Option<RaceStack> {
    let h = t.strip_suffix(':')?;
    if let Some(rest) = h.strip_prefix("Goroutine ") {
        let (id, tail) = rest.split_once(' ')?;
        if !tail.ends_with("created at") {
            return None;
        }
        return Some(RaceStack {
            heading: h.to_string(),
            kind: "created".into(),
            goroutine: Some(id.parse().ok()?),
            ..Default::default()
        });
    }
    let (what, who) = h.rsplit_once(" by ")?;
    let goroutine = match who {
        "main goroutine" => None,
        g => Some(g.strip_prefix("goroutine ")?.parse().ok()?),
    };
    let (kind, addr) = match what.split_once(" at ") {
        Some((k, a)) => (k, Some(parse_hex(a.trim())?)),
        None => (what, None),
    };
    let k = kind.to_ascii_lowercase();
    let last = k.rsplit(' ').next()?;
    if !matches!(last, "read" | "write") {
        return None;
    }
    Some(RaceStack {
        heading: h.to_string(),
        kind: k,
        addr,
        goroutine,
        frames: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings() {
        let s = heading("Previous write at 0x00c0000a0018 by goroutine 7:").unwrap();
        assert_eq!(
            (s.kind.as_str(), s.addr, s.goroutine),
            ("previous write", Some(0xc0000a0018), Some(7))
        );
        let s = heading("Read at 0x00c0000a0018 by main goroutine:").unwrap();
        assert_eq!(s.goroutine, None);
        let s = heading("Goroutine 8 (running) created at:").unwrap();
        assert_eq!((s.kind.as_str(), s.goroutine), ("created", Some(8)));
        assert!(heading("Read the docs by goroutine 7:").is_none());
        assert!(heading("Goroutine 8 ran:").is_none());
    }
}
