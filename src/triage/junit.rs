//! JUnit XML as test runners write it (`<testsuites>`/`<testsuite>` of `<testcase>`s): the
//! failure text of each failed or errored test case, for the log analyzer.
//!
//! Only what triage needs is read: a test case's `<failure>` and `<error>` (message
//! attribute and text), its `<system-out>` and `<system-err>`; a suite's own
//! `<system-out>`/`<system-err>` are attributed to the suite's name. Malformed XML is an
//! error (quick-xml checks that end tags match), never a panic.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// The text of one test case (or suite) worth scanning, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseText {
    /// `classname.name` of a test case (`name` alone without a classname); a suite's name
    /// for a suite's own output.
    pub test: String,
    /// Whether the case failed or errored (a suite's output: false).
    pub failed: bool,
    pub text: String,
}

/// Whether text starts like JUnit XML: after an optional BOM, XML declaration, comments
/// and doctype, the root element is `<testsuites` or `<testsuite`.
pub fn sniff(head: &[u8]) -> bool {
    let mut s = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    loop {
        s = s.trim_ascii_start();
        let skip_to: Option<&[u8]> = if s.starts_with(b"<?") {
            Some(b"?>")
        } else if s.starts_with(b"<!--") {
            Some(b"-->")
        } else if s.starts_with(b"<!") {
            Some(b">")
        } else {
            None
        };
        match skip_to {
            Some(end) => match memchr::memmem::find(s, end) {
                Some(i) => s = &s[i + end.len()..],
                None => return false,
            },
            None => break,
        }
    }
    for root in [&b"<testsuites"[..], b"<testsuite"] {
        if let Some(rest) = s.strip_prefix(root) {
            return rest
                .first()
                .is_none_or(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/');
        }
    }
    false
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.0 == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

#[derive(Default)]
struct Case {
    test: String,
    failed: bool,
    text: String,
}

/// Where text events go.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Sink {
    #[default]
    Nowhere,
    Case,
    Suite,
}

/// The state of one pass over a document.
#[derive(Default)]
struct Collector {
    out: Vec<CaseText>,
    /// Open suites, innermost last (suites nest in some runners' output).
    suites: Vec<Case>,
    case: Option<Case>,
    into: Sink,
    /// Depth of the element whose text is being collected (failure, error, system-*).
    text_depth: usize,
    depth: usize,
}

/// The failed test cases (with their failure text and output) and the suites' own output.
pub fn cases(xml: &str) -> Result<Vec<CaseText>, String> {
    let mut r = Reader::from_str(xml);
    let mut c = Collector::default();
    loop {
        let ev = r
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", r.error_position()))?;
        match ev {
            Event::Start(e) => {
                c.depth += 1;
                c.start(&e);
            }
            Event::Empty(e) => {
                c.depth += 1;
                c.start(&e);
                c.end(e.name().0);
                c.depth -= 1;
            }
            Event::End(e) => {
                c.end(e.name().0);
                c.depth = c.depth.saturating_sub(1);
            }
            Event::Text(t) => c.push(&t.xml10_content()),
            Event::CData(t) => c.push(&t.xml10_content()),
            Event::GeneralRef(g) => {
                let s = match g.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    _ => match &*g {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => format!("&{other};"),
                    },
                };
                c.push(&s);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if c.depth != 0 {
        return Err("malformed XML: the document ends inside an element".into());
    }
    Ok(c.out)
}

impl Collector {
    fn push(&mut self, s: &str) {
        let target = match self.into {
            Sink::Nowhere => None,
            Sink::Case => self.case.as_mut(),
            Sink::Suite => self.suites.last_mut(),
        };
        if let Some(c) = target {
            c.text.push_str(s);
        }
    }

    fn start(&mut self, e: &BytesStart<'_>) {
        match e.name().0 {
            "testsuite" => self.suites.push(Case {
                test: attr(e, "name").unwrap_or_default(),
                ..Default::default()
            }),
            "testcase" => {
                let name = attr(e, "name").unwrap_or_default();
                let test = match attr(e, "classname") {
                    Some(c) if !c.is_empty() => format!("{c}.{name}"),
                    _ => name,
                };
                self.case = Some(Case {
                    test,
                    ..Default::default()
                });
            }
            n @ ("failure" | "error" | "system-out" | "system-err")
                if self.into == Sink::Nowhere =>
            {
                if let Some(c) = self.case.as_mut()
                    && (n == "failure" || n == "error")
                {
                    c.failed = true;
                    if let Some(m) = attr(e, "message") {
                        c.text.push_str(&m);
                        c.text.push('\n');
                    }
                }
                self.into = if self.case.is_some() {
                    Sink::Case
                } else {
                    Sink::Suite
                };
                self.text_depth = self.depth;
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        if self.into != Sink::Nowhere && self.depth == self.text_depth {
            self.push("\n");
            self.into = Sink::Nowhere;
            return;
        }
        match name {
            "testcase" => {
                if let Some(c) = self.case.take()
                    && c.failed
                {
                    self.out.push(CaseText {
                        test: c.test,
                        failed: true,
                        text: c.text,
                    });
                }
            }
            "testsuite" => {
                if let Some(s) = self.suites.pop()
                    && !s.text.trim().is_empty()
                {
                    self.out.push(CaseText {
                        test: s.test,
                        failed: false,
                        text: s.text,
                    });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_roots_not_mentions() {
        assert!(sniff(b"<?xml version=\"1.0\"?>\n<testsuites name=\"x\">"));
        assert!(sniff(b"\xef\xbb\xbf<!-- gotestsum --><testsuite>"));
        assert!(!sniff(b"<testsuitex>"));
        assert!(!sniff(b"log line <testsuite>"));
        assert!(!sniff(b"<html><testsuite>"));
    }

    #[test]
    fn failed_cases_with_their_text_and_output() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="pkg/a" tests="3">
    <testcase classname="pkg/a" name="TestOK" time="0.1"/>
    <testcase classname="pkg/a" name="TestBad" time="0.2">
      <failure message="Failed &amp; more">panic: boom &lt;1&gt;<![CDATA[
goroutine 7 [running]:]]></failure>
      <system-out>out line</system-out>
    </testcase>
    <testcase name="TestErr"><error/></testcase>
    <system-err>suite stderr</system-err>
  </testsuite>
</testsuites>"#;
        let c = cases(xml).unwrap();
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c[0].test, "pkg/a.TestBad");
        assert!(c[0].failed);
        assert!(
            c[0].text
                .contains("Failed & more\npanic: boom <1>\ngoroutine 7 [running]:"),
            "{:?}",
            c[0].text
        );
        assert!(c[0].text.contains("out line"));
        assert_eq!(c[1].test, "TestErr");
        assert_eq!(c[2].test, "pkg/a");
        assert!(!c[2].failed);
        assert!(c[2].text.contains("suite stderr"));
    }

    #[test]
    fn malformed_xml_is_an_error() {
        assert!(cases("<testsuite><testcase></testsuite>").is_err());
        assert!(cases("<testsuite><testcase>").is_err());
    }
}
