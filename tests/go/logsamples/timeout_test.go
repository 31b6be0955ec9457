package main

import (
	"os"
	"testing"
	"time"
)

// TestHang sleeps past `go test -timeout`; only when LOGSAMPLES_HANG is set.
func TestHang(t *testing.T) {
	if os.Getenv("LOGSAMPLES_HANG") == "" {
		t.Skip("set LOGSAMPLES_HANG=1 to hang")
	}
	time.Sleep(time.Hour)
}
