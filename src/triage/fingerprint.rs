//! Stable fingerprints of failures: the same bug seen in two CI runs (other goroutine ids,
//! pids, addresses, timestamps, temporary directories, line numbers) gets the same short
//! hex, and different bugs get different ones.
//!
//! A fingerprint hashes (SHA-256, first 12 hex digits) a versioned key: the signature id, or
//! for an unknown failure the normalized panic message, then the normalized names of the
//! top frames of the implicated goroutine or thread. Nothing else goes in: no addresses, no
//! file lines, no ids.

use crate::model::{Frame, Goroutine};
use sha2::{Digest, Sha256};

/// How many frames of the implicated stack the fingerprint takes.
pub const TOP_FRAMES: usize = 5;

/// Bumped when the key's recipe changes (old histories then start anew, not mix).
const RECIPE: &str = "wedge-triage-fingerprint-v1";

/// What a failure is before its frames: a catalog signature, or an unknown failure named by
/// its (normalized) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<'a> {
    Signature(&'a str),
    Unknown(&'a str),
}

/// The fingerprint of a failure: 12 lowercase hex digits.
pub fn fingerprint(key: Key<'_>, frames: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(RECIPE.as_bytes());
    h.update(b"\n");
    match key {
        Key::Signature(id) => {
            h.update(b"signature:");
            h.update(id.as_bytes());
        }
        Key::Unknown(msg) => {
            h.update(b"unknown:");
            h.update(msg.as_bytes());
        }
    }
    for f in frames {
        h.update(b"\n");
        h.update(f.as_bytes());
    }
    let digest = h.finalize();
    digest
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// The normalized function names of the top of a stack, innermost first: inlined calls
/// flattened, at most [`TOP_FRAMES`]. Frames at the top that say how the process died
/// rather than where are skipped: the Go runtime's panic and signal frames (printed or not
/// depending on GOTRACEBACK) and C library frames (`raise`, `abort`, whose names vary with
/// the libc); all of them are kept when nothing else is left.
pub fn top_frames(frames: &[Frame]) -> Vec<String> {
    pick(names_of(frames))
}

/// (name, skippable at the top) of every function of the frames, innermost first.
fn names_of(frames: &[Frame]) -> Vec<(String, bool)> {
    let mut names: Vec<(String, bool)> = Vec::new();
    for f in frames {
        let module = f
            .module
            .as_deref()
            .and_then(|m| m.rsplit('/').next())
            .unwrap_or("");
        let in_libc = module.starts_with("libc.so") || module.starts_with("libc-");
        let mut any = false;
        for n in crate::facts::go::names(f) {
            let skip = in_libc || n == "panic" || n.starts_with("runtime.");
            names.push((function_name(n), skip));
            any = true;
        }
        if !any {
            // An unnamed frame: the module's file name only (never the address or the
            // directory, which may be a temporary one).
            let sep = if module.is_empty() { "" } else { "@" };
            names.push((format!("?{sep}{module}"), in_libc));
        }
    }
    names
}

fn pick(names: Vec<(String, bool)>) -> Vec<String> {
    let first_own = names.iter().position(|(_, skip)| !skip).unwrap_or(0);
    names
        .into_iter()
        .skip(first_own)
        .take(TOP_FRAMES)
        .map(|(n, _)| n)
        .collect()
}

/// [`top_frames`] of a goroutine as the default traceback prints it: without the runtime
/// frames at its bottom (`runtime.goexit`) and without the compiler's wrapper of a
/// `go f(x)` statement (`main.spawn.func1` or `main.spawn.gowrap1` at the creator's own
/// line; the calls inlined into it stay), both of which only GOTRACEBACK=system shows.
pub fn goroutine_top_frames(g: &Goroutine) -> Vec<String> {
    let mut frames = g.frames.as_slice();
    while let Some((last, rest)) = frames.split_last() {
        if last
            .function
            .as_deref()
            .is_some_and(|n| n.starts_with("runtime."))
            && !rest.is_empty()
        {
            frames = rest;
        } else {
            break;
        }
    }
    let mut names = names_of(frames);
    if let (Some(c), Some(last)) = (&g.created_by, frames.last())
        && names.len() > 1
        && let (Some(creator), Some(f)) = (&c.function, &last.function)
        && f.strip_prefix(creator.as_str())
            .is_some_and(|s| s.starts_with(".func") || s.starts_with(".gowrap"))
        && (last.file.is_none() || (last.file == c.file && last.line == c.line))
    {
        // The frame's own function is the last name (its inlined calls come before it).
        names.pop();
    }
    pick(names)
}

/// A function name without what varies between builds and runs: hex addresses and
/// `+0x…` offsets, surrounding whitespace.
pub fn function_name(name: &str) -> String {
    let name = name.trim();
    let name = match name.find("+0x") {
        Some(i) => &name[..i],
        None => name,
    };
    replace_hex(name.trim())
}

/// A panic or fatal-error message without what varies between runs: hex numbers become
/// `0x?`, decimal numbers `N`, absolute paths under temporary directories `<tmp>`,
/// runs of whitespace one space.
pub fn message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for word in msg.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        if is_temp_path(word) {
            out.push_str("<tmp>");
            continue;
        }
        let hexless = replace_hex(word);
        let mut rest = hexless.as_str();
        let mut last_digit = false;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("0x?") {
                out.push_str("0x?");
                rest = after;
                last_digit = false;
                continue;
            }
            if c.is_ascii_digit() {
                if !last_digit {
                    out.push('N');
                }
                last_digit = true;
            } else {
                out.push(c);
                last_digit = false;
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is_temp_path(word: &str) -> bool {
    let w = word.trim_start_matches(['"', '\'', '(', '[']);
    ["/tmp/", "/var/tmp/", "/private/var/folders/", "/run/user/"]
        .iter()
        .any(|p| w.starts_with(p))
        || w.contains("/go-build")
        || w.contains("/.tmp")
}

/// Every `0x` followed by hex digits becomes `0x?`.
fn replace_hex(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'0'
            && matches!(b.get(i + 1), Some(b'x' | b'X'))
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            out.push_str("0x?");
            i = j;
        } else {
            // Copy one whole UTF-8 character.
            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FrameTrust, InlinedFrame};

    fn frame(name: Option<&str>, pc: u64) -> Frame {
        let mut f = Frame::bare(pc, 0, FrameTrust::Text);
        f.function = name.map(String::from);
        f.line = Some(pc as u32);
        f
    }

    #[test]
    fn messages_lose_numbers_addresses_and_temp_paths() {
        assert_eq!(
            message("runtime error: invalid memory address or nil pointer dereference"),
            "runtime error: invalid memory address or nil pointer dereference"
        );
        assert_eq!(
            message("test timed out after 2s\n\trunning tests:\n\t\tTestHang (2s)"),
            "test timed out after Ns running tests: TestHang (Ns)"
        );
        assert_eq!(
            message("close of nil channel at 0xc000012345 in goroutine 42"),
            "close of nil channel at 0x? in goroutine N"
        );
        assert_eq!(
            message("open /tmp/TestX123/001/config.json: no such file"),
            "open <tmp> no such file"
        );
        assert_eq!(
            message("index out of range [5] with length 3"),
            message("index out of range [17] with length 12")
        );
        assert_eq!(message("héllo 12 wörld"), "héllo N wörld");
    }

    #[test]
    fn frames_lose_runtime_top_addresses_and_lines() {
        let a = vec![
            frame(Some("runtime.gopanic"), 0x401000),
            frame(Some("runtime.panicmem"), 0x401100),
            frame(Some("runtime.sigpanic"), 0x401200),
            frame(Some("main.(*holder).read"), 0x4b4379),
            frame(Some("main.worker"), 0x4b4400),
            frame(Some("main.spawn.func1"), 0x4b4500),
        ];
        let b = vec![
            frame(Some("main.(*holder).read"), 0x4d6742),
            frame(Some("main.worker"), 0x4d6800),
            frame(Some("main.spawn.func1"), 0x4d6900),
        ];
        assert_eq!(top_frames(&a), top_frames(&b));
        assert_eq!(
            top_frames(&b),
            ["main.(*holder).read", "main.worker", "main.spawn.func1"]
        );
        // Only runtime frames: kept (a runtime-internal fault).
        let r = vec![
            frame(Some("runtime.throw"), 1),
            frame(Some("runtime.main"), 2),
        ];
        assert_eq!(top_frames(&r), ["runtime.throw", "runtime.main"]);
        // GOTRACEBACK=system names runtime.gopanic `panic`; libc's abort path is skipped.
        let mut raise = frame(Some("raise"), 3);
        raise.module = Some("/usr/lib/x86_64-linux-gnu/libc.so.6".into());
        let p = vec![frame(Some("panic"), 1), raise, frame(Some("main"), 4)];
        assert_eq!(top_frames(&p), ["main"]);
        // Inlined calls flatten innermost first; unnamed frames keep only the module's name.
        let mut inl = frame(Some("main.outer"), 9);
        inl.inlined = vec![InlinedFrame {
            function: "main.inner".into(),
            file: None,
            line: Some(3),
        }];
        let mut anon = frame(None, 0x7f00_dead_beef);
        anon.module = Some("/tmp/.tmpAbC/libfoo.so.1".into());
        assert_eq!(
            top_frames(&[inl, anon]),
            ["main.inner", "main.outer", "?@libfoo.so.1"]
        );
        // At most TOP_FRAMES.
        let many: Vec<Frame> = (0..9).map(|i| frame(Some("main.f"), i)).collect();
        assert_eq!(top_frames(&many).len(), TOP_FRAMES);
        assert_eq!(function_name(" foo+0x1c "), "foo");
        assert_eq!(function_name("thunk_0x401000"), "thunk_0x?");
    }

    #[test]
    fn fingerprints_are_short_stable_and_discriminating() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = fingerprint(Key::Signature("nil-reader-race"), &f(&["a.b", "c.d"]));
        assert_eq!(a.len(), 12);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_uppercase())
        );
        assert_eq!(
            a,
            fingerprint(Key::Signature("nil-reader-race"), &f(&["a.b", "c.d"]))
        );
        assert_ne!(
            a,
            fingerprint(Key::Signature("nil-reader-race"), &f(&["a.b"]))
        );
        assert_ne!(
            a,
            fingerprint(Key::Signature("nil-deref-crash"), &f(&["a.b", "c.d"]))
        );
        assert_ne!(
            fingerprint(Key::Unknown("x"), &[]),
            fingerprint(Key::Signature("x"), &[])
        );
        // Frames are separated: ["ab"] is not ["a", "b"].
        assert_ne!(
            fingerprint(Key::Unknown("m"), &f(&["ab"])),
            fingerprint(Key::Unknown("m"), &f(&["a", "b"]))
        );
        // The recipe is fixed: a history database depends on it (this is the first 12 hex
        // digits of sha256 of "wedge-triage-fingerprint-v1\nsignature:nil-reader-race\na.b\nc.d").
        assert_eq!(a, "7033619a4e77");
    }
}
