// update-go: updates a task's memory limit through containerd's Go client, the way
// `ctr task update` of later containerd releases does (ctr 1.6 has no such command):
// Task.Update with the resources as an OCI LinuxResources, which containerd hands to
// the shim's Update as JSON.
//
//	update-go -address SOCK -namespace NS -id ID -memory BYTES [-memory-swap BYTES]
//
// Exit 0 and "updated" on stdout; on failure the client's error on stderr, exit 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	address := flag.String("address", "/run/containerd/containerd.sock", "containerd's gRPC socket")
	ns := flag.String("namespace", "default", "namespace")
	id := flag.String("id", "", "container id")
	memory := flag.Int64("memory", 0, "memory limit in bytes")
	swap := flag.Int64("memory-swap", 0, "memory+swap limit in bytes (0: not set)")
	timeout := flag.Duration("timeout", 30*time.Second, "bound on the whole call")
	flag.Parse()
	if *id == "" || *memory == 0 {
		fmt.Fprintln(os.Stderr, "usage: update-go -address SOCK -namespace NS -id ID -memory BYTES [-memory-swap BYTES]")
		os.Exit(2)
	}
	if err := update(*address, *ns, *id, *memory, *swap, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("updated")
}

func update(address, ns, id string, memory, swap int64, timeout time.Duration) error {
	client, err := containerd.New(address, containerd.WithTimeout(timeout))
	if err != nil {
		return fmt.Errorf("connect %s: %w", address, err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), timeout)
	defer cancel()
	c, err := client.LoadContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("load container %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return fmt.Errorf("load task %s: %w", id, err)
	}
	mem := &specs.LinuxMemory{Limit: &memory}
	if swap != 0 {
		mem.Swap = &swap
	}
	return task.Update(ctx, containerd.WithResources(&specs.LinuxResources{Memory: mem}))
}
