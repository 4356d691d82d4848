package control

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the user the tests below connect as.
const nobody = 65534

// clientEnv makes the test binary act as a client (see TestMain): its
// value is "status PATH" or "running DIR".
const clientEnv = "HOPRD_CONTROL_TEST_CLIENT"

func TestMain(m *testing.M) {
	if req := os.Getenv(clientEnv); req != "" {
		os.Exit(runClient(req))
	}
	os.Exit(m.Run())
}

// runClient does what req says and prints the outcome on stdout.
func runClient(req string) int {
	op, arg, _ := strings.Cut(req, " ")
	switch op {
	case "status":
		c, err := net.DialTimeout("unix", arg, time.Second)
		if err != nil {
			fmt.Println("dial:", err)
			return 1
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(c, `{"op":"status"}`+"\n")
		reply, _ := io.ReadAll(c)
		fmt.Printf("reply: %q\n", reply)
	case "running":
		names, err := Running(arg)
		fmt.Printf("names %v err %v permission %v\n", names, err,
			errors.Is(err, ErrPermission))
	}
	return 0
}

// asNobody runs the test binary as a client with uid and gid nobody.
func asNobody(t *testing.T, req string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs the tests as root: refusing to skip")
		}
		t.Skip("needs root to run a client as another user")
	}
	// The test binary sits in a directory only its builder may enter.
	bin := filepath.Join(shortDir(t), "client")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), clientEnv+"="+req)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as nobody: %v\n%s", err, out)
	}
	return string(out)
}

// TestOtherUserRefused opens the socket and its directory to everyone, as
// a umask or a shared run directory can for a moment, and checks that a
// client of another user still gets no status: the server asks the kernel
// who connected.
func TestOtherUserRefused(t *testing.T) {
	dir := shortDir(t)
	run := filepath.Join(dir, "run")
	s := listen(t, run)
	for _, p := range []string{dir, run} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(s.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	out := asNobody(t, "status "+s.Path())
	if !strings.HasPrefix(out, "reply: ") || strings.Contains(out, "hop0") {
		t.Fatalf("a client of another user got: %s", out)
	}
	if r := ask(t, s.Path(), []byte(`{"op":"status"}`+"\n")); r.Status == nil {
		t.Fatalf("root got no status: %+v", r)
	}
}

// TestRunningPermission checks that a run directory the user may not read
// is reported as such, not as one where no daemon runs.
func TestRunningPermission(t *testing.T) {
	dir := shortDir(t)
	run := filepath.Join(dir, "run")
	listen(t, run) // run is 0700 and root's
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := asNobody(t, "running "+run)
	if !strings.Contains(out, "permission true") || !strings.Contains(out, run) {
		t.Fatalf("Running as another user: %s", out)
	}
}
