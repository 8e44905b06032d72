// gopeer is the Go end of the ttrpc interop tests and benchmarks: a server of
// ttrpc.bench.v1.Bench on containerd/ttrpc 1.1.1 (the version containerd 1.6
// and its shims are built with), the interop check suite as a client, and an
// echo load generator.
//
//	gopeer server -socket PATH
//	gopeer client -socket PATH
//	gopeer bench -socket PATH -size N -concurrency C -duration D
package main

import (
	"flag"
	"fmt"
	"os"
)

const service = "ttrpc.bench.v1.Bench"

func usage() {
	fmt.Fprintf(os.Stderr, "usage: gopeer server|client|bench -socket PATH [options]\n")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet("gopeer "+mode, flag.ExitOnError)
	socket := fs.String("socket", "", "unix socket path")
	size := fs.Int("size", 0, "bench: echo payload size in bytes")
	concurrency := fs.Int("concurrency", 1, "bench: calls in flight (goroutines sharing one connection)")
	duration := fs.Duration("duration", 3e9, "bench: measured duration")
	warmup := fs.Duration("warmup", -1, "bench: warm-up before measuring (default duration/10, at most 500ms)")
	fs.Parse(os.Args[2:])
	if *socket == "" || fs.NArg() != 0 {
		usage()
	}

	var err error
	switch mode {
	case "server":
		err = runServer(*socket)
	case "client":
		if !runChecks(*socket) {
			os.Exit(1)
		}
	case "bench":
		err = runBench(*socket, *size, *concurrency, *duration, *warmup)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gopeer %s: %v\n", mode, err)
		os.Exit(1)
	}
}
