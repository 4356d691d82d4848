package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoprd/hoprd/device"
)

// testStatus is what the servers under test report.
func testStatus() device.Status {
	return device.Status{
		Interface: device.InterfaceStatus{Name: "hop0", PublicKey: "pub", ListenPort: 51820},
		Peers:     []device.PeerStatus{},
		Drops:     map[string]uint64{"bad_type": 3},
	}
}

// shortDir returns a temporary directory whose path is short enough for a
// unix socket (108 bytes), which t.TempDir's may not be.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// listen starts a server in a fresh run directory inside dir.
func listen(t *testing.T, runDir string) *Server {
	t.Helper()
	s, err := Listen(runDir, "hop0", testStatus, quietLogger())
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ask sends raw to the socket at path and returns the decoded reply.
func ask(t *testing.T, path string, raw []byte) Response {
	t.Helper()
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(raw); err != nil && !errors.Is(err, net.ErrClosed) {
		// The server may close early on an oversized request; read its reply.
		t.Logf("write: %v", err)
	}
	if uc, ok := c.(*net.UnixConn); ok {
		uc.CloseWrite()
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	var resp Response
	if err := json.Unmarshal(reply, &resp); err != nil {
		t.Fatalf("reply %q is not a response: %v", reply, err)
	}
	return resp
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		wantOp  string
		wantErr error
	}{
		{name: "status", line: `{"op":"status"}`, wantOp: OpStatus},
		{name: "spaces", line: ` { "op" : "status" } `, wantOp: OpStatus},
		{name: "unknown op", line: `{"op":"shutdown"}`, wantErr: ErrUnknownOp},
		{name: "empty op", line: `{"op":""}`, wantErr: ErrUnknownOp},
		{name: "no op", line: `{}`, wantErr: ErrUnknownOp},
		{name: "op in another case", line: `{"op":"STATUS"}`, wantErr: ErrUnknownOp},
		{name: "unknown field", line: `{"op":"status","x":1}`, wantErr: ErrBadRequest},
		{name: "trailing data", line: `{"op":"status"} {}`, wantErr: ErrBadRequest},
		{name: "not json", line: `status`, wantErr: ErrBadRequest},
		{name: "empty", line: ``, wantErr: ErrBadRequest},
		{name: "truncated", line: `{"op":"sta`, wantErr: ErrBadRequest},
		{name: "op not a string", line: `{"op":7}`, wantErr: ErrBadRequest},
		{name: "array", line: `["status"]`, wantErr: ErrBadRequest},
		{name: "too large", line: `{"op":"status"}` + strings.Repeat(" ", MaxRequestSize),
			wantErr: ErrRequestTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseRequest([]byte(tt.line))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseRequest(%.40q) error = %v, want %v", tt.line, err, tt.wantErr)
			}
			if req.Op != tt.wantOp {
				t.Fatalf("ParseRequest(%.40q) op = %q, want %q", tt.line, req.Op, tt.wantOp)
			}
		})
	}
}

// FuzzParseRequest checks that ParseRequest never panics, accepts only
// known operations, and refuses with one of the package's errors.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"status"}`, `{"op":"shutdown"}`, `{}`, `{"op":"status","x":1}`,
		`{"op":"status"}{"op":"status"}`, `{"op":"\u0073tatus"}`, `[`, `{"op":null}`,
		strings.Repeat("[", 100), `{"op":"status"}` + strings.Repeat(" ", MaxRequestSize),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := ParseRequest(line)
		if err != nil {
			if req != (Request{}) {
				t.Fatalf("error %v with a non-empty request %+v", err, req)
			}
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrUnknownOp) &&
				!errors.Is(err, ErrRequestTooLarge) {
				t.Fatalf("error %v is none of the package's", err)
			}
			return
		}
		if req.Op != OpStatus {
			t.Fatalf("accepted op %q", req.Op)
		}
		if len(line) > MaxRequestSize {
			t.Fatalf("accepted a %d-byte request", len(line))
		}
	})
}

func TestServerAnswers(t *testing.T) {
	run := filepath.Join(shortDir(t), "run")
	s := listen(t, run)
	tests := []struct {
		name      string
		raw       string
		wantError string // substring; "" for a status reply
	}{
		{name: "status", raw: `{"op":"status"}` + "\n"},
		{name: "status without newline", raw: `{"op":"status"}`},
		{name: "unknown op", raw: `{"op":"reboot"}` + "\n", wantError: "unknown operation"},
		{name: "bad json", raw: "{{\n", wantError: "bad request"},
		{name: "unknown field", raw: `{"op":"status","key":"x"}` + "\n",
			wantError: "bad request"},
		{name: "empty request", raw: "", wantError: "read request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ask(t, s.Path(), []byte(tt.raw))
			if tt.wantError == "" {
				if resp.Error != "" || resp.Status == nil ||
					resp.Status.Interface.Name != "hop0" ||
					resp.Status.Drops["bad_type"] != 3 {
					t.Fatalf("reply %+v, want the status", resp)
				}
				return
			}
			if resp.Status != nil || !strings.Contains(resp.Error, tt.wantError) {
				t.Fatalf("reply %+v, want an error containing %q", resp, tt.wantError)
			}
		})
	}
	st, err := Status(s.Path())
	if err != nil || st.Interface.ListenPort != 51820 {
		t.Fatalf("Status() = %+v, %v", st, err)
	}
}

// TestOversizedRequestRefused sends requests beyond MaxRequestSize. The
// server reads no more than the limit and refuses: with an error reply, or,
// when the unread rest makes the kernel reset the connection, with no reply
// at all. It never answers with a status, and it goes on serving.
func TestOversizedRequestRefused(t *testing.T) {
	s := listen(t, filepath.Join(shortDir(t), "run"))
	tests := []struct {
		name string
		raw  string
	}{
		{name: "long line", raw: `{"op":"status"}` + strings.Repeat(" ", 2*MaxRequestSize) + "\n"},
		{name: "no newline", raw: strings.Repeat("x", 64<<10)},
		{name: "one byte over", raw: `{"op":"status"}` +
			strings.Repeat(" ", MaxRequestSize+1-len(`{"op":"status"}`)) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("unix", s.Path(), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, werr := c.Write([]byte(tt.raw))
			reply, rerr := io.ReadAll(c)
			switch {
			case len(reply) > 0:
				var resp Response
				if err := json.Unmarshal(reply, &resp); err != nil || resp.Status != nil ||
					!strings.Contains(resp.Error, ErrRequestTooLarge.Error()) {
					t.Fatalf("reply %q, want the error %q", reply, ErrRequestTooLarge)
				}
			case rerr == nil && werr == nil:
				t.Fatal("connection closed without a reply or a reset")
			}
		})
	}
	if _, err := Status(s.Path()); err != nil {
		t.Fatalf("server stopped answering after oversized requests: %v", err)
	}
}

func TestServerModes(t *testing.T) {
	// A run directory the server creates is owner-only; one that exists is
	// left as it is, and the socket is owner-only in both.
	existing := filepath.Join(shortDir(t), "run")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	listen(t, existing)
	run := filepath.Join(shortDir(t), "new", "run")
	s := listen(t, run)
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{run, 0o700}, {existing, 0o755}, {s.Path(), 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("%s has mode %04o, want %04o", c.path, got, c.want)
		}
	}
	if fi, _ := os.Stat(s.Path()); fi.Mode().Type() != os.ModeSocket {
		t.Errorf("%s is not a socket", s.Path())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	run := filepath.Join(shortDir(t), "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	path := SocketPath(run, "hop0")
	// A socket file nobody listens on, as a killed daemon leaves it.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not in place: %v", err)
	}
	s := listen(t, run)
	if _, err := Status(s.Path()); err != nil {
		t.Fatalf("status after replacing a stale socket: %v", err)
	}
}

func TestSecondServerRefused(t *testing.T) {
	run := filepath.Join(shortDir(t), "run")
	first := listen(t, run)
	second, err := Listen(run, "hop0", testStatus, quietLogger())
	if err == nil {
		second.Close()
		t.Fatal("a second server on the same socket started")
	}
	if !strings.Contains(err.Error(), "another hoprd serves hop0") ||
		!strings.Contains(err.Error(), first.Path()) {
		t.Errorf("error %q does not name the socket and the running daemon", err)
	}
	if _, err := Status(first.Path()); err != nil {
		t.Errorf("the first server stopped answering: %v", err)
	}
}

func TestStatusNotRunning(t *testing.T) {
	path := SocketPath(shortDir(t), "hop0")
	_, err := Status(path)
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Status of a missing socket = %v, want ErrNotRunning naming %s", err, path)
	}
}

func TestRunning(t *testing.T) {
	run := filepath.Join(shortDir(t), "run")
	listen(t, run)
	if err := os.WriteFile(filepath.Join(run, "notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	names, err := Running(run)
	if err != nil || len(names) != 1 || names[0] != "hop0" {
		t.Fatalf("Running = %v, %v; want [hop0]", names, err)
	}
}

// TestReadLine checks the request framing on its own.
func TestReadLine(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{name: "line", in: "abc\nrest", want: "abc"},
		{name: "eof ends the line", in: "abc", want: "abc"},
		{name: "one byte over", in: strings.Repeat("a", MaxRequestSize+1) + "\n",
			wantErr: ErrRequestTooLarge},
		{name: "empty", in: "", wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readLine(strings.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("readLine error = %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(got, []byte(tt.want)) {
				t.Fatalf("readLine = %.20q (%d bytes), want %d bytes", got, len(got), len(tt.want))
			}
		})
	}
}

// TestCloseKeepsAnotherDaemonsSocket: when the socket was deleted and
// another daemon took the path, closing the first must not remove it.
func TestCloseKeepsAnotherDaemonsSocket(t *testing.T) {
	run := filepath.Join(shortDir(t), "run")
	first := listen(t, run)
	if err := os.Remove(first.Path()); err != nil {
		t.Fatal(err)
	}
	second := listen(t, run)
	if err := first.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := Status(second.Path()); err != nil {
		t.Fatalf("second daemon's socket gone after the first closed: %v", err)
	}
}
