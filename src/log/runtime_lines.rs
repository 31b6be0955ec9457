//! Single log lines of container tools: runc's nsexec lines (`nsexec-1[4242]: failed to sync
//! with stage-1: next state: Bad file descriptor`, bare or inside runc's `msg="…"`) and the
//! logrus text lines of runc, podman and buildkit (`time="…" level=error msg="…"`).

use crate::model::{LogMessage, NsexecLine};

/// The nsexec line inside `line`, if any.
pub fn nsexec(line: &str, line_no: u64) -> Option<NsexecLine> {
    let at = line.find("nsexec-")?;
    let rest = &line[at + "nsexec-".len()..];
    let (stage, rest) = rest.split_once('[')?;
    let (pid, rest) = rest.split_once("]:")?;
    let stage: u32 = stage.parse().ok()?;
    let pid: i32 = pid.parse().ok()?;
    let mut message = rest.trim_start();
    // Inside logrus's msg="…": the message ends at the closing quote.
    if line[..at].ends_with("msg=\"") {
        message = quoted_end(message);
    }
    Some(NsexecLine {
        line: line_no,
        stage,
        pid,
        message: message.replace("\\\"", "\""),
    })
}

/// The text up to the first unescaped `"`.
fn quoted_end(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return &s[..i],
            _ => i += 1,
        }
    }
    s
}

/// A logrus text line at error level or worse: `level=error msg="…"`.
pub fn logrus_error(line: &str, line_no: u64) -> Option<LogMessage> {
    let at = line.find("level=")?;
    let rest = &line[at + "level=".len()..];
    let level = rest.split(' ').next()?.trim_matches('"');
    if !matches!(level, "error" | "fatal" | "panic") {
        return None;
    }
    let m = line.find("msg=")?;
    let msg = &line[m + "msg=".len()..];
    let message = match msg.strip_prefix('"') {
        Some(q) => quoted_end(q).replace("\\\"", "\""),
        None => msg.split(' ').next().unwrap_or_default().to_string(),
    };
    Some(LogMessage {
        line: line_no,
        level: level.to_string(),
        message,
        program: None,
        pid: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsexec_lines_bare_and_in_logrus() {
        let n = nsexec("nsexec-0[4242]: -> stage-1 synchronisation loop", 3).unwrap();
        assert_eq!((n.stage, n.pid, n.line), (0, 4242, 3));
        assert_eq!(n.message, "-> stage-1 synchronisation loop");
        let n = nsexec(
            r#"time="2026-01-02T03:04:05Z" level=error msg="nsexec-1[4242]: failed to sync with stage-1: next state: Bad file descriptor" func=x"#,
            9,
        )
        .unwrap();
        assert_eq!((n.stage, n.pid), (1, 4242));
        assert_eq!(
            n.message,
            "failed to sync with stage-1: next state: Bad file descriptor"
        );
        assert!(nsexec("nsexec-x[1]: y", 1).is_none());
        assert!(nsexec("nsexec-1[", 1).is_none());
    }

    #[test]
    fn logrus_errors_only() {
        let m = logrus_error(
            r#"time="2026-01-02T03:04:05Z" level=error msg="runc run failed: \"x\"""#,
            1,
        )
        .unwrap();
        assert_eq!(m.message, r#"runc run failed: "x""#);
        assert!(logrus_error(r#"level=info msg="ok""#, 1).is_none());
        assert_eq!(
            logrus_error("level=fatal msg=boom", 1).unwrap().message,
            "boom"
        );
    }
}
