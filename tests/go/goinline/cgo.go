//go:build withcgo

package main

// Built only with -tags withcgo: links the C runtime, so that -linkmode=external hands
// the link to GNU ld, which merges .gopclntab into .data.rel.ro with no name.

/*
static int answer(void) { return 42; }
*/
import "C"

func init() { _ = C.answer() }
