package tun

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv, when set, makes the test binary run one privilege scenario instead of the tests.
// The parent starts the child in new namespaces and, for some scenarios, without
// CAP_NET_ADMIN; the child calls create and exits 0 only if it got the expected error.
const childEnv = "HOPRD_TUN_TEST_CHILD"

// Scenarios a child can run.
const (
	childNoDevice = "no-device" // /dev/net/tun hidden under an empty tmpfs
	childNoCap    = "no-cap"    // CAP_NET_ADMIN dropped; caught by the capability check
	childEPERM    = "eperm"     // CAP_NET_ADMIN dropped; check skipped, the kernel refuses
)

func TestMain(m *testing.M) {
	if scenario := os.Getenv(childEnv); scenario != "" {
		os.Exit(runChild(scenario))
	}
	os.Exit(m.Run())
}

// runChild runs one scenario in the child and returns its exit code.
func runChild(scenario string) int {
	var (
		hk   hooks
		want = []error{ErrNoNetAdmin}
	)
	switch scenario {
	case childNoDevice:
		if err := unix.Mount("tmpfs", "/dev/net", "tmpfs", 0, ""); err != nil {
			fmt.Println("mount tmpfs on /dev/net:", err)
			return 2
		}
		want = []error{ErrNoTUNDevice}
	case childNoCap:
		if checkNetAdmin() == nil {
			fmt.Println("child still holds CAP_NET_ADMIN")
			return 2
		}
	case childEPERM:
		hk.skipCapCheck = true
		want = append(want, unix.EPERM)
	default:
		fmt.Println("unknown scenario", scenario)
		return 2
	}

	i, err := create(testConfig("hop0"), nil, hk)
	if err == nil {
		i.Close()
		fmt.Println("create succeeded")
		return 1
	}
	fmt.Println(err)
	for _, w := range want {
		if !errors.Is(err, w) {
			fmt.Printf("error does not wrap %q\n", w)
			return 1
		}
	}
	if _, ok := Exists("hop0"); ok {
		fmt.Println("hop0 exists after the failure")
		return 1
	}
	return 0
}

func TestCreateWithoutPrivilege(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		scenario string
		dropCap  bool
		wantText string
	}{
		{scenario: childNoDevice, wantText: "create hop0: " + ErrNoTUNDevice.Error()},
		{scenario: childNoCap, dropCap: true, wantText: "create hop0: " + ErrNoNetAdmin.Error()},
		{scenario: childEPERM, dropCap: true,
			wantText: "create tun hop0: " + ErrNoNetAdmin.Error() + ": operation not permitted"},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			out, err := runChildProcess(tt.scenario, tt.dropCap)
			t.Logf("child says: %s", strings.TrimSpace(out))
			if err != nil {
				t.Fatalf("child failed: %v", err)
			}
			if !strings.Contains(out, tt.wantText) {
				t.Errorf("child error %q lacks %q", strings.TrimSpace(out), tt.wantText)
			}
		})
	}
}

// runChildProcess runs the test binary as a child in fresh network and mount namespaces,
// which vanish with it. With dropCap the child starts without CAP_NET_ADMIN: the spawning
// thread gives it up for good (bounding, permitted, effective and inheritable sets), and
// since that thread stays locked, the runtime discards it when the goroutine ends.
func runChildProcess(scenario string, dropCap bool) (string, error) {
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if dropCap {
			if err := dropNetAdmin(); err != nil {
				done <- result{err: fmt.Errorf("drop CAP_NET_ADMIN: %w", err)}
				return
			}
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+scenario)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Unshareflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
			Pdeathsig:    syscall.SIGKILL,
		}
		out, err := cmd.CombinedOutput()
		done <- result{string(out), err}
	}()
	r := <-done
	return r.out, r.err
}

// dropNetAdmin removes CAP_NET_ADMIN from the calling thread for good.
func dropNetAdmin() error {
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_NET_ADMIN, 0, 0, 0); err != nil {
		return fmt.Errorf("bounding set: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	const word, bit = unix.CAP_NET_ADMIN / 32, unix.CAP_NET_ADMIN % 32
	data[word].Effective &^= 1 << bit
	data[word].Permitted &^= 1 << bit
	data[word].Inheritable &^= 1 << bit
	return unix.Capset(&hdr, &data[0])
}
