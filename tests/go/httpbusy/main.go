// httpbusy: a Go HTTP server kept busy by its own clients — a healthy program with many
// goroutines in IO wait, channel waits and running, which wedge must not call stuck.
// Prints "ready <pid>" once the first responses have come back.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var served int64
	var mu sync.Mutex
	counts := map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.URL.Path]++
		mu.Unlock()
		atomic.AddInt64(&served, 1)
		fmt.Fprintf(w, "hello %s\n", r.URL.Path)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, mux)
	url := "http://" + ln.Addr().String() + "/"
	for i := 0; i < 8; i++ {
		go func(i int) {
			c := &http.Client{Timeout: 5 * time.Second}
			for {
				resp, err := c.Get(fmt.Sprintf("%sclient%d", url, i))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}(i)
	}
	for atomic.LoadInt64(&served) < 100 {
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	select {}
}
