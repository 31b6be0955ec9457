//! Call frame information: the unwind rule for an address, from .eh_frame (through the
//! .eh_frame_hdr search table when present) or .debug_frame, evaluated by gimli and turned
//! into a small owned [`UnwindRule`] the unwinder can apply without gimli's types; and the
//! evaluation of the DWARF expressions such rules may carry (PLT stubs' CFA, for one).

use gimli::{
    BaseAddresses, DebugFrame, EhFrame, EhFrameHdr, LittleEndian, RegisterRule, UnwindContext,
    UnwindSection,
};

/// How to find the canonical frame address (the caller's stack pointer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfaRule {
    /// CFA = register + offset.
    RegisterOffset(u16, i64),
    /// CFA = the value of this DWARF expression (DW_CFA_def_cfa_expression).
    Expression(Vec<u8>),
}

/// How to find a register's value in the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegRule {
    Undefined,
    SameValue,
    /// Saved at CFA + n.
    Offset(i64),
    /// Is CFA + n.
    ValOffset(i64),
    /// Is in another register.
    Register(u16),
    /// Saved at the address this DWARF expression computes (CFA pushed first).
    Expression(Vec<u8>),
    /// Is the value this DWARF expression computes (CFA pushed first).
    ValExpression(Vec<u8>),
    /// Is this constant.
    Constant(u64),
    /// A rule wedge does not apply (architecture-specific).
    Unsupported,
}

/// The unwind rule of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwindRule {
    pub cfa: CfaRule,
    /// Rules for the registers the row names; others keep their value (callee-saved) or
    /// are unknown (caller-saved).
    pub regs: Vec<(u16, RegRule)>,
}

impl UnwindRule {
    pub fn rule(&self, reg: u16) -> Option<&RegRule> {
        self.regs
            .iter()
            .find(|(r, _)| *r == reg)
            .map(|(_, rule)| rule)
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
                                .map(|row| convert(row, &eh))
                        })
                }
                None => None,
            };
            let row = row.or_else(|| {
                eh.unwind_info_for_address(&bases, &mut scratch.ctx, svma, EhFrame::cie_from_offset)
                    .ok()
                    .map(|row| convert(row, &eh))
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
                .map(|row| convert(row, &df));
        }
        None
    }
}

fn convert<'a, S, U>(row: &gimli::UnwindTableRow<usize, S>, section: &U) -> UnwindRule
where
    S: gimli::UnwindContextStorage<usize>,
    U: UnwindSection<gimli::EndianSlice<'a, LittleEndian>>,
{
    let bytes = |e: &gimli::UnwindExpression<usize>| -> Option<Vec<u8>> {
        e.get(section).ok().map(|x| x.0.slice().to_vec())
    };
    let cfa = match row.cfa() {
        gimli::CfaRule::RegisterAndOffset { register, offset } => {
            CfaRule::RegisterOffset(register.0, *offset)
        }
        gimli::CfaRule::Expression(e) => CfaRule::Expression(bytes(e).unwrap_or_default()),
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
                RegisterRule::Expression(e) => {
                    bytes(e).map_or(RegRule::Unsupported, RegRule::Expression)
                }
                RegisterRule::ValExpression(e) => {
                    bytes(e).map_or(RegRule::Unsupported, RegRule::ValExpression)
                }
                RegisterRule::Constant(c) => RegRule::Constant(*c),
                _ => RegRule::Unsupported,
            };
            (reg.0, r)
        })
        .collect();
    UnwindRule { cfa, regs }
}

/// Why a DWARF expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("malformed DWARF expression: {0}")]
    Malformed(String),
    #[error("DWARF expression reads register {0}, whose value is unknown")]
    RegisterUnknown(u16),
    #[error("DWARF expression reads memory at {0:#x}, which was not captured")]
    MemoryNotCaptured(u64),
    #[error("DWARF expression needs {0}, which an unwinder does not have")]
    Unsupported(&'static str),
}

/// Evaluates a CFI DWARF expression to a value: `initial` is pushed first (the CFA, for
/// DW_CFA_expression and DW_CFA_val_expression), `register` gives a register by DWARF
/// number, `memory` reads `size` (1..=8) bytes little-endian. Bounded: a looping expression
/// is an error, not a hang.
pub fn evaluate_expression(
    expr: &[u8],
    initial: Option<u64>,
    register: &dyn Fn(u16) -> Option<u64>,
    memory: &dyn Fn(u64, u8) -> Option<u64>,
) -> Result<u64, ExprError> {
    use gimli::{EvaluationResult, Value};
    let malformed = |e: gimli::Error| ExprError::Malformed(e.to_string());
    let encoding = gimli::Encoding {
        format: gimli::Format::Dwarf32,
        version: 4,
        address_size: 8,
    };
    let mut eval =
        gimli::Expression(gimli::EndianSlice::new(expr, LittleEndian)).evaluation(encoding);
    eval.set_max_iterations(1000);
    if let Some(v) = initial {
        eval.set_initial_value(v);
    }
    let mut state = eval.evaluate().map_err(malformed)?;
    loop {
        state = match state {
            EvaluationResult::Complete => break,
            EvaluationResult::RequiresRegister { register: r, .. } => {
                let v = register(r.0).ok_or(ExprError::RegisterUnknown(r.0))?;
                eval.resume_with_register(Value::Generic(v))
                    .map_err(malformed)?
            }
            EvaluationResult::RequiresMemory { address, size, .. } => {
                if size == 0 || size > 8 {
                    return Err(ExprError::Unsupported("a memory read wider than 8 bytes"));
                }
                let v = memory(address, size).ok_or(ExprError::MemoryNotCaptured(address))?;
                eval.resume_with_memory(Value::Generic(v))
                    .map_err(malformed)?
            }
            EvaluationResult::RequiresRelocatedAddress(a) => {
                eval.resume_with_relocated_address(a).map_err(malformed)?
            }
            EvaluationResult::RequiresFrameBase => {
                return Err(ExprError::Unsupported("a frame base"));
            }
            EvaluationResult::RequiresTls(_) => {
                return Err(ExprError::Unsupported("thread-local storage"));
            }
            EvaluationResult::RequiresCallFrameCfa => {
                return Err(ExprError::Unsupported("the CFA inside a CFA rule"));
            }
            _ => return Err(ExprError::Unsupported("an operation outside CFI")),
        };
    }
    let pieces = eval.result();
    match pieces.as_slice() {
        [p] => match &p.location {
            gimli::Location::Address { address } => Ok(*address),
            gimli::Location::Value { value } => value.to_u64(u64::MAX).map_err(malformed),
            _ => Err(ExprError::Unsupported(
                "a location that is not an address or value",
            )),
        },
        _ => Err(ExprError::Unsupported("a composite location")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(r: u16) -> Option<u64> {
        match r {
            7 => Some(0x7fff_1000), // rsp
            16 => Some(0x40_102c),  // rip
            6 => Some(0x7fff_2000), // rbp
            _ => None,
        }
    }

    fn no_memory(_: u64, _: u8) -> Option<u64> {
        None
    }

    /// The CFA rule binutils emits for every 16-byte PLT entry: rsp + 8, plus 8 more once
    /// the entry has pushed its relocation index (rip & 15 >= 11).
    const PLT_CFA: [u8; 11] = [
        0x77, 0x08, // DW_OP_breg7 (rsp) 8
        0x80, 0x00, // DW_OP_breg16 (rip) 0
        0x3f, // DW_OP_lit15
        0x1a, // DW_OP_and
        0x3b, // DW_OP_lit11
        0x2a, // DW_OP_ge
        0x33, // DW_OP_lit3
        0x24, // DW_OP_shl
        0x22, // DW_OP_plus
    ];

    #[test]
    fn plt_cfa_expression() {
        // rip & 15 = 0xc >= 11: the push happened.
        assert_eq!(
            evaluate_expression(&PLT_CFA, None, &regs, &no_memory),
            Ok(0x7fff_1000 + 16)
        );
        let early = |r: u16| if r == 16 { Some(0x40_1024) } else { regs(r) };
        assert_eq!(
            evaluate_expression(&PLT_CFA, None, &early, &no_memory),
            Ok(0x7fff_1000 + 8)
        );
    }

    #[test]
    fn expressions_read_registers_memory_and_the_pushed_cfa() {
        // DW_OP_breg6 (rbp) -8; DW_OP_deref: a CFA stored in the frame (as glibc's
        // hand-written assembly sometimes describes it).
        let mem = |a: u64, size: u8| (a == 0x7fff_1ff8 && size == 8).then_some(0x7fff_3000);
        assert_eq!(
            evaluate_expression(&[0x76, 0x78, 0x06], None, &regs, &mem),
            Ok(0x7fff_3000)
        );
        // DW_CFA_expression's DW_OP_plus_uconst 16 on the pushed CFA.
        assert_eq!(
            evaluate_expression(&[0x23, 0x10], Some(0x1000), &regs, &no_memory),
            Ok(0x1010)
        );
    }

    #[test]
    fn bad_expressions_are_errors() {
        assert_eq!(
            evaluate_expression(&[0x75, 0x00], None, &regs, &no_memory),
            Err(ExprError::RegisterUnknown(5))
        );
        assert!(matches!(
            evaluate_expression(&[0x76, 0x00, 0x06], None, &regs, &no_memory),
            Err(ExprError::MemoryNotCaptured(0x7fff_2000))
        ));
        // Truncated operand, unknown opcode, a loop to itself, an empty stack.
        for bad in [&[0x77][..], &[0xff], &[0x2f, 0xfd, 0xff], &[0x22]] {
            assert!(
                evaluate_expression(bad, None, &regs, &no_memory).is_err(),
                "{bad:x?}"
            );
        }
    }
}
