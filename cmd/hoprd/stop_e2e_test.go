package main

// A stop signal that arrives while the daemon starts, in each way it runs,
// one host namespace per case (the fault rig's):
//
//	hopa-* (the host)                        hopsw-*
//	+-------------------------------+        +-------------+
//	| hoprd up -c ... | hoprd -f hop0|       |             |
//	|   | hoprd hop0 (background)   |        |             |
//	| eth0 192.0.2.1/24 ------------+--veth--+ br0         |
//	+-------------------------------+        +-------------+
//
// The test watches the daemon's process and sends SIGTERM the moment it
// reaches a step of its start: hoprd must unwind what it set up, leave the
// namespace as it found it and exit 0, as it does when stopped later.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EStopWhileStarting sends SIGTERM to hoprd while it starts.
func TestE2EStopWhileStarting(t *testing.T) {
	tests := []struct {
		name string
		args func(r *faultRig, cfg, wgDir string) []string
		// at is the step of the start at which the signal goes.
		at   string
		when func(pid int) bool
	}{
		{"up", func(r *faultRig, cfg, _ string) []string {
			return []string{"up", "-c", cfg, "--run-dir", r.runDir, "--state-dir", r.stateDir,
				"--wg-dir", ""}
		}, "TUN opened", hasTUNOpen},
		{"foreground NAME", func(r *faultRig, _, wgDir string) []string {
			return []string{"--run-dir", r.runDir, "--state-dir", r.stateDir,
				"--wg-dir", wgDir, "-f", ifName}
		}, "TUN opened", hasTUNOpen},
		{"background NAME", func(r *faultRig, _, wgDir string) []string {
			return []string{"--run-dir", r.runDir, "--state-dir", r.stateDir,
				"--wg-dir", wgDir, ifName}
		}, "daemon child started", hasChild},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			r := newFaultRig(t)
			cfg := r.writeFile(t, "hoprd.toml", r.config())
			wgDir := filepath.Join(r.dir, "wg")
			before, err := r.h.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(r.dir, "hoprd.log")
			logf, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer logf.Close()
			args := append([]string{"netns", "exec", r.h.ns, r.bin}, tc.args(r, cfg, wgDir)...)
			cmd := exec.Command("ip", args...)
			cmd.Env = append(os.Environ(), "LOG_LEVEL=debug")
			cmd.Stdout, cmd.Stderr = logf, logf
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			pid := cmd.Process.Pid // ip netns exec execs hoprd in its place
			caught := waitUntil(pid, tc.when, done)
			// A background child that outlives a failed test is killed.
			for _, c := range childrenOf(pid) {
				t.Cleanup(func() { _ = syscall.Kill(c, syscall.SIGKILL) })
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err = <-done:
			case <-time.After(stopTimeout):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("still running %v after SIGTERM", stopTimeout)
			}
			log, _ := os.ReadFile(logPath)
			if !caught {
				t.Logf("hoprd got past %q before it was seen; the signal came later", tc.at)
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Errorf("SIGTERM at %q: %v, want exit status 0\n%s", tc.at, err, log)
			} else if err != nil {
				t.Fatal(err)
			}
			// The background child is in a session of its own; the parent
			// waits for it, so it is gone too by now.
			after, err := r.h.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range before.diff(after) {
				t.Errorf("left behind: %s", d)
			}
			for _, sock := range []string{filepath.Join(r.runDir, ifName+".sock"),
				filepath.Join(wgDir, ifName+".sock")} {
				if _, err := os.Stat(sock); err == nil {
					t.Errorf("socket %s left behind", sock)
				}
			}
		})
	}
}

// waitUntil polls, as fast as it can, until cond(pid) holds or the process
// ends (done is ready), and reports whether cond held.
func waitUntil(pid int, cond func(int) bool, done chan error) bool {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if cond(pid) {
			return true
		}
		select {
		case err := <-done:
			done <- err // for the caller
			return false
		default:
		}
	}
	return false
}

// hasTUNOpen reports whether process pid has /dev/net/tun open.
func hasTUNOpen(pid int) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil &&
			l == "/dev/net/tun" {
			return true
		}
	}
	return false
}

// hasChild reports whether process pid has started a child, from any of
// its threads.
func hasChild(pid int) bool {
	return len(childrenOf(pid)) > 0
}

// childrenOf returns the pids of pid's children.
func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var pids []int
	for _, path := range tasks {
		b, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// TestE2EBackgroundNAME runs "hoprd NAME" in the background way: the child
// reports a usage error (an unsafe state directory) as one, for exit 2, and
// a name that starts with '-' reaches the child as a name, not a flag.
func TestE2EBackgroundNAME(t *testing.T) {
	r := newFaultRig(t)
	wgDir := filepath.Join(r.dir, "wg")
	run := func(name string) (int, string) {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", r.h.ns, r.bin, "--run-dir", r.runDir,
			"--state-dir", r.stateDir, "--wg-dir", wgDir, "--", name).CombinedOutput()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return ee.ExitCode(), string(out)
		case err != nil:
			t.Fatal(err)
		}
		return 0, string(out)
	}

	unsafe := filepath.Join(r.stateDir, "bg0")
	if err := os.MkdirAll(unsafe, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(unsafe, 0o777); err != nil {
		t.Fatal(err)
	}
	if code, out := run("bg0"); code != exitConfig || !strings.Contains(out, "chmod 700") {
		t.Errorf("unsafe state directory: exit %d, output %q; want exit 2 and the fix", code, out)
	}

	const dashed = "-bg1"
	if code, out := run(dashed); code != 0 {
		t.Fatalf("hoprd -- %s: exit %d, output %q", dashed, code, out)
	}
	if out, err := runCmd("ip", "-n", r.h.ns, "link", "show", "dev", dashed); err != nil {
		t.Fatalf("no interface %s after hoprd -- %s: %v\n%s", dashed, dashed, err, out)
	}
	// Deleting its link stops the daemon, which then removes its sockets.
	if out, err := runCmd("ip", "-n", r.h.ns, "link", "del", "dev", dashed); err != nil {
		t.Fatalf("delete %s: %v\n%s", dashed, err, out)
	}
	sock := filepath.Join(r.runDir, dashed+".sock")
	for deadline := time.Now().Add(stopTimeout); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon of %s still runs %v after its link was deleted", dashed,
				stopTimeout)
		}
	}
}
