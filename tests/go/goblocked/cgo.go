//go:build withcgo

package main

// Built only with -tags withcgo: links the C runtime, as runc and podman do.

/*
static int answer(void) { return 42; }
*/
import "C"

func init() { _ = C.answer() }
