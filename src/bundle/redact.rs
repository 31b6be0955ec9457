//! Redaction while collecting: values whose names look secret (environment variables,
//! command-line options, config keys, `key=value` text) become `<redacted: N bytes>`.
//!
//! Every value redacted at its site is also remembered, so a last pass over each member of
//! the bundle ([`Redactor::scrub`]) removes the same secret wherever else it turned up (a
//! child's command line, a log line, a finding's text).

use std::collections::BTreeSet;

/// Secrets shorter than this are redacted where they stand but not searched for elsewhere:
/// a short value (`1`, `true`) would match everywhere.
const MIN_SCRUB_LEN: usize = 6;

/// Substrings of a lowercased name that mark its value as secret.
const SECRET_WORDS: [&str; 8] = [
    "key",
    "secret",
    "token",
    "passw",
    "credential",
    "auth",
    "cookie",
    "private",
];

/// Whether a variable, option or config key names a secret: `AWS_*`, or a name containing
/// key, secret, token, password, credential, auth, cookie or private.
pub fn secret_name(name: &str) -> bool {
    let name = name.trim_start_matches('-').trim();
    if name.is_empty() {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    lower.starts_with("aws_") || SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// The replacement text for a secret of `len` bytes.
pub fn mark(len: usize) -> String {
    format!("<redacted: {len} bytes>")
}

/// Redacts as it goes and remembers what it redacted. `enabled: false` (`--no-redact`)
/// passes everything through.
#[derive(Debug, Default)]
pub struct Redactor {
    enabled: bool,
    secrets: BTreeSet<Vec<u8>>,
    /// How many values were redacted at their site.
    pub count: usize,
}

impl Redactor {
    pub fn new(enabled: bool) -> Redactor {
        Redactor {
            enabled,
            ..Redactor::default()
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Redacts one value: returns the mark and remembers the value.
    fn take(&mut self, value: &[u8]) -> String {
        self.count += 1;
        if value.len() >= MIN_SCRUB_LEN {
            self.secrets.insert(value.to_vec());
        }
        mark(value.len())
    }

    /// `NAME=value` (an environment entry, a `-e NAME=value` argument, an entry of an OCI
    /// config's `process.env`): the value is redacted when the name looks secret.
    pub fn assignment(&mut self, entry: &str) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let (name, value) = entry.split_once('=')?;
        if name.is_empty() || name.contains(char::is_whitespace) || !secret_name(name) {
            return None;
        }
        Some(format!("{name}={}", self.take(value.as_bytes())))
    }

    /// /proc/PID/environ: NUL-separated `NAME=value` entries.
    pub fn environ(&mut self, raw: &[u8]) -> Vec<u8> {
        if !self.enabled {
            return raw.to_vec();
        }
        let mut out = Vec::with_capacity(raw.len());
        for (i, entry) in raw.split(|&b| b == 0).enumerate() {
            if i > 0 {
                out.push(0);
            }
            match std::str::from_utf8(entry)
                .ok()
                .and_then(|e| self.assignment(e))
            {
                Some(r) => out.extend_from_slice(r.as_bytes()),
                None => out.extend_from_slice(entry),
            }
        }
        out
    }

    /// A command line: `--password=x`, `--token x`, `NAME=x` and URLs with a password.
    pub fn args(&mut self, args: &[String]) -> Vec<String> {
        if !self.enabled {
            return args.to_vec();
        }
        let mut out = Vec::with_capacity(args.len());
        let mut next_is_secret = false;
        for a in args {
            if next_is_secret && !a.starts_with('-') {
                next_is_secret = false;
                out.push(self.take(a.as_bytes()));
                continue;
            }
            next_is_secret = false;
            if let Some(flag) = a.strip_prefix('-') {
                if let Some((name, value)) = flag.split_once('=') {
                    if secret_name(name) {
                        out.push(format!("-{name}={}", self.take(value.as_bytes())));
                        continue;
                    }
                } else if secret_name(flag) {
                    next_is_secret = true;
                }
                out.push(self.url_password(a));
                continue;
            }
            match self.assignment(a) {
                Some(r) => out.push(r),
                None => out.push(self.url_password(a)),
            }
        }
        out
    }

    /// `scheme://user:password@host…`: the password part.
    fn url_password(&mut self, s: &str) -> String {
        let Some(scheme_end) = s.find("://") else {
            return s.to_string();
        };
        let rest = &s[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            return s.to_string();
        };
        let Some(colon) = rest[..at].find(':') else {
            return s.to_string();
        };
        let password = &rest[colon + 1..at];
        if password.is_empty() {
            return s.to_string();
        }
        let start = scheme_end + 3 + colon + 1;
        let marked = self.take(password.as_bytes());
        format!("{}{}{}", &s[..start], marked, &s[start + password.len()..])
    }

    /// A JSON document: values under secret-looking keys, and secret `NAME=value` strings in
    /// arrays (an OCI config's `process.env`). Not JSON: treated as text.
    pub fn config(&mut self, raw: &[u8]) -> Vec<u8> {
        if !self.enabled {
            return raw.to_vec();
        }
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(raw) {
            self.json_value(&mut v, false);
            let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
            out.push(b'\n');
            return out;
        }
        self.text(raw)
    }

    fn json_value(&mut self, v: &mut serde_json::Value, secret: bool) {
        use serde_json::Value;
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    self.json_value(child, secret || secret_name(k));
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|c| self.json_value(c, secret)),
            Value::String(s) if secret => *s = self.take(s.as_bytes()),
            Value::String(s) => {
                if let Some(r) = self.assignment(s) {
                    *s = r;
                } else {
                    let r = self.url_password(s);
                    *s = r;
                }
            }
            Value::Number(n) if secret => *v = Value::String(self.take(n.to_string().as_bytes())),
            _ => {}
        }
    }

    /// Text, line by line: `key: value`, `key = value`, `key=value`, `export KEY=value`,
    /// `"key": "value"` and logfmt pairs (`token=x other=y`), when the key looks secret.
    pub fn text(&mut self, raw: &[u8]) -> Vec<u8> {
        if !self.enabled {
            return raw.to_vec();
        }
        let mut out = Vec::with_capacity(raw.len());
        for (i, line) in raw.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            match std::str::from_utf8(line) {
                Ok(l) => {
                    let r = self.line(l);
                    out.extend_from_slice(r.as_bytes());
                }
                Err(_) => out.extend_from_slice(line),
            }
        }
        out
    }

    fn line(&mut self, line: &str) -> String {
        // Fast path: no separator, nothing to do.
        if !line.contains(['=', ':']) {
            return line.to_string();
        }
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(pos) = rest.find(['=', ':']) {
            let (before, after) = rest.split_at(pos);
            let sep = &after[..1];
            let after = &after[1..];
            // A URL's "://" is not a key separator.
            if sep == ":" && after.starts_with("//") {
                out.push_str(before);
                out.push_str(sep);
                rest = after;
                continue;
            }
            let key = before
                .trim_end()
                .trim_end_matches('"')
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
                .next()
                .unwrap_or("");
            out.push_str(before);
            out.push_str(sep);
            if key.is_empty() || !secret_name(key.rsplit('.').next().unwrap_or(key)) {
                rest = after;
                continue;
            }
            // The value: a quoted string, or up to whitespace / a comma / a closing brace.
            let lead = after.len() - after.trim_start().len();
            out.push_str(&after[..lead]);
            let v = &after[lead..];
            let (value, tail) = if let Some(q) = v.strip_prefix('"') {
                match q.find('"') {
                    Some(end) => (&q[..end], &q[end..]),
                    None => (q, ""),
                }
            } else if let Some(q) = v.strip_prefix('\'') {
                match q.find('\'') {
                    Some(end) => (&q[..end], &q[end..]),
                    None => (q, ""),
                }
            } else {
                let end = v
                    .find(|c: char| c.is_whitespace() || c == ',' || c == '}' || c == ';')
                    .unwrap_or(v.len());
                (&v[..end], &v[end..])
            };
            if v.starts_with(['"', '\'']) {
                out.push_str(&v[..1]);
            }
            if value.is_empty() {
                rest = tail;
                continue;
            }
            out.push_str(&self.take(value.as_bytes()));
            rest = tail;
        }
        out.push_str(rest);
        self.url_password(&out)
    }

    /// The last pass over a member: every secret redacted anywhere is removed here too.
    pub fn scrub(&self, data: &[u8]) -> Vec<u8> {
        if !self.enabled || self.secrets.is_empty() {
            return data.to_vec();
        }
        let mut out = data.to_vec();
        // Longest first, so a secret containing another is removed whole.
        let mut secrets: Vec<&Vec<u8>> = self.secrets.iter().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in secrets {
            if memchr::memmem::find(&out, s).is_none() {
                continue;
            }
            let m = mark(s.len());
            let mut next = Vec::with_capacity(out.len());
            let mut last = 0;
            for at in memchr::memmem::find_iter(&out, s) {
                if at < last {
                    continue;
                }
                next.extend_from_slice(&out[last..at]);
                next.extend_from_slice(m.as_bytes());
                last = at + s.len();
            }
            next.extend_from_slice(&out[last..]);
            out = next;
        }
        out
    }

    /// The secrets remembered so far (for the final check that none is left).
    pub fn secrets(&self) -> impl Iterator<Item = &[u8]> {
        self.secrets.iter().map(|s| s.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in [
            "AWS_SECRET_ACCESS_KEY",
            "aws_region",
            "GITHUB_TOKEN",
            "--password",
            "api_key",
            "REGISTRY_AUTH_FILE",
            "db.passwd",
            "client-secret",
            "Credentials",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in [
            "PATH",
            "HOME",
            "PWD",
            "XDG_SESSION_ID",
            "--root",
            "log-level",
            "",
            "--",
            "image",
        ] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn environ_entries() {
        let mut r = Redactor::new(true);
        let out = r.environ(b"PATH=/bin\0API_TOKEN=abcdef123\0EMPTY=\0=odd\0");
        assert_eq!(
            out,
            b"PATH=/bin\0API_TOKEN=<redacted: 9 bytes>\0EMPTY=\0=odd\0".to_vec()
        );
        assert_eq!(r.count, 1);
    }

    #[test]
    fn command_lines() {
        let mut r = Redactor::new(true);
        let args: Vec<String> = [
            "podman",
            "--password=hunter22",
            "--token",
            "tok-1234567",
            "-e",
            "DB_PASSWORD=pw123456",
            "--log-level",
            "debug",
            "https://user:s3cretpw@registry.example/v2",
            "--creds",
            "--root",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = r.args(&args);
        assert_eq!(
            out,
            vec![
                "podman",
                "--password=<redacted: 8 bytes>",
                "--token",
                "<redacted: 11 bytes>",
                "-e",
                "DB_PASSWORD=<redacted: 8 bytes>",
                "--log-level",
                "debug",
                "https://user:<redacted: 8 bytes>@registry.example/v2",
                "--creds",
                "--root",
            ]
        );
    }

    #[test]
    fn json_config() {
        let mut r = Redactor::new(true);
        let raw = br#"{"process":{"env":["PATH=/usr/bin","AWS_SESSION_TOKEN=zzzzzzzz"]},
            "auth":{"user":"u","pass":"nested-secret"},"port":80,"apiKey":12345678}"#;
        let out = String::from_utf8(r.config(raw)).unwrap();
        assert!(out.contains("PATH=/usr/bin"));
        assert!(out.contains("AWS_SESSION_TOKEN=<redacted: 8 bytes>"));
        assert!(!out.contains("nested-secret"));
        assert!(!out.contains("12345678"));
        assert!(out.contains("\"port\": 80"));
    }

    #[test]
    fn text_config_and_log_lines() {
        let mut r = Redactor::new(true);
        let raw = b"# comment\nexport GH_TOKEN=ghp_abcdef\npassword: \"p a s s\"\n\
            level=error msg=\"pull failed\" token=abc123xyz user=bob\n\
            url = https://x:pw123456@h/\nname = web\n";
        let out = String::from_utf8(r.text(raw)).unwrap();
        assert!(!out.contains("ghp_abcdef"), "{out}");
        assert!(!out.contains("p a s s"), "{out}");
        assert!(!out.contains("abc123xyz"), "{out}");
        assert!(!out.contains("pw123456"), "{out}");
        assert!(out.contains("user=bob"), "{out}");
        assert!(out.contains("name = web"), "{out}");
        assert!(out.contains("msg=\"pull failed\""), "{out}");
        assert!(out.contains("password: \"<redacted: 7 bytes>\""), "{out}");
    }

    #[test]
    fn scrub_removes_a_secret_everywhere() {
        let mut r = Redactor::new(true);
        r.assignment("MY_SECRET=topsecretvalue");
        let out = r.scrub(b"a topsecretvalue b topsecretvalue");
        assert_eq!(
            out,
            b"a <redacted: 14 bytes> b <redacted: 14 bytes>".to_vec()
        );
    }

    #[test]
    fn disabled_passes_through() {
        let mut r = Redactor::new(false);
        assert_eq!(r.environ(b"TOKEN=x"), b"TOKEN=x".to_vec());
        assert_eq!(r.args(&["--token=x".into()]), vec!["--token=x".to_string()]);
        assert_eq!(r.scrub(b"abc"), b"abc".to_vec());
    }
}
