//! wedge's Go readers against Go's own tools, on binaries built here: normal, stripped
//! (`-s -w`), PIE, and cgo + PIE through the external linker (no named pclntab section).

mod common;

use common::*;
use std::collections::HashMap;
use std::process::Command;
use wedge::binary::elf::ElfFile;
use wedge::binary::go::GoBinary;

fn open(path: &std::path::Path) -> ElfFile {
    let f = std::fs::File::open(path).unwrap();
    ElfFile::open(&f, &path.to_string_lossy()).unwrap()
}

fn variants() -> Vec<(&'static str, std::path::PathBuf)> {
    vec![
        (
            "normal",
            go_build("goblocked", "normal", &[], &[("CGO_ENABLED", "0")]),
        ),
        (
            "stripped",
            go_build(
                "goblocked",
                "stripped",
                &["-ldflags=-s -w"],
                &[("CGO_ENABLED", "0")],
            ),
        ),
        (
            "pie",
            go_build(
                "goblocked",
                "pie",
                &["-buildmode=pie"],
                &[("CGO_ENABLED", "0")],
            ),
        ),
        (
            "cgo-pie-external",
            go_build(
                "goblocked",
                "cgo-pie",
                &[
                    "-tags=withcgo",
                    "-buildmode=pie",
                    "-ldflags=-linkmode=external -s -w",
                ],
                &[("CGO_ENABLED", "1")],
            ),
        ),
    ]
}

/// `go tool nm` of the unstripped build: function name → address.
fn nm(path: &std::path::Path) -> HashMap<String, u64> {
    let out = Command::new("go")
        .args(["tool", "nm"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // "ADDR T NAME", where NAME may contain spaces (`type..eq.struct { … }`).
            let l = l.trim_start();
            let (addr, rest) = l.split_once(' ')?;
            let (kind, name) = rest.trim_start().split_once(' ')?;
            // ABI wrappers show as NAME.abi0 in nm; pclntab names them NAME.
            (kind == "T").then(|| {
                (
                    name.trim_end_matches(".abi0").to_string(),
                    u64::from_str_radix(addr, 16).ok(),
                )
            })
        })
        .filter_map(|(n, a)| Some((n, a?)))
        .collect()
}

#[test]
fn buildinfo_matches_go_version_m() {
    for (variant, path) in variants() {
        let elf = open(&path);
        let go = GoBinary::read(&elf).unwrap().expect("a Go binary");
        let bi = go.buildinfo.expect("buildinfo");
        let out = Command::new("go")
            .args(["version", "-m"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!(": {}", bi.go_version)),
            "{variant}: {text}"
        );
        assert_eq!(
            bi.path.as_deref(),
            Some("example.com/goblocked"),
            "{variant}"
        );
        assert_eq!(bi.main.as_ref().unwrap().path, "example.com/goblocked");
        for (k, v) in &bi.settings {
            assert!(
                text.contains(&format!("build\t{k}={v}")),
                "{variant}: {k}={v} not in {text}"
            );
        }
        assert!(!bi.settings.is_empty());
    }
}

#[test]
fn pclntab_names_lines_and_frame_sizes_match_go_tools() {
    let plain = variants().remove(0).1;
    let symbols = nm(&plain);
    assert!(symbols.contains_key("main.chanReceiver"));
    let elf = open(&plain);
    let go = GoBinary::read(&elf).unwrap().unwrap();
    let tab = &go.pclntab;
    assert!(tab.func_count() > 1000);
    // Every function go tool nm lists is found at its address, by its name.
    let mut checked = 0;
    for (name, addr) in &symbols {
        if let Some(f) = tab.func_at(*addr) {
            // pclntab keeps the runtime's printed form, which elides some type arguments
            // (`type..eq.[...]internal/cpu.option`) that the symbol table spells out.
            if f.entry() == *addr && !f.name().contains("[...]") {
                assert_eq!(f.name(), name.as_str());
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
    // file:line for a sample of pcs agrees with go tool addr2line.
    let pcs: Vec<u64> = [
        "main.main",
        "main.chanReceiver",
        "main.pipeReader",
        "runtime.gopark",
        "runtime.allgadd",
    ]
    .iter()
    .map(|n| symbols[*n] + 4)
    .collect();
    let input: String = pcs.iter().map(|p| format!("{p:#x}\n")).collect();
    let mut child = Command::new("go")
        .args(["tool", "addr2line"])
        .arg(&plain)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    for (i, pc) in pcs.iter().enumerate() {
        let f = tab.func_at(*pc).unwrap();
        let (file, line) = f.file_line(*pc).unwrap();
        assert_eq!(lines[2 * i], f.name(), "name at {pc:#x}");
        assert_eq!(
            lines[2 * i + 1],
            format!("{file}:{line}"),
            "line at {pc:#x}"
        );
        assert!(f.sp_delta(*pc).is_some_and(|d| d >= 0));
    }
}

#[test]
fn stripped_and_pie_builds_name_the_same_functions() {
    let all = variants();
    let names = |p: &std::path::Path| -> Vec<String> {
        let elf = open(p);
        let go = GoBinary::read(&elf).unwrap().unwrap();
        let mut v: Vec<String> = go
            .pclntab
            .funcs()
            .map(|f| f.name().to_string())
            .filter(|n| n.starts_with("main."))
            .collect();
        v.sort();
        v
    };
    let reference = names(&all[0].1);
    assert!(reference.contains(&"main.mutexLocker".to_string()));
    for (variant, path) in &all[1..] {
        let elf = open(path);
        assert!(
            !elf.sections.contains_key(".symtab") || *variant == "pie",
            "{variant} is stripped"
        );
        let got = names(path);
        for n in &reference {
            assert!(got.contains(n), "{variant} lacks {n}");
        }
        let go = GoBinary::read(&elf).unwrap().unwrap();
        assert!(go.moduledata.is_some(), "{variant}: moduledata found");
    }
    let ext = open(&all[3].1);
    assert!(
        !ext.sections.contains_key(".gopclntab"),
        "the external linker merged the section away"
    );
}

#[test]
fn truncated_and_corrupted_go_binaries_give_errors_not_panics() {
    let path = go_build(
        "goblocked",
        "stripped",
        &["-ldflags=-s -w"],
        &[("CGO_ENABLED", "0")],
    );
    let bytes = std::fs::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, cut) in [
        100usize,
        4096,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 100,
    ]
    .iter()
    .enumerate()
    {
        let p = dir.path().join(format!("cut{i}"));
        std::fs::write(&p, &bytes[..*cut]).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        if let Ok(elf) = ElfFile::open(&f, "cut") {
            let _ = GoBinary::read(&elf); // Ok, Ok(None) or Err: never a panic
        }
    }
    // Flip bytes all over the pclntab and buildinfo.
    let elf = open(&path);
    let pcln = elf.sections[".gopclntab"];
    let bi = elf.sections[".go.buildinfo"];
    for seed in 0..20u64 {
        let mut b = bytes.clone();
        let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (start, len) = if x & 1 == 0 {
                (pcln.offset, pcln.size)
            } else {
                (bi.offset, bi.size.min(512))
            };
            let at = (start + x % len.max(1)) as usize;
            b[at] ^= (x >> 8) as u8;
        }
        let p = dir.path().join(format!("flip{seed}"));
        std::fs::write(&p, &b).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let elf = ElfFile::open(&f, "flip").unwrap();
        if let Ok(Some(go)) = GoBinary::read(&elf) {
            for f in go.pclntab.funcs().take(2000) {
                let _ = (f.name(), f.file_line(f.entry()), f.sp_delta(f.entry()));
            }
        }
    }
}

#[test]
fn dwarf_layout_agrees_with_the_tables() {
    use wedge::goruntime::goroutines::GOffsets;
    use wedge::goruntime::layout::RuntimeLayout;
    let path = go_build("goblocked", "normal", &[], &[("CGO_ENABLED", "0")]);
    let f = std::fs::File::open(&path).unwrap();
    let binary = wedge::binary::Binary::load(&f, &path.to_string_lossy()).unwrap();
    let version = binary.go().unwrap().go_version().unwrap().to_string();
    let arch = wedge::model::Arch::X86_64;
    let dwarf = wedge::goruntime::dwarf_layout::layout(&binary, &version, arch)
        .expect("the unstripped build has DWARF");
    let table = RuntimeLayout::for_version(&version, arch).unwrap();
    assert_eq!(
        GOffsets::from_layout(&dwarf).unwrap(),
        GOffsets::from_layout(&table).unwrap()
    );
    assert_eq!(
        dwarf.offset("moduledata", "gofunc").unwrap(),
        table.offset("moduledata", "gofunc").unwrap()
    );
    // Wait reasons read from the binary's own waitReasonStrings match the table too.
    assert_eq!(dwarf.wait_reasons, table.wait_reasons);
    // The stripped build has none.
    let stripped = go_build(
        "goblocked",
        "stripped",
        &["-ldflags=-s -w"],
        &[("CGO_ENABLED", "0")],
    );
    let f = std::fs::File::open(&stripped).unwrap();
    let b = wedge::binary::Binary::load(&f, "stripped").unwrap();
    assert!(wedge::goruntime::dwarf_layout::layout(&b, &version, arch).is_none());
}
