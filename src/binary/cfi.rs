//! Call frame information: the unwind rule for an address, from .eh_frame (through the
//! .eh_frame_hdr search table when present) or .debug_frame, evaluated by gimli and turned
//! into a small owned [`UnwindRule`] the unwinder can apply without gimli's types.

use gimli::{
    BaseAddresses, CfaRule, DebugFrame, EhFrame, EhFrameHdr, LittleEndian, RegisterRule,
    UnwindContext, UnwindSection,
};

/// How to find a register's value in the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegRule {
    Undefined,
    SameValue,
    /// Saved at CFA + n.
    Offset(i64),
    /// Is CFA + n.
    ValOffset(i64),
    /// Is in another register.
    Register(u16),
    /// A DWARF expression wedge does not evaluate.
    Unsupported,
}

/// The unwind rule of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwindRule {
    /// CFA = register + offset; None when the CFA is a DWARF expression.
    pub cfa: Option<(u16, i64)>,
    /// Rules for the registers the row names; others keep their value (callee-saved) or
    /// are unknown (caller-saved).
    pub regs: Vec<(u16, RegRule)>,
}

impl UnwindRule {
    pub fn rule(&self, reg: u16) -> Option<RegRule> {
        self.regs
            .iter()
            .find(|(r, _)| *r == reg)
            .map(|(_, rule)| *rule)
    }
}

/// Where a binary's CFI sections lie, as (virtual address, file bytes).
pub struct CfiSections<'a> {
    pub eh_frame: Option<(u64, &'a [u8])>,
    pub eh_frame_hdr: Option<(u64, &'a [u8])>,
    pub debug_frame: Option<&'a [u8]>,
    pub text: Option<u64>,
    pub got: Option<u64>,
}

/// Reusable scratch space for rule evaluation.
pub struct CfiScratch {
    ctx: Box<UnwindContext<usize>>,
}

impl Default for CfiScratch {
    fn default() -> Self {
        CfiScratch {
            ctx: Box::new(UnwindContext::new()),
        }
    }
}

impl CfiSections<'_> {
    /// The unwind rule for `svma` (an address in the binary's own address space).
    pub fn rule(&self, svma: u64, scratch: &mut CfiScratch) -> Option<UnwindRule> {
        let mut bases = BaseAddresses::default();
        if let Some(t) = self.text {
            bases = bases.set_text(t);
        }
        if let Some(g) = self.got {
            bases = bases.set_got(g);
        }
        if let Some((addr, bytes)) = self.eh_frame {
            bases = bases.set_eh_frame(addr);
            let eh = EhFrame::new(bytes, LittleEndian);
            let row = match self.eh_frame_hdr {
                Some((hdr_addr, hdr_bytes)) => {
                    let hb = bases.clone().set_eh_frame_hdr(hdr_addr);
                    EhFrameHdr::new(hdr_bytes, LittleEndian)
                        .parse(&hb, 8)
                        .ok()
                        .and_then(|parsed| {
                            let table = parsed.table()?;
                            table
                                .unwind_info_for_address(
                                    &eh,
                                    &hb,
                                    &mut scratch.ctx,
                                    svma,
                                    EhFrame::cie_from_offset,
                                )
                                .ok()
                                .map(convert)
                        })
                }
                None => None,
            };
            let row = row.or_else(|| {
                eh.unwind_info_for_address(&bases, &mut scratch.ctx, svma, EhFrame::cie_from_offset)
                    .ok()
                    .map(convert)
            });
            if row.is_some() {
                return row;
            }
        }
        if let Some(bytes) = self.debug_frame {
            let mut df = DebugFrame::new(bytes, LittleEndian);
            df.set_address_size(8);
            return df
                .unwind_info_for_address(
                    &bases,
                    &mut scratch.ctx,
                    svma,
                    DebugFrame::cie_from_offset,
                )
                .ok()
                .map(convert);
        }
        None
    }
}

fn convert<S: gimli::UnwindContextStorage<usize>>(
    row: &gimli::UnwindTableRow<usize, S>,
) -> UnwindRule {
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => Some((register.0, *offset)),
        CfaRule::Expression(_) => None,
    };
    let regs = row
        .registers()
        .map(|(reg, rule)| {
            let r = match rule {
                RegisterRule::Undefined => RegRule::Undefined,
                RegisterRule::SameValue => RegRule::SameValue,
                RegisterRule::Offset(n) => RegRule::Offset(*n),
                RegisterRule::ValOffset(n) => RegRule::ValOffset(*n),
                RegisterRule::Register(r) => RegRule::Register(r.0),
                _ => RegRule::Unsupported,
            };
            (reg.0, r)
        })
        .collect();
    UnwindRule { cfa, regs }
}
