// goinline prints, for a few call sites, the physical return pc and the frames the Go
// runtime expands it to (inlined calls first), so tests can compare wedge's pclntab reading
// with the runtime's own. Output lines:
//
//	site NAME 0xPC
//	frame FUNCTION<TAB>FILE<TAB>LINE
//	end
package main

import (
	"fmt"
	"os"
	"reflect"
	"runtime"

	"example.com/dep"
)

// capture returns the return pcs from its caller on.
//
//go:noinline
func capture() []uintptr {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(2, pcs)
	return pcs[:n]
}

// leaf, mid: small enough to be inlined into outer, so the pc in outer has two inlined frames.
func leaf() []uintptr { return capture() }

func mid() []uintptr { return leaf() }

//go:noinline
func outer() []uintptr { return mid() }

type number interface{ ~int | ~float64 }

// Sum is generic: its name carries type arguments (shape types from Go 1.21).
//
//go:noinline
func Sum[T number](xs []T) ([]uintptr, T) {
	var s T
	for _, x := range xs {
		s += x
	}
	pcs := make([]uintptr, 32)
	n := runtime.Callers(1, pcs)
	return pcs[:n], s
}

type box[T any] struct{ v T }

//go:noinline
func (b *box[T]) get() []uintptr {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(1, pcs)
	return pcs[:n]
}

func report(site string, pcs []uintptr) {
	fmt.Printf("site %s %#x\n", site, pcs[0])
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		fmt.Printf("frame %s\t%s\t%d\n", f.Function, f.File, f.Line)
		if !more || f.Function == "main.main" {
			break
		}
	}
	fmt.Println("end")
}

func main() {
	report("inlined", outer())
	pcs, s := Sum([]int{1, 2, dep.Twice(3)})
	report("generic", pcs)
	pcs, f := Sum([]float64{1.5})
	report("generic-float", pcs)
	b := &box[string]{v: "x"}
	report("generic-method", b.get())
	// The load address of main.outer: the bias of a PIE.
	fmt.Printf("entry main.outer %#x\n", reflect.ValueOf(outer).Pointer())
	if s+int(f) == 0 {
		os.Exit(1)
	}
}
