package uapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/handshake"
	"github.com/hoprd/hoprd/internal/peercred"
	"golang.org/x/sys/unix"
)

// Routes keeps the kernel's routes in step with the peers' allowed IPs.
// *tun.Interface implements it.
type Routes interface {
	AddRoute(p netip.Prefix) error
	RemoveRoute(p netip.Prefix) error
}

// Config describes a Server.
type Config struct {
	// Dir holds the socket; empty means SocketDir.
	Dir string
	// Name is the interface name; the socket is Dir/Name.sock.
	Name string
	// Device is the device the requests read and change.
	Device *device.Device
	// Routes, if set, gets a route for each allowed IP a request adds and
	// loses those of the allowed IPs it removes. Leave it nil when
	// something else manages routes, as wg-quick does.
	Routes Routes
	// Logger receives a line per applied change; nil discards them.
	Logger *slog.Logger
}

// Server serves the configuration protocol for one device. Set requests
// are applied one at a time.
type Server struct {
	cfg  Config
	ln   *net.UnixListener
	path string
	fi   os.FileInfo // the socket file, to remove only our own on Close
	log  *slog.Logger

	mu    sync.Mutex // serializes requests against the device
	slots chan struct{}

	connsMu sync.Mutex // guards conns and closed
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// Listen creates cfg.Dir (mode 0755) if needed and the socket in it (mode
// 0600, created in a private directory and linked into place, so it is
// never reachable with looser permissions), and serves requests until
// Close. A stale socket is replaced; one a live process answers on is
// ErrSocketInUse. The private directories that servers of the same name
// killed while starting left behind are removed (removeStaleStaging).
func Listen(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		cfg.Dir = SocketDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, "/\x00") || cfg.Name[0] == '.' {
		return nil, fmt.Errorf("listen on configuration socket: bad interface name %q", cfg.Name)
	}
	path := filepath.Join(cfg.Dir, cfg.Name+".sock")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Dir, err)
	}
	if err := claimPath(path); err != nil {
		return nil, err
	}
	// Litter only: a directory that cannot be removed does not stop the
	// socket from being served.
	if err := removeStaleStaging(cfg.Dir, cfg.Name); err != nil {
		cfg.Logger.Warn("configuration socket: stale staging directory left", "err", err)
	}
	ln, err := listenPrivately(cfg.Dir, cfg.Name, path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	s := &Server{
		cfg:   cfg,
		ln:    ln,
		path:  path,
		fi:    fi,
		log:   cfg.Logger,
		slots: make(chan struct{}, MaxConnections),
		conns: make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// claimPath makes sure nothing live sits at path: a socket no process
// answers on is removed, a live one is ErrSocketInUse, and anything that
// is not a socket is left alone and reported.
func claimPath(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("listen on %s: a file that is not a socket is in the way", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("listen on %s: %w", path, ErrSocketInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// stagedSocket is the name of the socket in a staging directory.
const stagedSocket = "s"

// stagingPrefix begins the name of the staging directories of interface
// name; os.MkdirTemp ends it with decimal digits.
func stagingPrefix(name string) string { return "." + name + "." }

// isStagingDir reports whether entry names a staging directory of
// interface name. The digits must make up all the rest, so that the
// directories of "wg.0" are never taken for those of "wg".
func isStagingDir(entry, name string) bool {
	rest, ok := strings.CutPrefix(entry, stagingPrefix(name))
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// removeStaleStaging removes the staging directories that listenPrivately
// leaves behind when a server of the same name is killed while it starts:
// directories in dir named as isStagingDir says, owned by this user, whose
// socket nothing answers on. One whose socket answers belongs to a server
// starting now, and is left to it.
func removeStaleStaging(dir, name string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("look for stale staging directories in %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if !isStagingDir(e.Name(), name) {
			continue
		}
		tmp := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(tmp)
		if errors.Is(err, os.ErrNotExist) {
			continue // its server has just removed it
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("inspect %s: %w", tmp, err))
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || !ok || st.Uid != uint32(os.Geteuid()) {
			continue
		}
		staged := filepath.Join(tmp, stagedSocket)
		if c, err := net.DialTimeout("unix", staged, time.Second); err == nil {
			c.Close()
			continue
		}
		if err := os.RemoveAll(tmp); err != nil {
			errs = append(errs, fmt.Errorf("remove stale staging directory %s: %w", tmp, err))
		}
	}
	return errors.Join(errs...)
}

// listenPrivately binds the socket in a fresh mode-0700 directory, sets
// its mode to 0600 and only then links it to path.
func listenPrivately(dir, name, path string) (*net.UnixListener, error) {
	tmp, err := os.MkdirTemp(dir, stagingPrefix(name))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	staged := filepath.Join(tmp, stagedSocket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: staged, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(staged, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict %s: %w", path, err)
	}
	if err := os.Link(staged, path); err != nil {
		ln.Close()
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("listen on %s: %w", path, ErrSocketInUse)
		}
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return ln, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops serving, ends open connections and removes the socket if it
// is still ours.
func (s *Server) Close() error {
	s.connsMu.Lock()
	s.closed = true
	for c := range s.conns {
		c.SetDeadline(time.Now())
	}
	s.connsMu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	if fi, lerr := os.Lstat(s.path); lerr == nil && os.SameFile(fi, s.fi) {
		os.Remove(s.path)
	}
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("configuration socket", "err", err)
			}
			return
		}
		if !s.admit(c) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release(c)
			s.handle(c)
		}()
	}
}

// admit takes a connection slot for c if one is free, the server is open
// and the client is root or the server's own user (the socket's mode
// already says so; this holds even if the mode is changed).
func (s *Server) admit(c *net.UnixConn) bool {
	// Debug, not Warn: any local user can connect, as often as it likes.
	if uid, ok, err := peercred.Trusted(c); !ok {
		s.log.Debug("configuration socket: refused a client", "uid", uid, "err", err)
		return false
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.log.Warn("configuration socket: too many clients")
		return false
	}
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.closed {
		<-s.slots
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// extendDeadline gives c another RequestTimeout, unless the server is
// closing (Close has set c's deadline to the past).
func (s *Server) extendDeadline(c net.Conn) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.closed {
		return false
	}
	c.SetDeadline(time.Now().Add(RequestTimeout))
	return true
}

func (s *Server) release(c net.Conn) {
	c.Close()
	s.connsMu.Lock()
	delete(s.conns, c)
	s.connsMu.Unlock()
	<-s.slots
}

// handle serves the requests of one connection.
func (s *Server) handle(c net.Conn) {
	p := NewParser(c)
	for s.extendDeadline(c) {
		req, err := p.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		var reply []byte
		if err == nil {
			reply, err = s.serveRequest(req)
		}
		if err != nil {
			s.log.Warn("configuration request refused", "err", err)
			reply = strconv.AppendInt([]byte(keyErrno+"="), -int64(errnoOf(err)), 10)
			reply = append(reply, '\n', '\n')
		}
		_, werr := c.Write(reply)
		clear(reply)
		if werr != nil || isFraming(err) {
			return
		}
	}
}

// serveRequest runs one request and returns its whole reply.
func (s *Server) serveRequest(req *Request) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Op == OpGet {
		return s.get(), nil
	}
	defer req.Set.Zero()
	if err := s.apply(req.Set); err != nil {
		return nil, err
	}
	return []byte(keyErrno + "=0\n\n"), nil
}

// isFraming reports whether err leaves the stream out of step, so that the
// connection must end.
func isFraming(err error) bool {
	return errors.Is(err, ErrLineTooLong) || errors.Is(err, ErrRequestTooLarge) ||
		errors.Is(err, ErrUnknownOperation) || errors.Is(err, ErrTruncated)
}

// errnoOf maps an error to the errno the protocol reports.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case isFraming(err):
		return unix.EPROTO
	case errors.Is(err, ErrMalformedLine) || errors.Is(err, ErrUnknownKey) ||
		errors.Is(err, ErrInvalidValue):
		return unix.EINVAL
	case errors.Is(err, device.ErrPrefixClaimed):
		return unix.EEXIST
	case errors.Is(err, device.ErrClosed):
		return unix.ENODEV
	case errors.As(err, &errno):
		return errno
	}
	return unix.EIO
}

// get writes the reply to a get request: the interface, then each peer in
// the order status lists them, then errno=0.
func (s *Server) get() []byte {
	d := s.cfg.Device
	peers := d.Peers()
	slices.SortFunc(peers, func(a, b *device.Peer) int {
		return strings.Compare(a.Name(), b.Name())
	})
	w := &replyWriter{buf: make([]byte, 0, 128+len(peers)*512)}

	if k, ok := d.PrivateKey(); ok {
		w.key(keyPrivateKey, k[:])
		k.Zero()
	}
	if port := d.ListenPort(); port != 0 {
		w.uint(keyListenPort, uint64(port))
	}
	if mark := d.Fwmark(); mark != 0 {
		w.uint(keyFwmark, uint64(mark))
	}
	for _, p := range peers {
		pub := p.PublicKey()
		w.key(keyPublicKey, pub[:])
		psk := p.PresharedKey()
		w.key(keyPresharedKey, psk[:])
		psk.Zero()
		w.line(keyProtocolVersion, protocolVersion)
		if ep := p.Endpoint(); ep != "" {
			w.line(keyEndpoint, ep)
		}
		var secs, nsecs int64
		if t := p.LastHandshake(); !t.IsZero() {
			ns := t.UnixNano()
			secs, nsecs = ns/int64(time.Second), ns%int64(time.Second)
		}
		w.uint(keyLastHandshakeTimeSec, uint64(secs))
		w.uint(keyLastHandshakeTimeNsec, uint64(nsecs))
		rx, tx := p.Transfer()
		w.uint(keyTxBytes, tx)
		w.uint(keyRxBytes, rx)
		w.uint(keyPersistentKeepaliveInterval, uint64(p.PersistentKeepalive()/time.Second))
		for _, pfx := range p.AllowedIPs() {
			w.line(keyAllowedIP, pfx.String())
		}
	}
	w.line(keyErrno, "0")
	w.grow(1)
	w.buf = append(w.buf, '\n')
	return w.buf
}

// replyWriter builds a reply in one buffer. When the buffer must grow, the
// old one is wiped, so no stray copy of a key stays behind.
type replyWriter struct {
	buf []byte
}

func (w *replyWriter) grow(n int) {
	if cap(w.buf)-len(w.buf) >= n {
		return
	}
	bigger := make([]byte, len(w.buf), 2*cap(w.buf)+n)
	copy(bigger, w.buf)
	clear(w.buf)
	w.buf = bigger
}

func (w *replyWriter) line(key, value string) {
	w.grow(len(key) + len(value) + 2)
	w.buf = append(w.buf, key...)
	w.buf = append(w.buf, '=')
	w.buf = append(w.buf, value...)
	w.buf = append(w.buf, '\n')
}

func (w *replyWriter) uint(key string, v uint64) {
	w.grow(len(key) + 22)
	w.buf = append(w.buf, key...)
	w.buf = append(w.buf, '=')
	w.buf = strconv.AppendUint(w.buf, v, 10)
	w.buf = append(w.buf, '\n')
}

func (w *replyWriter) key(key string, k []byte) {
	const digits = "0123456789abcdef"
	w.grow(len(key) + 2*len(k) + 2)
	w.buf = append(w.buf, key...)
	w.buf = append(w.buf, '=')
	for _, b := range k {
		w.buf = append(w.buf, digits[b>>4], digits[b&0x0f])
	}
	w.buf = append(w.buf, '\n')
}

// apply carries out a set request, in the protocol's order: replace_peers,
// the private key, the listen port, the fwmark, then each peer section. It
// stops at the first change that fails; the changes before it stay made,
// as with WireGuard's own implementations, but a peer section that fails
// leaves its peer as it was (applyPeer).
func (s *Server) apply(set *Set) error {
	d := s.cfg.Device
	if set.ReplacePeers {
		for _, p := range d.Peers() {
			if err := s.removePeer(p); err != nil {
				return err
			}
		}
	}
	if set.PrivateKey != nil {
		if err := s.setPrivateKey(*set.PrivateKey); err != nil {
			return err
		}
	}
	if set.ListenPort != nil {
		if err := d.SetListenPort(*set.ListenPort); err != nil {
			return err
		}
	}
	if set.Fwmark != nil {
		if err := d.SetFwmark(*set.Fwmark); err != nil {
			return err
		}
	}
	for i := range set.Peers {
		if err := s.applyPeer(&set.Peers[i]); err != nil {
			return err
		}
	}
	return nil
}

// setPrivateKey installs k; a peer that has k's public key is removed
// first, with its routes.
func (s *Server) setPrivateKey(k handshake.PrivateKey) error {
	d := s.cfg.Device
	if !k.IsZero() {
		if p := d.Peer(k.PublicKey()); p != nil {
			if err := s.removePeer(p); err != nil {
				return err
			}
		}
	}
	if err := d.SetPrivateKey(k); err != nil {
		return err
	}
	s.log.Info("private key set", "public_key", d.PublicKey().String())
	return nil
}

// applyPeer carries out one peer section. Each section is all or nothing:
// when it fails, the peer is as it was before the section, so that the
// request can be repeated and fails the same way.
func (s *Server) applyPeer(ps *PeerSet) error {
	d := s.cfg.Device
	if d.HasPrivateKey() && ps.PublicKey.Equal(d.PublicKey()) {
		return nil // WireGuard ignores a peer with the interface's own key
	}
	p := d.Peer(ps.PublicKey)
	switch {
	case ps.Remove:
		if p == nil {
			return nil
		}
		return s.removePeer(p)
	case p == nil && ps.UpdateOnly:
		return nil
	case p == nil:
		return s.addPeer(ps)
	}
	return s.updatePeer(p, ps)
}

// updatePeer changes an existing peer as ps asks. The changes that can
// fail, the allowed IPs with their routes and then the endpoint, come
// first, and a failure undoes those made before it; the preshared key and
// the keepalive, which cannot fail, come last.
func (s *Server) updatePeer(p *device.Peer, ps *PeerSet) error {
	undo, changed, err := s.setAllowedIPs(p, ps)
	if err != nil {
		return err
	}
	if ps.Endpoint.IsValid() && ps.Endpoint.String() != p.Endpoint() {
		if err := p.SetEndpoint(ps.Endpoint); err != nil {
			err = fmt.Errorf("set endpoint of %q: %w", p.Name(), err)
			return errors.Join(err, undo())
		}
		changed = true
	}
	if ps.PresharedKey != nil {
		changed = p.SetPresharedKey(*ps.PresharedKey) || changed
	}
	if ps.PersistentKeepalive != nil {
		was := p.PersistentKeepalive()
		every := time.Duration(*ps.PersistentKeepalive) * time.Second
		p.SetPersistentKeepalive(every)
		if was == 0 && every > 0 {
			p.SendKeepalive()
		}
		changed = changed || was != every
	}
	if changed { // a "wg syncconf" of the same config changes nothing
		s.log.Info("peer updated", "peer", p.Name())
	}
	return nil
}

// setAllowedIPs gives p the allowed IPs ps asks for, and their routes. When
// it fails, p keeps the allowed IPs and routes it had. When it succeeds, it
// returns a function that puts them back, and whether they changed.
func (s *Server) setAllowedIPs(
	p *device.Peer,
	ps *PeerSet,
) (undo func() error, changed bool, err error) {
	if !ps.ReplaceAllowedIPs && len(ps.AllowedIPs) == 0 {
		return func() error { return nil }, false, nil
	}
	d := s.cfg.Device
	old := p.AllowedIPs()
	var have []netip.Prefix
	if !ps.ReplaceAllowedIPs {
		have = old
	}
	// SetAllowedIPs checks every prefix before it changes any, so a prefix
	// another peer holds leaves p as it was.
	added, removed, err := d.SetAllowedIPs(p.PublicKey(), applyAllowedIPs(have, ps.AllowedIPs))
	if err != nil {
		return nil, false, err
	}
	restore := func() error {
		// Requests are serialized, so no other peer can have claimed the
		// prefixes p gave up in the meantime.
		if _, _, err := d.SetAllowedIPs(p.PublicKey(), old); err != nil {
			return fmt.Errorf("restore allowed ips of %q: %w", p.Name(), err)
		}
		return nil
	}
	if err := s.routes(added, removed); err != nil {
		err = fmt.Errorf("route allowed ips of %q: %w", p.Name(), err)
		return nil, false, errors.Join(err, restore())
	}
	undo = func() error {
		return errors.Join(restore(), s.undoRoutes(added, removed))
	}
	return undo, len(added) > 0 || len(removed) > 0, nil
}

// addPeer creates the peer a section describes; it speaks WireGuard. When
// its routes cannot be added, the peer is removed again, so that the
// request changes nothing.
func (s *Server) addPeer(ps *PeerSet) error {
	d := s.cfg.Device
	pc := device.PeerConfig{
		PublicKey:  ps.PublicKey,
		Protocol:   handshake.WireGuard,
		Endpoint:   ps.Endpoint,
		AllowedIPs: applyAllowedIPs(nil, ps.AllowedIPs),
	}
	if ps.PresharedKey != nil {
		pc.PresharedKey = *ps.PresharedKey
	}
	defer pc.PresharedKey.Zero()
	// The keepalive is set only once the routes are in: AddPeer would
	// contact the peer at once, before the peer is sure to stay.
	p, err := d.AddPeer(pc)
	if errors.Is(err, device.ErrPeerExists) {
		// Only the short name, the key's first characters, can clash.
		pc.Name = ps.PublicKey.String()
		p, err = d.AddPeer(pc)
	}
	if err != nil {
		return err
	}
	allowed := p.AllowedIPs()
	if err := s.routes(allowed, nil); err != nil {
		err = fmt.Errorf("route allowed ips of new peer %q: %w", p.Name(), err)
		if rerr := d.RemovePeer(p.PublicKey()); rerr != nil {
			rerr = fmt.Errorf("remove new peer %q again: %w", p.Name(), rerr)
			return errors.Join(err, rerr)
		}
		return err
	}
	if ps.PersistentKeepalive != nil && *ps.PersistentKeepalive > 0 {
		p.SetPersistentKeepalive(time.Duration(*ps.PersistentKeepalive) * time.Second)
		if p.Endpoint() != "" {
			// As WireGuard does: a peer kept alive is contacted at once.
			p.SendKeepalive()
		}
	}
	s.log.Info("peer added", "peer", p.Name(), "mode", p.Protocol().Name,
		"allowed_ips", allowed)
	return nil
}

// removePeer removes p and the routes of its allowed IPs. The routes go
// first: removing the peer cannot fail, so a route that cannot be removed
// leaves p, and the routes it had, in place.
func (s *Server) removePeer(p *device.Peer) error {
	if err := s.routes(nil, p.AllowedIPs()); err != nil {
		return fmt.Errorf("remove peer %q: %w", p.Name(), err)
	}
	// ErrUnknownPeer says the peer is gone already, which is what was asked.
	if err := s.cfg.Device.RemovePeer(p.PublicKey()); err != nil &&
		!errors.Is(err, device.ErrUnknownPeer) {
		return fmt.Errorf("remove peer %q: %w", p.Name(), err)
	}
	s.log.Info("peer removed", "peer", p.Name())
	return nil
}

// routes adds and removes kernel routes when the server manages them. It
// is all or nothing too: on a failure it undoes the changes it made, and
// the error says why (and what could not be undone). Routes are added
// before others are removed, since a failure is likelier when adding, and
// the traffic that moves to another prefix then never lacks a route.
func (s *Server) routes(added, removed []netip.Prefix) error {
	r := s.cfg.Routes
	if r == nil {
		return nil
	}
	for i, pfx := range added {
		if err := r.AddRoute(pfx); err != nil {
			return errors.Join(err, s.undoRoutes(added[:i], nil))
		}
	}
	for i, pfx := range removed {
		if err := r.RemoveRoute(pfx); err != nil {
			return errors.Join(err, s.undoRoutes(added, removed[:i]))
		}
	}
	return nil
}

// undoRoutes takes back a change of routes: it removes those added and
// adds back those removed, carrying on past failures.
func (s *Server) undoRoutes(added, removed []netip.Prefix) error {
	r := s.cfg.Routes
	if r == nil {
		return nil
	}
	var errs []error
	for _, pfx := range added {
		if err := r.RemoveRoute(pfx); err != nil {
			errs = append(errs, fmt.Errorf("undo: %w", err))
		}
	}
	for _, pfx := range removed {
		if err := r.AddRoute(pfx); err != nil {
			errs = append(errs, fmt.Errorf("undo: %w", err))
		}
	}
	return errors.Join(errs...)
}

// applyAllowedIPs returns have with the changes of a request applied in
// order: each prefix added once, removals taking out an equal prefix.
func applyAllowedIPs(have []netip.Prefix, changes []AllowedIP) []netip.Prefix {
	out := slices.Clone(have)
	for _, c := range changes {
		i := slices.Index(out, c.Prefix)
		switch {
		case c.Remove && i >= 0:
			out = slices.Delete(out, i, i+1)
		case !c.Remove && i < 0:
			out = append(out, c.Prefix)
		}
	}
	return out
}
