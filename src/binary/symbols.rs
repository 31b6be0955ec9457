//! Function symbols from .symtab and .dynsym, sorted for address lookup, with honest
//! reporting: an address past the end of the only (exported) symbol below it is named
//! "nearest export", not passed off as that function.

use crate::model::SymbolSource;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub addr: u64,
    pub size: u64,
    pub name: String,
    pub global: bool,
    /// From .dynsym (exported) rather than .symtab.
    pub dynamic: bool,
}

/// A name for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolHit<'a> {
    pub name: &'a str,
    pub offset: u64,
    pub source: SymbolSource,
}

#[derive(Debug, Clone, Default)]
pub struct SymbolTable {
    /// Sorted by address; at one address the preferred alias comes first.
    syms: Vec<Symbol>,
}

impl SymbolTable {
    /// Function symbols of an ELF image (both tables).
    pub fn from_elf(data: &[u8]) -> SymbolTable {
        let mut syms = Vec::new();
        if let Ok(elf) = goblin::elf::Elf::parse(data) {
            for (table, strtab, dynamic) in [
                (&elf.syms, &elf.strtab, false),
                (&elf.dynsyms, &elf.dynstrtab, true),
            ] {
                for s in table.iter() {
                    if s.st_type() != goblin::elf::sym::STT_FUNC
                        && s.st_type() != goblin::elf::sym::STT_GNU_IFUNC
                    {
                        continue;
                    }
                    if s.st_value == 0 || s.st_shndx == 0 {
                        continue; // undefined (imported)
                    }
                    let Some(name) = strtab.get_at(s.st_name) else {
                        continue;
                    };
                    // `__libc_start_main@@GLIBC_2.34`: the version is not part of the name.
                    let name = name.split('@').next().unwrap_or(name);
                    if name.is_empty() {
                        continue;
                    }
                    syms.push(Symbol {
                        addr: s.st_value,
                        size: s.st_size,
                        name: name.to_string(),
                        global: s.st_bind() != goblin::elf::sym::STB_LOCAL,
                        dynamic,
                    });
                }
            }
        }
        SymbolTable::new(syms)
    }

    pub fn new(mut syms: Vec<Symbol>) -> SymbolTable {
        // At one address prefer: .symtab over .dynsym (it has sizes for locals too), global
        // over local, fewer leading underscores, then the shorter name (`read` over
        // `__libc_read` and `__GI___libc_read`).
        syms.sort_by(|a, b| {
            a.addr
                .cmp(&b.addr)
                .then(b.global.cmp(&a.global))
                .then(underscores(&a.name).cmp(&underscores(&b.name)))
                .then(a.name.len().cmp(&b.name.len()))
                .then(a.dynamic.cmp(&b.dynamic))
                .then(a.name.cmp(&b.name))
        });
        syms.dedup_by(|b, a| a.addr == b.addr && a.name == b.name);
        SymbolTable { syms }
    }

    pub fn len(&self) -> usize {
        self.syms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// Whether any symbol came from .symtab (not only exports).
    pub fn has_full_table(&self) -> bool {
        self.syms.iter().any(|s| !s.dynamic)
    }

    /// The function containing `svma`.
    pub fn lookup(&self, svma: u64) -> Option<SymbolHit<'_>> {
        let idx = self.syms.partition_point(|s| s.addr <= svma);
        if idx == 0 {
            return None;
        }
        // The first symbol of the run at the greatest address <= svma is the preferred alias.
        let top = self.syms[idx - 1].addr;
        let first = self.syms[..idx].partition_point(|s| s.addr < top);
        let run = &self.syms[first..idx];
        // A sized symbol that covers the address wins; else the preferred one, honestly.
        if let Some(s) = run.iter().find(|s| s.size > 0 && svma < s.addr + s.size) {
            return Some(SymbolHit {
                name: &s.name,
                offset: svma - s.addr,
                source: if s.dynamic {
                    SymbolSource::Dynsym
                } else {
                    SymbolSource::Symtab
                },
            });
        }
        let s = &run[0];
        if s.size > 0 && !s.dynamic {
            // A .symtab symbol that ends before the address: something unnamed lies between.
            return None;
        }
        Some(SymbolHit {
            name: &s.name,
            offset: svma - s.addr,
            source: SymbolSource::NearestExport,
        })
    }

    /// Address range of a function by name.
    pub fn find(&self, name: &str) -> Option<&Symbol> {
        self.syms.iter().find(|s| s.name == name)
    }
}

fn underscores(n: &str) -> usize {
    n.bytes().take_while(|&b| b == b'_').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(addr: u64, size: u64, name: &str, global: bool, dynamic: bool) -> Symbol {
        Symbol {
            addr,
            size,
            name: name.into(),
            global,
            dynamic,
        }
    }

    #[test]
    fn prefers_the_plain_alias_and_covers_by_size() {
        let t = SymbolTable::new(vec![
            sym(0x100, 0x10, "__GI___libc_read", false, false),
            sym(0x100, 0x10, "read", true, false),
            sym(0x100, 0x10, "__libc_read", false, false),
            sym(0x200, 0x20, "after", true, false),
        ]);
        let h = t.lookup(0x105).unwrap();
        assert_eq!(
            (h.name, h.offset, h.source),
            ("read", 5, SymbolSource::Symtab)
        );
        assert!(
            t.lookup(0x150).is_none(),
            "between two sized symbols: unknown"
        );
        assert!(t.lookup(0x50).is_none());
    }

    #[test]
    fn an_export_that_does_not_cover_is_reported_as_nearest() {
        let t = SymbolTable::new(vec![sym(0x100, 0x10, "fputs", true, true)]);
        assert_eq!(t.lookup(0x108).unwrap().source, SymbolSource::Dynsym);
        let far = t.lookup(0x400).unwrap();
        assert_eq!(
            (far.name, far.source),
            ("fputs", SymbolSource::NearestExport)
        );
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn reads_libc_exports() {
        let t = SymbolTable::from_elf(&std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap());
        let read = t.find("read").unwrap();
        assert_eq!(t.lookup(read.addr + 1).unwrap().name, "read");
    }
}
