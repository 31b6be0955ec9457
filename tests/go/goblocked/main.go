// goblocked: goroutines parked in known places, for wedge's goroutine tests.
//
// It starts N goroutines of each kind (N from the first argument, default 1):
// blocked receiving from a channel, locking a held mutex, in a select, in a read syscall on
// a pipe, and sleeping. It prints "ready <pid> <runtime.NumGoroutine()>" when all are parked.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var mu sync.Mutex

//go:noinline
func chanReceiver(c chan int) { <-c }

//go:noinline
func mutexLocker() { mu.Lock(); mu.Unlock() }

//go:noinline
func selecter(a, b chan int) {
	select {
	case <-a:
	case <-b:
	}
}

//go:noinline
func pipeReader(fd int) {
	buf := make([]byte, 1)
	syscall.Read(fd, buf)
}

//go:noinline
func sleeper() { time.Sleep(time.Hour) }

func main() {
	n := 1
	if len(os.Args) > 1 {
		if v, err := strconv.Atoi(os.Args[1]); err == nil {
			n = v
		}
	}
	mu.Lock()
	c := make(chan int)
	a, b := make(chan int), make(chan int)
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		panic(err)
	}
	for i := 0; i < n; i++ {
		go chanReceiver(c)
		go mutexLocker()
		go selecter(a, b)
		go sleeper()
	}
	go pipeReader(fds[0])
	time.Sleep(300 * time.Millisecond)
	fmt.Printf("ready %d %d\n", os.Getpid(), countGoroutines())
	select {}
}

func countGoroutines() int {
	// runtime.NumGoroutine counts every goroutine but the runtime's own system ones.
	return numGoroutine()
}
