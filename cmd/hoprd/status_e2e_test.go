package main

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestE2EStatusPermission runs "hoprd status -i hop0" as an unprivileged
// user (nobody's uid) against run directories root made, and checks that
// the refusal names its true cause: a run directory it may not search (as
// the daemon leaves it, mode 0700), whether or not a socket is inside, or a
// socket that is the daemon's. It needs root, for the other user, and no
// namespace.
func TestE2EStatusPermission(t *testing.T) {
	requireRoot(t)
	bin := reachableCopy(t, hoprdBinary(t))
	const closedDir = " (owner uid 0, gid 0, mode drwx------), so cannot tell whether " +
		"hop0's daemon runs"
	tests := []struct {
		name    string
		dirMode os.FileMode
		socket  bool
		want    string // after the run directory's path
		notWant string
	}{
		{"closed directory without socket", 0o700, false, closedDir, "daemon's own"},
		{"closed directory with socket", 0o700, true, closedDir, "daemon's own"},
		{"open directory with socket", 0o755, true,
			"/hop0.sock (owner uid 0, gid 0, mode Srw-------) is the daemon's own",
			"cannot search"},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			base := t.TempDir()
			// The test's directories are root's and 0700: let nobody in.
			for _, d := range []string{filepath.Dir(base), base} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			runDir := filepath.Join(base, "run")
			if err := os.Mkdir(runDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.socket {
				ln, err := net.Listen("unix", filepath.Join(runDir, "hop0.sock"))
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				if err := os.Chmod(filepath.Join(runDir, "hop0.sock"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(runDir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "status", "-i", "hop0", "--run-dir", runDir)
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
			}
			out, err := cmd.CombinedOutput()
			msg := string(out)
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("status as nobody: %v: %s", err, msg)
			}
			if !strings.HasPrefix(msg, "hoprd: permission denied: ") ||
				!strings.Contains(msg, runDir+tc.want) || strings.Contains(msg, tc.notWant) {
				t.Errorf("status as nobody said %q, want %q after %s and no %q", msg,
					tc.want, runDir, tc.notWant)
			}
		})
	}
}

// reachableCopy copies the executable bin where nobody's uid may run it:
// the build, or HOPRD_BIN, may sit below a directory only root can enter.
func reachableCopy(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "hoprd")
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
