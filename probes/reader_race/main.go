// reader_race: the nil-reader-race mechanism (moby/buildkit #6674) in a few lines, for
// wedge's nil-reader-race signature and its tests. Written for wedge; no upstream code.
//
// A readerAtCloser serves ReadAt from a sequential stream that it reopens whenever the
// requested offset is not where the stream stands, and keeps that state (rc, ra, offset,
// closed) without a lock. An uploader in the shape of the AWS SDK's multipart uploader wraps
// the same reader in one io.NewSectionReader per 5 MiB part and reads the parts from five
// worker goroutines. One worker closes and clears rc between another's nil check and its
// rc.Read call: a call through a nil io.ReadCloser, which faults at address 0x20 (the Read
// slot of the missing method table).
//
// Modes (argv[1]):
//
//	hold        five workers parked inside ReadAt at once (reopening blocks forever);
//	            prints "receiver 0x…" and then "ready <pid>" when all five are inside
//	crash       uploads until the race faults; prints "upload N" before each upload
//	fixed       the same uploads with a mutex in ReadAt and Close; exits 0 after a bound
//	fixed-hold  the mutex version held: one worker inside ReadAt (reopening blocks), the
//	            others waiting for the mutex; prints "ready <pid>"
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	partSize    = 5 << 20
	parts       = 4
	concurrency = 5
	chunk       = 64 << 10
)

// stream is one sequential reader over the object from some offset, like the body of a
// ranged GET.
type stream struct {
	data []byte
	pos  int
}

func (s *stream) Read(p []byte) (int, error) {
	if s.pos >= len(s.data) {
		return 0, io.EOF
	}
	n := copy(p, s.data[s.pos:])
	s.pos += n
	return n, nil
}

func (s *stream) Close() error { return nil }

// readerAtCloser turns a reopenable stream into an io.ReaderAt.
type readerAtCloser struct {
	rc     io.ReadCloser
	ra     io.ReaderAt
	offset int64
	closed bool

	// open returns a stream positioned at off.
	open func(off int64) (io.ReadCloser, error)
	// between runs after the nil check and before the call through rc: it widens the race
	// window (a scheduling point, as a network read would be) without changing the logic.
	between func()
	// mu is set in the fixed modes only.
	mu *sync.Mutex
}

func (r *readerAtCloser) ReadAt(p []byte, off int64) (int, error) {
	if r.mu != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	if r.closed {
		return 0, errors.New("read after close")
	}
	if r.ra != nil {
		return r.ra.ReadAt(p, off)
	}
	if r.rc == nil || off != r.offset {
		if r.rc != nil {
			r.rc.Close()
			r.rc = nil
		}
		rc, err := r.open(off)
		if err != nil {
			return 0, err
		}
		r.rc = rc
		r.offset = off
	}
	if r.between != nil {
		r.between()
	}
	total := 0
	for total < len(p) {
		n, err := r.rc.Read(p[total:])
		total += n
		r.offset += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (r *readerAtCloser) Close() error {
	if r.mu != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	r.closed = true
	if r.rc != nil {
		err := r.rc.Close()
		r.rc = nil
		return err
	}
	return nil
}

// multiuploader reads an object part by part from several workers, as the SDK's
// feature/s3/manager does for a body that is an io.ReaderAt.
type multiuploader struct {
	body        io.ReaderAt
	size        int64
	partSize    int64
	concurrency int
	sent        int64
}

type part struct {
	num  int
	body *io.SectionReader
}

func (u *multiuploader) upload() {
	ch := make(chan part)
	var wg sync.WaitGroup
	for i := 0; i < u.concurrency; i++ {
		wg.Add(1)
		go u.readParts(ch, &wg)
	}
	num := 1
	for off := int64(0); off < u.size; off += u.partSize {
		n := u.partSize
		if off+n > u.size {
			n = u.size - off
		}
		ch <- part{num: num, body: io.NewSectionReader(u.body, off, n)}
		num++
	}
	close(ch)
	wg.Wait()
}

func (u *multiuploader) readParts(ch chan part, wg *sync.WaitGroup) {
	defer wg.Done()
	for p := range ch {
		u.send(p)
	}
}

//go:noinline
func (u *multiuploader) send(p part) {
	buf := make([]byte, chunk)
	for {
		n, err := p.body.Read(buf)
		atomic.AddInt64(&u.sent, int64(n))
		if err != nil {
			return
		}
	}
}

func main() {
	mode := "hold"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	data := make([]byte, parts*partSize)
	for i := range data {
		data[i] = byte(i)
	}
	opener := func(off int64) (io.ReadCloser, error) {
		return &stream{data: data[off:]}, nil
	}
	switch mode {
	case "hold", "fixed-hold":
		var inside int32
		block := make(chan struct{})
		r := &readerAtCloser{open: func(off int64) (io.ReadCloser, error) {
			atomic.AddInt32(&inside, 1)
			<-block // a ranged GET that never answers
			return opener(off)
		}}
		want := int32(concurrency)
		if mode == "fixed-hold" {
			r.mu = new(sync.Mutex)
			want = 1
		}
		fmt.Printf("receiver %p\n", r)
		u := &multiuploader{body: r, size: int64(len(data)) + partSize, partSize: partSize, concurrency: concurrency}
		go u.upload()
		for atomic.LoadInt32(&inside) < want {
			time.Sleep(time.Millisecond)
		}
		if mode == "fixed-hold" {
			// Let the other workers reach the mutex.
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Printf("ready %d\n", os.Getpid())
		// Sleep rather than select{}: a sleeping goroutine keeps the runtime's deadlock
		// detector quiet while the workers wait on a channel nobody will ever send to.
		for {
			time.Sleep(time.Hour)
		}
	case "crash", "fixed":
		yield := func() { runtime.Gosched() }
		limit := 200
		for i := 1; i <= limit; i++ {
			fmt.Printf("upload %d\n", i)
			r := &readerAtCloser{
				open: func(off int64) (io.ReadCloser, error) {
					yield()
					return opener(off)
				},
				between: yield,
			}
			if mode == "fixed" {
				r.mu = new(sync.Mutex)
			}
			u := &multiuploader{body: r, size: int64(len(data)), partSize: partSize, concurrency: concurrency}
			u.upload()
			r.Close()
			if u.sent != int64(len(data)) {
				fmt.Printf("short upload: %d of %d bytes\n", u.sent, len(data))
				os.Exit(1)
			}
		}
		fmt.Printf("done %d uploads\n", limit)
	default:
		fmt.Fprintf(os.Stderr, "usage: reader_race hold|crash|fixed|fixed-hold\n")
		os.Exit(2)
	}
}
