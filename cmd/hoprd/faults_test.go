package main

// Fault tests: the built hoprd binary meets bad input and a hostile host,
// each test in namespaces of its own, and must answer with the right exit
// code and a message that names the fault, change nothing it should not,
// and never show a secret.
//
//	hopa-* (the host)                        hopsw-*
//	+-------------------------------+        +-------------+
//	| hoprd up -c ...  (the subject)|        |             |
//	| eth0 192.0.2.1/24 ------------+--veth--+ br0         |
//	| + what the test plants: a     |        |             |
//	|   bridge or a stale TUN named |        +-------------+
//	|   hop0, a socket on 51820/udp |
//	+-------------------------------+
//
// The no-secret test uses two such hosts, a and b, with daemons that
// handshake. Every test watches the host's link events while hoprd runs,
// so that an interface created and removed again does not go unnoticed.
// The tests run as root only (under CI, not being root fails them), in the
// e2e stage.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// faultTimeout bounds a hoprd run that is expected to fail at start.
const faultTimeout = 20 * time.Second

// inNetns runs f on an OS thread that has joined the named network
// namespace, so that the sockets f opens live there. The thread leaves the
// namespace afterwards, or, if it cannot, ends with its goroutine.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, err) // the thread stays locked and ends here
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// linkWatch is a netlink socket subscribed to the link events of one
// namespace. It tells afterwards which links appeared, changed or went.
type linkWatch struct {
	ns string
	fd int
}

// watchLinks subscribes to the link events of the namespace ns until t
// ends.
func watchLinks(t *testing.T, ns string) *linkWatch {
	t.Helper()
	w := &linkWatch{ns: ns, fd: -1}
	err := inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC,
			unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		w.fd = fd
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK,
			Groups: unix.RTMGRP_LINK})
	})
	if w.fd >= 0 {
		t.Cleanup(func() { unix.Close(w.fd) })
	}
	if err != nil {
		t.Fatalf("watch links in %s: %v", ns, err)
	}
	return w
}

// events returns the link events queued since the last call, as "new
// NAME" or "del NAME".
func (w *linkWatch) events(t *testing.T) []string {
	t.Helper()
	var out []string
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(w.fd, buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			t.Fatalf("link events of %s: %v", w.ns, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			t.Fatalf("link events of %s: %v", w.ns, err)
		}
		for i := range msgs {
			m := &msgs[i]
			var kind string
			switch m.Header.Type {
			case unix.RTM_NEWLINK:
				kind = "new"
			case unix.RTM_DELLINK:
				kind = "del"
			default:
				continue
			}
			attrs, err := syscall.ParseNetlinkRouteAttr(m)
			if err != nil {
				t.Fatalf("link events of %s: %v", w.ns, err)
			}
			for _, a := range attrs {
				if a.Attr.Type == unix.IFLA_IFNAME {
					out = append(out, kind+" "+strings.TrimRight(string(a.Value), "\x00"))
				}
			}
		}
	}
}

// faultRig is a host namespace with a key, a scratch directory and a
// hoprd binary, for runs that are meant to fail.
type faultRig struct {
	bin      string
	h        *host
	dir      string // keys, configs, run and state directories
	keyPath  string
	runDir   string
	stateDir string
	secrets  []string // texts no output may contain: the private key in base64 and hex
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	requireRoot(t)
	requireTools(t)
	bin := hoprdBinary(t)
	_, hosts := newTopology(t, underlayPrefix, underlayAddrs[0])
	r := &faultRig{bin: bin, h: hosts[0], dir: t.TempDir()}
	addScratch(r.dir)
	r.keyPath = filepath.Join(r.dir, "private.key")
	r.runDir = filepath.Join(r.dir, "run")
	r.stateDir = filepath.Join(r.dir, "state")
	r.secrets = genkeyFile(t, bin, r.keyPath)
	return r
}

// genkeyFile runs "hoprd genkey --out path" under umask 000 and returns
// the key's base64 and hex forms, which no output may show.
func genkeyFile(t *testing.T, bin, path string) []string {
	t.Helper()
	out, err := runCmd("sh", "-c", `umask 000 && exec "$0" genkey --out "$1"`, bin, path)
	if err != nil {
		t.Fatalf("genkey --out %s: %v\n%s", path, err, out)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("genkey --out under umask 000 wrote mode %04o, want 0600", perm)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b64 := strings.TrimSuffix(string(text), "\n")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 32 {
		t.Fatalf("genkey wrote %d bytes that are not a key", len(text))
	}
	return []string{b64, hex.EncodeToString(raw), b64[10:30]}
}

// checkNoSecret fails t when text contains one of secrets.
func checkNoSecret(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s shows a secret key", what)
			return
		}
	}
}

// writeFile writes a file into the rig's directory and returns its path.
func (r *faultRig) writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(r.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// config returns a valid config for the rig's host: interface hop0 and one
// peer, one key per line, as the bad-config cases expect.
func (r *faultRig) config() string {
	return strings.Join([]string{
		`[interface]`,
		`name = "hop0"`,
		`private_key_file = ` + strconv.Quote(r.keyPath),
		`address = ["100.64.0.1/24", "fd7a:686f:7072::1/64"]`,
		`listen_port = 51820`,
		`hop_interval = "100ms"`,
		``,
		`[[peer]]`,
		`name = "b"`,
		`public_key = "` + faultPeerKey + `"`,
		`endpoint = "192.0.2.2:51820"`,
		`allowed_ips = ["100.64.0.2/32"]`,
	}, "\n") + "\n"
}

// A public key for peers that never answer (a valid point, no secret).
const (
	faultPeerKey  = "LWbd31SBju+z/OHHu2b6uDDirA6apwIQay6d+VSgJy4="
	faultPeerKey2 = "L45bo4lcZjSHDwc5GxLSlWxZk/+tPhy01cOnKqYEch8="
)

// runResult is how a hoprd run ended.
type runResult struct {
	code           int
	stdout, stderr string
}

// run runs "hoprd args..." inside the rig's namespace, after the wrapper
// command line wrap (which must exec its last arguments), and waits for it
// to exit. A run still going after faultTimeout is killed and fails t.
func (r *faultRig) run(t *testing.T, wrap []string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	defer cancel()
	full := append([]string{"netns", "exec", r.h.ns}, wrap...)
	full = append(append(full, r.bin), args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", full...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	res := runResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("hoprd %s still running after %v\nstderr:\n%s", strings.Join(args, " "),
			faultTimeout, res.stderr)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run hoprd: %v", err)
	}
	checkNoSecret(t, "hoprd "+args[0]+" output", res.stdout+res.stderr, r.secrets)
	return res
}

// up runs "hoprd up" on the config file cfg, wrapped in wrap.
func (r *faultRig) up(t *testing.T, cfg string, wrap ...string) runResult {
	t.Helper()
	return r.run(t, wrap, "up", "-c", cfg, "--run-dir", r.runDir, "--state-dir", r.stateDir)
}

// expectFault runs "hoprd up" (wrapped in wrap) and checks that it exits
// with code, says every one of want on stderr, and leaves the namespace
// as it found it, without creating or touching any link on the way.
func (r *faultRig) expectFault(t *testing.T, cfg string, code int, want []string,
	wrap ...string) runResult {
	t.Helper()
	before, err := r.h.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	watch := watchLinks(t, r.h.ns)
	res := r.up(t, cfg, wrap...)
	if res.code != code {
		t.Errorf("exit code %d, want %d\nstderr: %s", res.code, code, res.stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, res.stderr)
		}
	}
	if ev := watch.events(t); len(ev) > 0 {
		t.Errorf("links created or changed while hoprd failed: %v", ev)
	}
	after, err := r.h.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if d := before.diff(after); len(d) > 0 {
		t.Errorf("namespace changed:\n  %s", strings.Join(d, "\n  "))
	}
	if socks, _ := filepath.Glob(filepath.Join(r.runDir, "*.sock")); len(socks) > 0 {
		t.Errorf("control sockets left behind: %v", socks)
	}
	return res
}

// TestE2EFaultNoNetAdmin runs hoprd as root without CAP_NET_ADMIN in its
// bounding set: exit 1, naming the capability, and nothing created.
func TestE2EFaultNoNetAdmin(t *testing.T) {
	r := newFaultRig(t)
	cfg := r.writeFile(t, "hoprd.toml", r.config())
	r.expectFault(t, cfg, exitError, []string{"CAP_NET_ADMIN", "hop0"},
		"setpriv", "--bounding-set=-net_admin", "--")
}

// TestE2EFaultNoTUNDevice hides /dev/net/tun in a mount namespace of the
// run's own: exit 1, naming the device, and nothing created.
func TestE2EFaultNoTUNDevice(t *testing.T) {
	r := newFaultRig(t)
	cfg := r.writeFile(t, "hoprd.toml", r.config())
	r.expectFault(t, cfg, exitError, []string{"no /dev/net/tun", "modprobe tun"},
		"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount -t tmpfs tmpfs /dev/net && exec "$0" "$@"`)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Fatalf("/dev/net/tun is gone outside the test's mount namespace: %v", err)
	}
}

// TestE2EFaultListenPortTaken holds the listen port with a socket of each
// family in turn: exit 1 with a message naming the port, and no interface
// created even for a moment.
func TestE2EFaultListenPortTaken(t *testing.T) {
	r := newFaultRig(t)
	cfg := r.writeFile(t, "hoprd.toml", r.config())
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			var c *net.UDPConn
			err := inNetns(r.h.ns, func() error {
				var err error
				c, err = net.ListenUDP(network, &net.UDPAddr{Port: listenPort})
				return err
			})
			if err != nil {
				t.Fatalf("hold port %d/%s: %v", listenPort, network, err)
			}
			defer c.Close()
			r.expectFault(t, cfg, exitError, []string{
				"listen port 51820 is already in use", "listen_port"})
		})
	}
}

// TestE2EFaultLinkExists plants a link named hop0 that is not a TUN: hoprd
// exits 1 naming its kind, and the link stays as it was.
func TestE2EFaultLinkExists(t *testing.T) {
	r := newFaultRig(t)
	cfg := r.writeFile(t, "hoprd.toml", r.config())
	for _, kind := range []string{"bridge", "veth"} {
		t.Run(kind, func(t *testing.T) {
			args := []string{"link", "add", ifName, "type", kind}
			if kind == "veth" {
				args = append(args, "peer", "name", ifName+"p")
			}
			if _, err := r.h.ip(args...); err != nil {
				t.Fatal(err)
			}
			defer r.h.ip("link", "del", ifName)
			index := linkIndex(t, r.h, ifName)
			r.expectFault(t, cfg, exitError, []string{
				"exists and is not a TUN", "kind " + kind, ifName})
			if got := linkIndex(t, r.h, ifName); got != index {
				t.Errorf("the %s hop0 has index %d now, %d before", kind, got, index)
			}
		})
	}
}

// linkIndex returns the index of the link called name in h, or 0.
func linkIndex(t *testing.T, h *host, name string) int {
	t.Helper()
	links := linksNamed(t, h, name)
	if len(links) == 0 {
		return 0
	}
	return links[0].Index
}

// nsLink is a link as "ip -j -d link show" describes it.
type nsLink struct {
	Index    int    `json:"ifindex"`
	Name     string `json:"ifname"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

// linksNamed returns the links of h called name.
func linksNamed(t *testing.T, h *host, name string) []nsLink {
	t.Helper()
	out, err := h.ip("-j", "-d", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	var all []nsLink
	if err := json.Unmarshal(out, &all); err != nil {
		t.Fatalf("decode links: %v", err)
	}
	var named []nsLink
	for _, l := range all {
		if l.Name == name {
			named = append(named, l)
		}
	}
	return named
}

// proc is a hoprd started in a namespace, running until stopped.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid once done is closed
}

// start starts "hoprd up" in the rig's namespace with debug logging to a
// file; t's end stops it if the test did not.
func (r *faultRig) start(t *testing.T, cfg string) *proc {
	t.Helper()
	p := &proc{logPath: filepath.Join(r.dir, "hoprd.log"), done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command("ip", "netns", "exec", r.h.ns, r.bin, "up", "-c", cfg,
		"--run-dir", r.runDir, "--state-dir", r.stateDir, "--log-level", "debug")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM, kills the process if it is still there after
// stopTimeout, and returns how it exited.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("still running %v after SIGTERM: %w", stopTimeout, p.err)
	}
	return p.err
}

// log returns what the process logged.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// status runs "hoprd status" with args against the rig's daemon.
func (r *faultRig) status(args ...string) (string, error) {
	out, err := runCmd(r.bin, append([]string{"status", "-i", ifName, "--run-dir", r.runDir},
		args...)...)
	return string(out), err
}

// waitUp waits until the daemon answers status, failing t if it exits or
// does not answer within readyTimeout.
func (r *faultRig) waitUp(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-p.done:
			t.Fatalf("hoprd exited while starting: %v\n%s", p.err, p.log())
		default:
		}
		_, err := r.status("--json")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hoprd not answering after %v: %v\n%s", readyTimeout, err, p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2EFaultStaleTUN plants a persistent TUN named hop0 with an address,
// as a crashed daemon with a persistent device would leave it: hoprd takes
// it over, runs with exactly one hop0 carrying exactly its own addresses,
// and takes it away when stopped.
func TestE2EFaultStaleTUN(t *testing.T) {
	r := newFaultRig(t)
	cfg := r.writeFile(t, "hoprd.toml", r.config())
	for _, args := range [][]string{
		{"tuntap", "add", "dev", ifName, "mode", "tun"},
		{"addr", "add", "100.64.0.9/24", "dev", ifName},
	} {
		if _, err := r.h.ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	stale := linkIndex(t, r.h, ifName)

	p := r.start(t, cfg)
	r.waitUp(t, p)
	links := linksNamed(t, r.h, ifName)
	if len(links) != 1 || links[0].LinkInfo.Kind != "tun" || links[0].Index == stale {
		t.Errorf("links named hop0: %+v; want one new tun (the stale one had index %d)",
			links, stale)
	}
	out, err := r.h.ip("-j", "addr", "show", "dev", ifName)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []struct {
		AddrInfo []struct {
			Local  string `json:"local"`
			Prefix int    `json:"prefixlen"`
			Scope  string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &addrs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range addrs {
		for _, a := range l.AddrInfo {
			if a.Scope != "link" {
				got = append(got, fmt.Sprintf("%s/%d", a.Local, a.Prefix))
			}
		}
	}
	slices.Sort(got)
	if want := []string{"100.64.0.1/24", "fd7a:686f:7072::1/64"}; !slices.Equal(got, want) {
		t.Errorf("addresses on hop0: %v, want %v", got, want)
	}
	if err := p.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if !strings.Contains(p.log(), "took over a stale tun") {
		t.Errorf("the log does not tell of the takeover:\n%s", p.log())
	}
	if n := len(linksNamed(t, r.h, ifName)); n != 0 {
		t.Errorf("%d links named hop0 after stop, want 0", n)
	}
	checkNoSecret(t, "the log", p.log(), r.secrets)
}

// TestE2EFaultBadConfig runs up on configs with one fault each: exit 2
// before any interface exists, naming the file, the line and the key.
func TestE2EFaultBadConfig(t *testing.T) {
	r := newFaultRig(t)
	base := r.config()
	key31 := strings.Repeat("A", 42) + "==" // 44 characters, 31 bytes
	key33 := strings.Repeat("A", 44)        // 44 characters, 33 bytes
	secondPeer := func(key, allowed string) string {
		return base + "\n[[peer]]\nname = \"c\"\npublic_key = \"" + key +
			"\"\nallowed_ips = [\"" + allowed + "\"]\n"
	}
	tests := []struct {
		name string
		from string // the line of base to replace; "" to use cfg
		to   string // its replacement, the line at fault
		cfg  string // a whole config, when from is ""
		at   string // the line at fault, when cfg is set
		key  string
	}{
		{name: "unknown interface key", from: `listen_port = 51820`,
			to: `listen-port = 51820`, key: "interface.listen-port"},
		{name: "unknown peer key", from: `endpoint = "192.0.2.2:51820"`,
			to: `endpiont = "192.0.2.2:51820"`, key: "peer[1].endpiont"},
		{name: "public key of 31 bytes", from: `public_key = "` + faultPeerKey + `"`,
			to: `public_key = "` + key31 + `"`, key: "peer[1].public_key"},
		{name: "public key of 33 bytes", from: `public_key = "` + faultPeerKey + `"`,
			to: `public_key = "` + key33 + `"`, key: "peer[1].public_key"},
		{name: "public key with spaces", from: `public_key = "` + faultPeerKey + `"`,
			to: `public_key = " ` + faultPeerKey + `"`, key: "peer[1].public_key"},
		{name: "empty interface name", from: `name = "hop0"`, to: `name = ""`,
			key: "interface.name"},
		{name: "interface name of 16 bytes", from: `name = "hop0"`,
			to: `name = "hop0123456789abc"`, key: "interface.name"},
		{name: "interface name with a slash", from: `name = "hop0"`, to: `name = "hop/0"`,
			key: "interface.name"},
		{name: "interface name with a colon", from: `name = "hop0"`, to: `name = "hop:0"`,
			key: "interface.name"},
		{name: "interface name with a space", from: `name = "hop0"`, to: `name = "hop 0"`,
			key: "interface.name"},
		{name: "address without prefix length",
			from: `address = ["100.64.0.1/24", "fd7a:686f:7072::1/64"]`,
			to:   `address = ["100.64.0.1", "fd7a:686f:7072::1/64"]`, key: "interface.address"},
		{name: "prefix length too long",
			from: `address = ["100.64.0.1/24", "fd7a:686f:7072::1/64"]`,
			to:   `address = ["100.64.0.1/33", "fd7a:686f:7072::1/64"]`, key: "interface.address"},
		{name: "bad allowed prefix", from: `allowed_ips = ["100.64.0.2/32"]`,
			to: `allowed_ips = ["100.64.0.2/32x"]`, key: "peer[1].allowed_ips"},
		{name: "endpoint without port", from: `endpoint = "192.0.2.2:51820"`,
			to: `endpoint = "192.0.2.2"`, key: "peer[1].endpoint"},
		{name: "IPv6 endpoint without brackets", from: `endpoint = "192.0.2.2:51820"`,
			to: `endpoint = "2001:db8::2:51820"`, key: "peer[1].endpoint"},
		{name: "IPv6 endpoint without port", from: `endpoint = "192.0.2.2:51820"`,
			to: `endpoint = "[2001:db8::2]"`, key: "peer[1].endpoint"},
		{name: "hop interval too short", from: `hop_interval = "100ms"`,
			to: `hop_interval = "10ms"`, key: "interface.hop_interval"},
		{name: "hop interval too long", from: `hop_interval = "100ms"`,
			to: `hop_interval = "11m"`, key: "interface.hop_interval"},
		{name: "two peers with one key", cfg: secondPeer(faultPeerKey, "100.64.0.3/32"),
			at: `public_key = "` + faultPeerKey + `"`, key: "peer[2].public_key"},
		{name: "two peers with one prefix", cfg: secondPeer(faultPeerKey2, "100.64.0.2/32"),
			at: `allowed_ips = ["100.64.0.2/32"]`, key: "peer[2].allowed_ips"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, at := tt.cfg, tt.at
			if tt.from != "" {
				if !strings.Contains(base, tt.from+"\n") {
					t.Fatalf("base config lacks %q", tt.from)
				}
				cfg, at = strings.Replace(base, tt.from+"\n", tt.to+"\n", 1), tt.to
			}
			line := lastLineOf(cfg, at)
			path := r.writeFile(t, fmt.Sprintf("bad%d.toml", i), cfg)
			want := fmt.Sprintf("%s:%d: %s: ", path, line, tt.key)
			r.expectFault(t, path, exitConfig, []string{want})
		})
	}
	// A link-local endpoint with its zone inside the brackets is valid.
	zoned := strings.Replace(base, `endpoint = "192.0.2.2:51820"`,
		`endpoint = "[fe80::2%eth0]:51820"`, 1)
	path := r.writeFile(t, "zoned.toml", zoned)
	if res := r.run(t, nil, "check", "-c", path); res.code != exitOK {
		t.Errorf("check of a zoned link-local endpoint: exit %d: %s", res.code, res.stderr)
	}
}

// lastLineOf returns the 1-based number of the last line of text equal to
// line, or 0.
func lastLineOf(text, line string) int {
	n := 0
	for i, l := range strings.Split(text, "\n") {
		if l == line {
			n = i + 1
		}
	}
	return n
}

// TestE2EFaultKeyFile runs up with private key files that others may read
// or that another user owns: exit 2 naming the config line, the key
// file's path and the fix, before any interface exists.
func TestE2EFaultKeyFile(t *testing.T) {
	r := newFaultRig(t)
	tests := []struct {
		name string
		mode os.FileMode
		uid  int // -1: root's
		want []string
	}{
		{name: "mode 0644", mode: 0o644, uid: -1, want: []string{"mode 0644", "chmod 600 "}},
		{name: "mode 0640", mode: 0o640, uid: -1, want: []string{"mode 0640", "chmod 600 "}},
		{name: "mode 0604", mode: 0o604, uid: -1, want: []string{"chmod 600 "}},
		{name: "owned by nobody", mode: 0o600, uid: 65534,
			want: []string{"owned by uid 65534", "chown 0 "}},
	}
	content, err := os.ReadFile(r.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := r.writeFile(t, fmt.Sprintf("key%d", i), string(content))
			if err := os.Chmod(key, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.uid >= 0 {
				if err := os.Chown(key, tt.uid, -1); err != nil {
					t.Fatal(err)
				}
			}
			cfg := strings.Replace(r.config(), strconv.Quote(r.keyPath), strconv.Quote(key), 1)
			path := r.writeFile(t, fmt.Sprintf("key%d.toml", i), cfg)
			line := lastLineOf(cfg, `private_key_file = `+strconv.Quote(key))
			want := append([]string{
				fmt.Sprintf("%s:%d: interface.private_key_file: ", path, line),
				key + ": ", key + "\n",
			}, tt.want...)
			r.expectFault(t, path, exitConfig, want)
		})
	}
}

// TestE2ENoSecretInOutput runs two daemons that handshake with a
// preshared key, with debug logging, asks both for their status in both
// formats and stops them: no private or preshared key appears in any
// output, log or status.
func TestE2ENoSecretInOutput(t *testing.T) {
	requireRoot(t)
	requireTools(t)
	bin := hoprdBinary(t)
	_, hosts := newTopology(t, underlayPrefix, underlayAddrs[0], underlayAddrs[1])
	root := t.TempDir()
	addScratch(root)
	rigs := make([]*faultRig, len(hosts))
	var secrets []string
	for i, h := range hosts {
		r := &faultRig{bin: bin, h: h, dir: filepath.Join(root, h.role)}
		if err := os.MkdirAll(r.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		r.keyPath = filepath.Join(r.dir, "private.key")
		r.runDir = filepath.Join(r.dir, "run")
		r.stateDir = filepath.Join(r.dir, "state")
		r.secrets = genkeyFile(t, bin, r.keyPath)
		secrets = append(secrets, r.secrets...)
		rigs[i] = r
	}
	pskPath := filepath.Join(root, "shared.psk")
	secrets = append(secrets, genkeyFile(t, bin, pskPath)...)
	for _, r := range rigs {
		r.secrets = secrets
	}
	pub := make([]string, len(rigs))
	for i, r := range rigs {
		out, err := pubkeyOf(bin, r.keyPath)
		if err != nil {
			t.Fatal(err)
		}
		checkNoSecret(t, "pubkey output", out, secrets)
		pub[i] = out
	}

	procs := make([]*proc, len(rigs))
	for i, r := range rigs {
		other := 1 - i
		cfg := strings.Join([]string{
			`[interface]`,
			`name = "hop0"`,
			`private_key_file = ` + strconv.Quote(r.keyPath),
			`address = [` + strconv.Quote(overlay4[i].String()) + `]`,
			`listen_port = 51820`,
			``,
			`[[peer]]`,
			`name = ` + strconv.Quote(rigs[other].h.role),
			`public_key = ` + strconv.Quote(pub[other]),
			`endpoint = "` + underlayAddrs[other].String() + `:51820"`,
			`allowed_ips = [` + strconv.Quote(hostRoute(overlay4[other]).String()) + `]`,
			`preshared_key_file = ` + strconv.Quote(pskPath),
		}, "\n") + "\n"
		path := r.writeFile(t, "hoprd.toml", cfg)
		if res := r.run(t, nil, "check", "-c", path); res.code != exitOK {
			t.Fatalf("check: exit %d: %s", res.code, res.stderr)
		}
		procs[i] = r.start(t, path)
	}
	for i, r := range rigs {
		r.waitUp(t, procs[i])
	}
	if res := rigs[0].h.ping(overlay4[1].Addr(), 3, 2*time.Second, 0); res.received == 0 {
		t.Fatalf("no ping reply through the tunnel:\n%s", res.output)
	}
	var outputs []string
	for i, r := range rigs {
		for _, args := range [][]string{{"--json"}, {}} {
			out, err := r.status(args...)
			if err != nil {
				t.Fatalf("status %v of %s: %v", args, r.h.role, err)
			}
			if !strings.Contains(out, pub[i]) {
				t.Errorf("status %v of %s does not show its public key", args, r.h.role)
			}
			outputs = append(outputs, out)
		}
	}
	for i, p := range procs {
		if err := p.stop(); err != nil {
			t.Errorf("stop %s: %v", rigs[i].h.role, err)
		}
		outputs = append(outputs, p.log())
	}
	for i, out := range outputs {
		checkNoSecret(t, fmt.Sprintf("output %d", i), out, secrets)
	}
}

// pubkeyOf runs "hoprd pubkey" on the key file at path.
func pubkeyOf(bin, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "pubkey")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pubkey: %w: %s", err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}
