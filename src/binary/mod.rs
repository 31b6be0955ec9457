//! What an executable tells us: ELF symbols, CFI, DWARF lines; cached by build-id, mmapped.
