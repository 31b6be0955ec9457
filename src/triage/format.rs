//! A triage report as text: a terminal table (comfy-table), JSON (docs/json.md), Markdown
//! for a pull-request comment, JUnit XML (one test case per fingerprint) and GitHub Actions
//! workflow commands (`::error file=…,title=…::message`).

use super::{Group, Report, Status};
use crate::render::Style;

/// Examples of artifacts (or tests) shown per group before "+N more".
const EXAMPLES: usize = 3;

fn examples(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(EXAMPLES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > EXAMPLES {
        s.push_str(&format!(" (+{} more)", items.len() - EXAMPLES));
    }
    s
}

/// One line saying what was scanned and found.
pub fn summary(r: &Report) -> String {
    let f = &r.files;
    let n = |s: Status| r.groups.iter().filter(|g| g.status == s).count();
    let mut skipped = Vec::new();
    if f.skipped_binary > 0 {
        skipped.push(format!("{} binary", f.skipped_binary));
    }
    if f.skipped_special > 0 {
        skipped.push(format!("{} special", f.skipped_special));
    }
    if !r.unreadable.is_empty() {
        skipped.push(format!("{} unreadable", r.unreadable.len()));
    }
    if !r.errors.is_empty() {
        skipped.push(format!("{} damaged", r.errors.len()));
    }
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!("; skipped {}", skipped.join(", "))
    };
    format!(
        "{} logs, {} cores, {} JUnit files, {} bundles scanned in {:.2} s{skipped}: {} known bug(s), {} generic, {} unknown failure(s)",
        f.logs,
        f.cores,
        f.junit,
        f.bundles,
        r.elapsed_ms as f64 / 1000.0,
        n(Status::KnownBug),
        n(Status::Generic),
        n(Status::Unknown),
    )
}

fn seen_in(g: &Group) -> String {
    let mut s = examples(&g.artifacts);
    if !g.tests.is_empty() {
        s.push_str(&format!("\ntests: {}", examples(&g.tests)));
    }
    s
}

fn name_of(g: &Group) -> String {
    match &g.signature {
        Some(id) => format!("{id}: {}", g.title),
        None => g.title.clone(),
    }
}

/// The default: a table of groups, then the summary line.
pub fn table(r: &Report, style: Style) -> String {
    if r.groups.is_empty() {
        return format!("No failures found.\n{}", summary(r));
    }
    let history = r.groups.iter().any(|g| g.history.is_some());
    let mut header = vec![
        "COUNT",
        "STATUS",
        "FAILURE",
        "FIXED IN",
        "FINGERPRINT",
        "SEEN IN",
    ];
    if history {
        header.extend(["FIRST SEEN", "LAST SEEN", "TOTAL"]);
    }
    let mut t = style.table(&header);
    // On a terminal, wrap to its width.
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    for g in &r.groups {
        let mut row = vec![
            style.cell(g.count, false),
            style.cell(g.status.name(), g.status == Status::KnownBug),
            style.cell(name_of(g), g.status == Status::KnownBug),
            style.cell(g.fixed_in.as_deref().unwrap_or(""), false),
            style.cell(&g.fingerprint, false),
            style.cell(seen_in(g), false),
        ];
        if let Some(h) = &g.history {
            row.push(style.cell(&h.first_seen, false));
            row.push(style.cell(&h.last_seen, false));
            row.push(style.cell(format!("{} in {} run(s)", h.total_count, h.runs), false));
        } else if history {
            row.extend([
                style.cell("", false),
                style.cell("", false),
                style.cell("", false),
            ]);
        }
        t.add_row(row);
    }
    format!("{t}\n{}", summary(r))
}

/// Bumped when a field of the triage document changes meaning.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The JSON document (docs/json.md, "wedge triage").
pub fn json(r: &Report, exit_code: u8) -> String {
    let v = serde_json::json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "wedge_version": env!("CARGO_PKG_VERSION"),
        "exit_code": exit_code,
        "summary": {
            "known_bugs": r.groups.iter().filter(|g| g.status == Status::KnownBug).count(),
            "generic": r.groups.iter().filter(|g| g.status == Status::Generic).count(),
            "unknown": r.groups.iter().filter(|g| g.status == Status::Unknown).count(),
            "failures": r.groups.iter().map(|g| g.count).sum::<u64>(),
        },
        "files": r.files,
        "groups": r.groups,
        "unreadable": r.unreadable,
        "errors": r.errors,
        "elapsed_ms": r.elapsed_ms,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// A Markdown cell: no pipes or newlines that would break the table.
fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown for a pull-request comment.
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("### wedge triage\n\n");
    if r.groups.is_empty() {
        s.push_str("No failures found.\n\n");
    } else {
        let history = r.groups.iter().any(|g| g.history.is_some());
        s.push_str("| Count | Status | Failure | Fixed in | Fingerprint | Seen in |");
        s.push_str(if history {
            " First seen | Last seen | Total |\n"
        } else {
            "\n"
        });
        s.push_str("|---:|---|---|---|---|---|");
        s.push_str(if history { "---|---|---:|\n" } else { "\n" });
        for g in &r.groups {
            let status = match g.status {
                Status::KnownBug => "**known bug**",
                Status::Generic => "generic",
                Status::Unknown => "unknown",
            };
            let name = match &g.signature {
                Some(id) => format!("`{}` {}", md(id), md(&g.title)),
                None => md(&g.title),
            };
            s.push_str(&format!(
                "| {} | {status} | {name} | {} | `{}` | {} |",
                g.count,
                md(g.fixed_in.as_deref().unwrap_or("")),
                g.fingerprint,
                md(&seen_in(g))
            ));
            if let Some(h) = &g.history {
                s.push_str(&format!(
                    " {} | {} | {} in {} run(s) |",
                    h.first_seen, h.last_seen, h.total_count, h.runs
                ));
            } else if history {
                s.push_str("  |  |  |");
            }
            s.push('\n');
        }
        s.push_str("\n<details><summary>Top frames of each fingerprint</summary>\n\n");
        for g in &r.groups {
            s.push_str(&format!("- `{}` {}\n", g.fingerprint, md(&name_of(g))));
            for f in &g.frames {
                s.push_str(&format!("  - `{}`\n", f.replace('`', "'")));
            }
        }
        s.push_str("\n</details>\n\n");
    }
    s.push_str(&md(&summary(r)));
    s.push('\n');
    s
}

/// Text fit for XML: escaped, without the control characters XML 1.0 forbids.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn describe(g: &Group) -> String {
    let mut s = format!("{} ({} occurrence(s))\n", name_of(g), g.count);
    if let Some(v) = &g.fixed_in {
        s.push_str(&format!("fixed in: {v}\n"));
    }
    if !g.detail.is_empty() {
        s.push_str(&format!("detail: {}\n", g.detail));
    }
    if !g.frames.is_empty() {
        s.push_str(&format!("top frames: {}\n", g.frames.join(" <- ")));
    }
    s.push_str(&format!("seen in: {}\n", g.artifacts.join(", ")));
    if !g.tests.is_empty() {
        s.push_str(&format!("tests: {}\n", g.tests.join(", ")));
    }
    if let Some(h) = &g.history {
        s.push_str(&format!(
            "history: first seen {}, last seen {}, {} occurrence(s) in {} run(s)\n",
            h.first_seen, h.last_seen, h.total_count, h.runs
        ));
    }
    s
}

/// JUnit XML: one test case per fingerprint, each a failure.
pub fn junit(r: &Report) -> String {
    let n = r.groups.len();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuites name=\"wedge triage\" tests=\"{n}\" failures=\"{n}\" errors=\"0\">\n"
    ));
    s.push_str(&format!(
        "  <testsuite name=\"wedge triage\" tests=\"{n}\" failures=\"{n}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">\n",
        r.elapsed_ms as f64 / 1000.0
    ));
    for g in &r.groups {
        let class = match g.status {
            Status::KnownBug => "wedge.triage.known_bug",
            Status::Generic => "wedge.triage.generic",
            Status::Unknown => "wedge.triage.unknown",
        };
        s.push_str(&format!(
            "    <testcase classname=\"{class}\" name=\"{} {}\">\n",
            g.fingerprint,
            xml(&name_of(g))
        ));
        s.push_str(&format!(
            "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
            xml(&name_of(g)),
            xml(g.signature.as_deref().unwrap_or("unknown")),
            xml(&describe(g))
        ));
        s.push_str("    </testcase>\n");
    }
    s.push_str("    <system-out>");
    s.push_str(&xml(&summary(r)));
    s.push_str("</system-out>\n  </testsuite>\n</testsuites>\n");
    s
}

/// A workflow command's message: `%`, CR and LF escaped.
pub fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
pub fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions annotations: an error per fingerprint (at its first artifact), a warning
/// per file that could not be read or analyzed (the summary goes to stderr).
pub fn github(r: &Report) -> String {
    let mut s = String::new();
    for g in &r.groups {
        let file = g.artifacts.first().cloned().unwrap_or_default();
        let mut props = format!("file={}", gh_property(&file));
        if let Some(l) = g.line {
            props.push_str(&format!(",line={l}"));
        }
        let title = format!("wedge: {} [{}]", name_of(g), g.fingerprint);
        props.push_str(&format!(",title={}", gh_property(&title)));
        s.push_str(&format!(
            "::error {props}::{}\n",
            gh_data(describe(g).trim_end())
        ));
    }
    for p in r.unreadable.iter().chain(&r.errors) {
        s.push_str(&format!(
            "::warning file={},title={}::{}\n",
            gh_property(&p.path),
            gh_property("wedge triage: file skipped"),
            gh_data(&p.reason)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escapes_as_the_runner_reads_them() {
        assert_eq!(gh_data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(gh_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn xml_text_is_escaped_and_cleaned() {
        assert_eq!(
            xml("<a & 'b'>\u{1}\n"),
            "&lt;a &amp; &apos;b&apos;&gt;\u{fffd}\n"
        );
    }

    #[test]
    fn markdown_cells_keep_the_table() {
        assert_eq!(md("a|b\nc <x>"), "a\\|b c &lt;x&gt;");
    }
}
