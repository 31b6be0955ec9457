package main

import "runtime"

func numGoroutine() int { return runtime.NumGoroutine() }
