// task-go: task calls that ctr 1.6 cannot make, through containerd's Go client, as
// containerd's own integration tests and CRI make them.
//
//	task-go -address SOCK -namespace NS -id ID create
//	    NewTask (null IO) on an existing container and exit without starting it: a
//	    client that died between Create and Start. Prints "pid=N".
//	task-go -address SOCK -namespace NS -id ID kill-created
//	    NewTask, then Kill(SIGKILL) of the created, never started task, Wait, Delete.
//	    Prints "wait=STATUS" and "delete=STATUS".
//	task-go -address SOCK -namespace NS -id ID exec-tty EXEC-ID CMD [ARG...]
//	    Exec with a terminal on the request (cio.WithTerminal) and a process spec that
//	    says terminal:false, as containerd's client sends it; prints the exec's output
//	    and "exit=STATUS".
//
// On failure the client's error on stderr, exit 1.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
)

func main() {
	address := flag.String("address", "/run/containerd/containerd.sock", "containerd's gRPC socket")
	ns := flag.String("namespace", "default", "namespace")
	id := flag.String("id", "", "container id")
	timeout := flag.Duration("timeout", 30*time.Second, "bound on the whole command")
	flag.Parse()
	if *id == "" || flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: task-go -address SOCK -namespace NS -id ID create|kill-created|exec-tty ...")
		os.Exit(2)
	}
	client, err := containerd.New(*address, containerd.WithTimeout(*timeout))
	if err != nil {
		fail(fmt.Errorf("connect %s: %w", *address, err))
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), *ns), *timeout)
	defer cancel()
	c, err := client.LoadContainer(ctx, *id)
	if err != nil {
		fail(fmt.Errorf("load container %s: %w", *id, err))
	}
	switch flag.Arg(0) {
	case "create":
		err = create(ctx, c)
	case "kill-created":
		err = killCreated(ctx, c)
	case "exec-tty":
		if flag.NArg() < 3 {
			fail(fmt.Errorf("exec-tty EXEC-ID CMD [ARG...]"))
		}
		err = execTTY(ctx, c, flag.Arg(1), flag.Args()[2:])
	default:
		err = fmt.Errorf("unknown command %s", flag.Arg(0))
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func create(ctx context.Context, c containerd.Container) error {
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	fmt.Printf("pid=%d\n", task.Pid())
	return nil
}

func killCreated(ctx context.Context, c containerd.Container) error {
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	exitc, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("wait: %w", err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	select {
	case st := <-exitc:
		fmt.Printf("wait=%d\n", st.ExitCode())
	case <-time.After(10 * time.Second):
		return fmt.Errorf("wait: no exit within 10s of the kill")
	}
	st, err := task.Delete(ctx)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	fmt.Printf("delete=%d\n", st.ExitCode())
	return nil
}

func execTTY(ctx context.Context, c containerd.Container, execID string, args []string) error {
	task, err := c.Task(ctx, nil)
	if err != nil {
		return fmt.Errorf("load task: %w", err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	pspec := *spec.Process
	pspec.Terminal = false // the request carries the terminal, not the spec
	pspec.Args = args
	var out bytes.Buffer
	p, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cio.WithStreams(nil, &out, nil), cio.WithTerminal))
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	exitc, err := p.Wait(ctx)
	if err != nil {
		return fmt.Errorf("wait: %w", err)
	}
	if err := p.Start(ctx); err != nil {
		p.Delete(ctx)
		return fmt.Errorf("start: %w", err)
	}
	st := <-exitc
	p.IO().Wait()
	if _, err := p.Delete(ctx); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	fmt.Print(out.String())
	fmt.Printf("exit=%d\n", st.ExitCode())
	return nil
}
