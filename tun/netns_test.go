package tun

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requireRoot skips the test unless the process can create interfaces and
// namespaces. Under CI (the environment variable CI is non-empty) it fails
// instead: CI runs these tests as root and must never skip them.
func requireRoot(t *testing.T) {
	t.Helper()
	skip := t.Skip
	if os.Getenv("CI") != "" {
		skip = t.Fatal
	}
	if os.Geteuid() != 0 {
		skip("needs root: creates network namespaces and TUN interfaces")
		return
	}
	if _, err := os.Stat(cloneDevice); err != nil {
		skip(fmt.Sprintf("needs %s: %v", cloneDevice, err))
	}
}

// enterNetns locks the test's goroutine to its OS thread and moves that thread into a new,
// anonymous network namespace for the rest of the test. Everything the test creates from
// this goroutine lands in that namespace. Cleanups registered after this call run inside
// it; the last cleanup moves the thread back. If that fails the thread stays locked, and
// the runtime discards it when the test's goroutine ends, so no thread of the pool is left
// in the test namespace. The namespace disappears with its last reference.
//
// Subtests run on goroutines of their own, which are not in the namespace: a subtest that
// touches the network must call enterNetns itself.
func enterNetns(t *testing.T) {
	t.Helper()
	requireRoot(t)

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		err := netns.Set(orig)
		orig.Close()
		if err != nil {
			t.Errorf("return to original netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})

	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatalf("find lo: %v", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatalf("set lo up: %v", err)
	}
}

// addLink creates l in the test namespace and deletes it when the test ends.
func addLink(t *testing.T, l netlink.Link) {
	t.Helper()
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatalf("add %s link %s: %v", l.Type(), l.Attrs().Name, err)
	}
	name := l.Attrs().Name
	t.Cleanup(func() {
		if cur, err := netlink.LinkByName(name); err == nil {
			if err := netlink.LinkDel(cur); err != nil {
				t.Errorf("delete link %s: %v", name, err)
			}
		}
	})
}
