// The Bench service on a ttrpc 1.1.1 server. Stream and Sum are not
// registered: 1.1.1 has no streaming, so they answer Unimplemented.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func echo(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	req := &EchoPayload{}
	if err := unmarshal(req); err != nil {
		return nil, err
	}
	return req, nil
}

// sleep honours the caller's deadline: ctx.Err() is context.DeadlineExceeded,
// which ttrpc maps to DeadlineExceeded "context deadline exceeded".
func sleep(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	req := &SleepRequest{}
	if err := unmarshal(req); err != nil {
		return nil, err
	}
	t := time.NewTimer(time.Duration(req.Millis) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return &Empty{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func fail(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	req := &FailRequest{}
	if err := unmarshal(req); err != nil {
		return nil, err
	}
	if req.Code == 0 {
		return &Empty{}, nil
	}
	return nil, status.Error(codes.Code(req.Code), req.Message)
}

// metadata reports what the handler sees: ttrpc.GetMetadata (a map, so the
// wire order between keys is lost: entries are sorted by key, then value) and
// the time left until the deadline.
func metadata(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	req := &Empty{}
	if err := unmarshal(req); err != nil {
		return nil, err
	}
	reply := &MetadataReply{}
	if md, ok := ttrpc.GetMetadata(ctx); ok {
		for k, values := range md {
			for _, v := range values {
				reply.Entries = append(reply.Entries, &MetadataEntry{Key: k, Value: v})
			}
		}
	}
	sortEntries(reply.Entries)
	if dl, ok := ctx.Deadline(); ok {
		reply.TimeoutNano = time.Until(dl).Nanoseconds()
	}
	return reply, nil
}

func sortEntries(e []*MetadataEntry) {
	sort.SliceStable(e, func(i, j int) bool {
		if e[i].Key != e[j].Key {
			return e[i].Key < e[j].Key
		}
		return e[i].Value < e[j].Value
	})
}

func runServer(socket string) error {
	if err := os.Remove(socket); err != nil && !os.IsNotExist(err) {
		return err
	}
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	defer os.Remove(socket)

	s, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	s.Register(service, map[string]ttrpc.Method{
		"Echo":     echo,
		"Sleep":    sleep,
		"Fail":     fail,
		"Metadata": metadata,
	})

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background(), l) }()
	fmt.Println("ready")

	select {
	case <-sig:
		s.Close()
		return nil
	case err := <-served:
		if err == ttrpc.ErrServerClosed {
			return nil
		}
		return err
	}
}
