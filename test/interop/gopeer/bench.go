// Echo load: `concurrency` goroutines share one client connection (as
// containerd's calls to a shim do), each calling Echo back to back.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
)

type benchResult struct {
	Calls       int64   `json:"calls"`
	CallsPerSec float64 `json:"calls_per_sec"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
}

// percentile of sorted samples, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func runBench(socket string, size, concurrency int, duration, warmup time.Duration) error {
	if concurrency < 1 || size < 0 || duration <= 0 {
		return fmt.Errorf("bad arguments")
	}
	if warmup < 0 {
		warmup = duration / 10
		if warmup > 500*time.Millisecond {
			warmup = 500 * time.Millisecond
		}
	}
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return err
	}
	c := ttrpc.NewClient(conn)
	defer c.Close()

	req := &EchoPayload{Value: pattern(size, 1)}
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		samples []time.Duration
		callErr error
	)
	for g := 0; g < concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<16)
			resp := &EchoPayload{}
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				if err := c.Call(context.Background(), service, "Echo", req, resp); err != nil {
					mu.Lock()
					callErr = err
					mu.Unlock()
					return
				}
				if len(resp.Value) != size {
					mu.Lock()
					callErr = fmt.Errorf("echo returned %d bytes, sent %d", len(resp.Value), size)
					mu.Unlock()
					return
				}
				if !t0.Before(measureFrom) {
					local = append(local, time.Since(t0))
				}
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if callErr != nil {
		return callErr
	}

	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	r := benchResult{
		Calls:       int64(len(samples)),
		CallsPerSec: float64(len(samples)) / duration.Seconds(),
		P50us:       float64(percentile(samples, 0.50).Nanoseconds()) / 1e3,
		P99us:       float64(percentile(samples, 0.99).Nanoseconds()) / 1e3,
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}
