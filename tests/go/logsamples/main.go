// logsamples: tiny programs whose runtime output becomes samples/logs/ for wedge's log
// parser. Written for wedge. Modes (argv[1]):
//
//	nilderef   a nil pointer dereference in a goroutine created by another function
//	nested     a panic while panicking: "panic: first [recovered]" then "panic: second"
//	race       two goroutines write one variable (run with -race)
//	pprof      prints the pprof goroutine profile with debug=2, then exits 0
//	block      sleeps an hour beside a blocked goroutine (send it SIGQUIT)
//	deadlock   all goroutines asleep: "fatal error: all goroutines are asleep - deadlock!"
package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"time"
)

type holder struct{ p *int }

func (h *holder) read() int { return *h.p }

func worker(h *holder, done chan int) { done <- h.read() }

func spawn() chan int {
	done := make(chan int)
	go worker(&holder{}, done)
	return done
}

var shared int

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: logsamples nilderef|nested|race|pprof|block|deadlock")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "nilderef":
		<-spawn()
	case "nested":
		defer func() {
			recover()
			panic("second")
		}()
		panic("first")
	case "race":
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func(v int) {
				defer wg.Done()
				shared = v
			}(i)
		}
		wg.Wait()
		fmt.Println(shared)
	case "pprof":
		ch := make(chan int)
		go func() { <-ch }()
		time.Sleep(10 * time.Millisecond)
		pprof.Lookup("goroutine").WriteTo(os.Stdout, 2)
	case "block":
		ch := make(chan int)
		go func() { <-ch }()
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "deadlock":
		ch := make(chan int)
		<-ch
	}
}
