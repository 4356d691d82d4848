// Package control is the daemon's local control socket: a unix socket,
// owner-only, under the run directory, through which `hoprd status` and
// other thin clients ask the running daemon for its state.
//
// The protocol is one JSON request line and one JSON response line per
// connection:
//
//	-> {"op":"status"}
//	<- {"status":{...}}            or  {"error":"..."}
package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/internal/peercred"
)

// MaxRequestSize bounds a request line; longer requests are refused.
const MaxRequestSize = 4096

// Operations a request may name.
const (
	OpStatus = "status"
)

// Errors of the control protocol.
var (
	ErrRequestTooLarge = errors.New("request too large")
	ErrBadRequest      = errors.New("bad request")
	ErrUnknownOp       = errors.New("unknown operation")
	ErrNotRunning      = errors.New("no hoprd daemon is running")
	ErrPermission      = errors.New("permission denied")
)

// Request is what a client asks.
type Request struct {
	Op string `json:"op"`
}

// Response is what the daemon answers.
type Response struct {
	Status *device.Status `json:"status,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// ParseRequest decodes one request line. It accepts no unknown fields.
func ParseRequest(line []byte) (Request, error) {
	var r Request
	if len(line) > MaxRequestSize {
		return r, ErrRequestTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: trailing data", ErrBadRequest)
	}
	switch r.Op {
	case OpStatus:
		return r, nil
	}
	return Request{}, fmt.Errorf("%w %q", ErrUnknownOp, r.Op)
}

// SocketPath is where the daemon of interface name listens.
func SocketPath(runDir, name string) string {
	return filepath.Join(runDir, name+".sock")
}

// Server serves the control socket of one interface.
type Server struct {
	ln     net.Listener
	path   string
	fi     os.FileInfo // the socket file, to recognise it on Close
	status func() device.Status
	log    *slog.Logger
	wg     sync.WaitGroup
}

// Listen creates the run directory (mode 0700) and the socket (mode 0600)
// and serves requests until Close. A stale socket left by a crashed daemon
// is replaced; one that a live daemon answers on is an error.
func Listen(
	runDir, name string,
	status func() device.Status,
	log *slog.Logger,
) (*Server, error) {
	// A directory we create is owner-only; one that exists is left as it
	// is (it may be /run itself): the socket is owner-only either way.
	if _, err := os.Stat(runDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(runDir, 0o700); err != nil {
			return nil, fmt.Errorf("create run directory: %w", err)
		}
		if err := os.Chmod(runDir, 0o700); err != nil {
			return nil, fmt.Errorf("restrict run directory: %w", err)
		}
	}
	path := SocketPath(runDir, name)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another hoprd serves %s", path, name)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	// Close removes the socket itself, and only if it is still ours.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("restrict control socket: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("stat control socket: %w", err)
	}
	s := &Server{ln: ln, path: path, fi: fi, status: status, log: log}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	// Remove the socket only if it is still ours: another daemon may have
	// taken the path over after ours was deleted.
	if fi, serr := os.Stat(s.path); serr == nil && os.SameFile(fi, s.fi) {
		os.Remove(s.path)
	}
	return err
}

// serve accepts connections until Close, answering at most maxConns at a
// time. An accept error other than the listener's closing (running out of
// file descriptors, say) is waited out, not taken as the end.
func (s *Server) serve() {
	defer s.wg.Done()
	slots := make(chan struct{}, maxConns)
	for {
		c, err := s.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			s.log.Debug("control accept", "err", err)
			time.Sleep(acceptBackoff)
			continue
		}
		slots <- struct{}{}
		s.wg.Add(1)
		go func() {
			defer func() { <-slots; s.wg.Done() }()
			s.handle(c)
		}()
	}
}

// Bounds on the server's work.
const (
	maxConns      = 16                     // requests answered at once
	acceptBackoff = 100 * time.Millisecond // pause after a failed accept
)

// handle answers one request on c.
func (s *Server) handle(c net.Conn) {
	defer c.Close()
	// The socket's mode says the same; this holds even while it does not
	// yet (between bind and chmod) or if someone changes it.
	if uc, ok := c.(*net.UnixConn); ok {
		if uid, trusted, err := peercred.Trusted(uc); !trusted {
			s.log.Debug("control socket: refused a client", "uid", uid, "err", err)
			return
		}
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := readLine(c)
	var resp Response
	if err == nil {
		var req Request
		req, err = ParseRequest(line)
		if err == nil && req.Op == OpStatus {
			st := s.status()
			resp.Status = &st
		}
	}
	if err != nil {
		resp.Error = err.Error()
	}
	enc := json.NewEncoder(c)
	if err := enc.Encode(&resp); err != nil {
		s.log.Debug("control reply", "err", err)
	}
	if errors.Is(err, ErrRequestTooLarge) {
		// Read a bounded amount of what is left before closing, so that the
		// client sees the reply rather than a reset.
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		io.CopyN(io.Discard, c, drainLimit)
	}
}

// drainLimit bounds what the server reads past an oversized request.
const drainLimit = 1 << 16

// readLine reads one newline-terminated line of at most MaxRequestSize.
func readLine(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxRequestSize+1), MaxRequestSize+1)
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > MaxRequestSize {
		return nil, ErrRequestTooLarge
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return nil, fmt.Errorf("read request: %w", err)
	}
	return bytes.TrimRight(line, "\n"), nil
}

// Status asks the daemon at path for its status.
func Status(path string) (*device.Status, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	switch {
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("%w: %s is the daemon's own: run as root or as its user",
			ErrPermission, path)
	case err != nil:
		name := strings.TrimSuffix(filepath.Base(path), ".sock")
		return nil, fmt.Errorf("%w for interface %s (no daemon answers on %s)",
			ErrNotRunning, name, path)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, `{"op":"status"}`+"\n"); err != nil {
		return nil, fmt.Errorf("send status request: %w", err)
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("read status reply: %w", err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("daemon: %s", resp.Error)
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("daemon: empty status reply")
	}
	return resp.Status, nil
}

// Running lists the interface names whose sockets are in runDir.
// A directory this user may not read is an ErrPermission, not an empty
// list: a daemon may well run there.
func Running(runDir string) ([]string, error) {
	entries, err := os.ReadDir(runDir)
	switch {
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("%w: cannot list %s: run as root or as the daemon's user",
			ErrPermission, runDir)
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("list %s: %w", runDir, err)
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".sock"); ok && name != "" &&
			e.Type()&os.ModeSocket != 0 {
			names = append(names, name)
		}
	}
	return names, nil
}
