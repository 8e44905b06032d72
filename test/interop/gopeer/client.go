// The interop check suite, run by a ttrpc 1.1.1 client against any Bench
// server. cpeer.c runs the same checks under the same names, so a result line
// means the same thing whichever side printed it.
package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"reflect"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxEcho leaves room in a 4 MiB frame for the Request envelope around an
// EchoPayload (service, method, tags, lengths, timeout_nano).
const maxEcho = 4<<20 - 64

type checker struct {
	c      *ttrpc.Client
	failed int
}

func (k *checker) report(name string, err error) {
	if err != nil {
		k.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
	} else {
		fmt.Printf("ok %s\n", name)
	}
}

// timeoutOverride makes the interceptor send this timeout_nano while the
// call's own context keeps a longer deadline, so what comes back is the
// server's answer to the deadline and not the client giving up first.
type timeoutOverride struct{}

func interceptor(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response,
	info *ttrpc.UnaryClientInfo, invoker ttrpc.Invoker) error {
	if t, ok := ctx.Value(timeoutOverride{}).(int64); ok {
		req.TimeoutNano = t
	}
	return invoker(ctx, req, resp)
}

func (k *checker) call(ctx context.Context, method string, req, resp interface{}) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return k.c.Call(ctx, service, method, req, resp)
}

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31) + seed
	}
	return p
}

func (k *checker) echo(n int, seed byte) error {
	req := &EchoPayload{Value: pattern(n, seed)}
	resp := &EchoPayload{}
	if err := k.call(context.Background(), "Echo", req, resp); err != nil {
		return err
	}
	if !bytes.Equal(req.Value, resp.Value) {
		return fmt.Errorf("echoed %d bytes, got %d different bytes", n, len(resp.Value))
	}
	return nil
}

// wantStatus checks that err is a ttrpc status with this code, and message
// unless msg is empty.
func wantStatus(err error, code codes.Code, msg string) error {
	if err == nil {
		return fmt.Errorf("succeeded, want code %d", code)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("error is not a status: %v", err)
	}
	if st.Code() != code {
		return fmt.Errorf("code %d %q, want code %d", st.Code(), st.Message(), code)
	}
	if msg != "" && st.Message() != msg {
		return fmt.Errorf("message %q, want %q", st.Message(), msg)
	}
	return nil
}

func (k *checker) checkEcho() {
	sizes := []struct {
		name string
		n    int
	}{
		{"echo_0B", 0}, {"echo_1B", 1}, {"echo_1KiB", 1 << 10}, {"echo_64KiB", 64 << 10},
		{"echo_1MiB", 1 << 20}, {"echo_4MiB_minus_64", maxEcho},
	}
	for i, s := range sizes {
		k.report(s.name, k.echo(s.n, byte(i)))
	}

	// A Request over 4 MiB: the server discards it, answers ResourceExhausted
	// on its stream and keeps the connection.
	err := k.call(context.Background(), "Echo", &EchoPayload{Value: pattern(4<<20, 7)}, &EchoPayload{})
	k.report("echo_oversize", wantStatus(err, codes.ResourceExhausted, ""))
	k.report("echo_after_oversize", k.echo(100, 9))
}

func (k *checker) checkMetadata() {
	md := ttrpc.MD{}
	md.Set("k-one", "v1")
	md.Append("k-two", "b", "a")
	md.Set("containerd-namespace-ttrpc", "default")
	ctx, cancel := context.WithTimeout(ttrpc.WithMetadata(context.Background(), md), 10*time.Second)
	defer cancel()
	reply := &MetadataReply{}
	err := k.c.Call(ctx, service, "Metadata", &Empty{}, reply)
	if err == nil {
		want := []*MetadataEntry{
			{"containerd-namespace-ttrpc", "default"}, {"k-one", "v1"}, {"k-two", "a"}, {"k-two", "b"},
		}
		if !reflect.DeepEqual(reply.Entries, want) {
			err = fmt.Errorf("entries %v, want %v", reply.Entries, want)
		} else if reply.TimeoutNano <= 5e9 || reply.TimeoutNano > 10e9 {
			err = fmt.Errorf("server saw timeout %d ns, want (5s, 10s]", reply.TimeoutNano)
		}
	}
	k.report("metadata", err)

	reply = &MetadataReply{}
	err = k.c.Call(context.Background(), service, "Metadata", &Empty{}, reply)
	if err == nil && (len(reply.Entries) != 0 || reply.TimeoutNano != 0) {
		err = fmt.Errorf("got %v timeout %d, want nothing", reply.Entries, reply.TimeoutNano)
	}
	k.report("metadata_none", err)
}

func (k *checker) checkFail() {
	cases := []struct {
		code codes.Code
		msg  string
	}{
		{codes.NotFound, `container "web" not found`},
		{codes.AlreadyExists, "id web: already exists"},
		{codes.FailedPrecondition, "process is not running: état ☃"},
		{codes.Unimplemented, "not supported"},
	}
	for _, c := range cases {
		err := k.call(context.Background(), "Fail", &FailRequest{Code: int32(c.code), Message: c.msg}, &Empty{})
		k.report(fmt.Sprintf("fail_%d", c.code), wantStatus(err, c.code, c.msg))
	}
}

func (k *checker) checkSleep() {
	start := time.Now()
	err := k.call(context.Background(), "Sleep", &SleepRequest{Millis: 20}, &Empty{})
	if err == nil && time.Since(start) < 20*time.Millisecond {
		err = fmt.Errorf("returned after %v, before 20ms", time.Since(start))
	}
	k.report("sleep_short", err)

	start = time.Now()
	ctx := context.WithValue(context.Background(), timeoutOverride{}, int64(100*time.Millisecond))
	err = k.call(ctx, "Sleep", &SleepRequest{Millis: 5000}, &Empty{})
	took := time.Since(start)
	err = wantStatus(err, codes.DeadlineExceeded, "context deadline exceeded")
	if err == nil && (took < 90*time.Millisecond || took > 2*time.Second) {
		err = fmt.Errorf("DeadlineExceeded after %v, want about 100ms", took)
	}
	k.report("sleep_deadline", err)

	// A sleeping call must not hold up other calls on the same connection.
	done := make(chan error, 1)
	go func() { done <- k.call(context.Background(), "Sleep", &SleepRequest{Millis: 300}, &Empty{}) }()
	time.Sleep(20 * time.Millisecond)
	start = time.Now()
	err = k.echo(10, 3)
	if took := time.Since(start); err == nil && took > 150*time.Millisecond {
		err = fmt.Errorf("echo took %v while a Sleep(300ms) was pending", took)
	}
	if serr := <-done; err == nil && serr != nil {
		err = fmt.Errorf("concurrent sleep: %v", serr)
	}
	k.report("sleep_not_blocking", err)
}

func (k *checker) checkPipelined() {
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = k.echo(i*97, byte(i))
		}(i)
	}
	wg.Wait()
	var err error
	for i, e := range errs {
		if e != nil {
			err = fmt.Errorf("call %d: %v", i, e)
			break
		}
	}
	k.report("pipelined_64", err)
}

// A client that goes away with a call in flight: the server cancels the call
// and carries on serving everyone else.
func (k *checker) checkDisconnect(socket string) {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		k.report("disconnect_during_sleep", fmt.Errorf("second connection: %v", err))
		return
	}
	c2 := ttrpc.NewClient(conn)
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c2.Call(ctx, service, "Sleep", &SleepRequest{Millis: 2000}, &Empty{})
		close(done)
	}()
	time.Sleep(50 * time.Millisecond)
	c2.Close()
	<-done
	k.report("disconnect_during_sleep", k.echo(10, 4))
}

func (k *checker) checkUnknown() {
	err := k.call(context.Background(), "Nope", &Empty{}, &Empty{})
	k.report("unknown_method", wantStatus(err, codes.Unimplemented, "method Nope"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = k.c.Call(ctx, "ttrpc.bench.v1.Nope", "Echo", &EchoPayload{}, &EchoPayload{})
	k.report("unknown_service", wantStatus(err, codes.Unimplemented, "service ttrpc.bench.v1.Nope"))
}

func runChecks(socket string) bool {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		return false
	}
	c := ttrpc.NewClient(conn, ttrpc.WithUnaryClientInterceptor(interceptor))
	defer c.Close()
	k := &checker{c: c}
	k.checkEcho()
	k.checkMetadata()
	k.checkFail()
	k.checkSleep()
	k.checkPipelined()
	k.checkDisconnect(socket)
	k.checkUnknown()
	if k.failed > 0 {
		fmt.Printf("%d checks failed\n", k.failed)
		return false
	}
	return true
}
