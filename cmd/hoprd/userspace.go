package main

// hoprd as wg-quick's userspace implementation: "hoprd [-f] INTERFACE".
//
// When the kernel has no WireGuard, wg-quick runs the program named by
// WG_QUICK_USERSPACE_IMPLEMENTATION with the interface name as its only
// argument and waits for it to exit. The program must create the TUN and
// the configuration socket (/var/run/wireguard/INTERFACE.sock) and go to
// the background; wg-quick then sets the key and peers with wg(8), adds
// the addresses and routes with ip(8), and later deletes the link, which
// ends the program. With -f (or WG_PROCESS_FOREGROUND=1, as wireguard-go
// reads it) the program stays in the foreground.
//
// To go to the background hoprd runs itself again with -f in a new
// session, and waits on a pipe until the child reports that the interface
// and its sockets are up (or why they are not); only then does it exit.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hoprd/hoprd/bind"
	"github.com/hoprd/hoprd/config"
	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/device/control"
	"github.com/hoprd/hoprd/device/uapi"
	"github.com/hoprd/hoprd/tun"
	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"
)

// Environment of the userspace mode.
const (
	// foregroundEnv set to "1" keeps the daemon in the foreground, as
	// wireguard-go does.
	foregroundEnv = "WG_PROCESS_FOREGROUND"
	// logLevelEnv sets the log level (debug, info, warn, error or
	// silent). In the background the daemon keeps its standard output and
	// error only when it is set, as wireguard-go does; otherwise they go
	// to /dev/null.
	logLevelEnv = "LOG_LEVEL"
	// readyFDEnv names, in the background child only, the pipe on which it
	// reports that it is up.
	readyFDEnv = "HOPRD_READY_FD"
)

const (
	// daemonTimeout bounds the wait for the background child to come up.
	daemonTimeout = 30 * time.Second
	// readyLine is what the child writes once the interface is up.
	readyLine = "ready"
	// errorPrefix starts what the child writes when it cannot start, and
	// usagePrefix what it writes when the reason is a usage error (exit 2).
	errorPrefix = "error: "
	usagePrefix = "usage: "
)

type userspaceFlags struct {
	foreground bool
}

// addUserspace makes root accept one positional argument that is not a
// subcommand: the name of an interface to run for wg-quick.
func addUserspace(root *cobra.Command, g *globalFlags) {
	f := &userspaceFlags{}
	root.Use = "hoprd [-f] INTERFACE"
	root.Long = "A tunnel daemon: peers authenticate by key pair; traffic keys hop on a " +
		"schedule.\n\n" +
		"With a subcommand, runs it: \"hoprd up -c FILE\" runs the daemon for the\n" +
		"interface a config file describes, and the other commands (below) make\n" +
		"keys, check a config file or ask a running daemon for its status.\n" +
		"\n" +
		"With an interface name, creates that interface with no address, no key and\n" +
		"no peer, serves its wg(8) configuration socket and goes to the background\n" +
		"(with -f, stays in the foreground), as wg-quick expects of the program named\n" +
		"by WG_QUICK_USERSPACE_IMPLEMENTATION. Deleting the link stops it."
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			return usageError{fmt.Errorf("%s takes one interface name, got %d arguments",
				cmd.CommandPath(), len(args))}
		}
		return nil
	}
	root.Flags().BoolVarP(&f.foreground, "foreground", "f", false,
		"with INTERFACE: stay in the foreground")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			cmd.SetOut(cmd.ErrOrStderr())
			cmd.Help()
			return usageError{errors.New("name a command or an interface")}
		}
		name := args[0]
		if sub, ok := typoOf(cmd, name); ok {
			return usageError{fmt.Errorf("unknown command %q; did you mean %q? (an "+
				"interface name that looks like a mistyped command is refused; "+
				"interface names usually end in a digit, like hop0)", name, sub)}
		}
		// Checked before the name becomes part of any path.
		if err := config.CheckInterfaceName(name); err != nil {
			return usageError{fmt.Errorf("interface name: %w", err)}
		}
		if g.wgDir == "" {
			return usageError{errors.New("--wg-dir is empty: an interface run for wg-quick " +
				"is configured only through its wg socket")}
		}
		if _, err := userspaceLogger(); err != nil {
			return err
		}
		if f.foreground || os.Getenv(foregroundEnv) == "1" {
			return runUserspace(cmd.Context(), g, name)
		}
		return daemonize(g, name)
	}
}

// typoOf returns the subcommand of root that name plausibly misspells.
// Running an interface is what a mistyped command would otherwise do, as
// root, in the background; but most names one edit away from a short
// command are fine interface names, so only these count as typos, letter
// case aside:
//
//   - never a name with a digit in it: interface names nearly always have
//     one (hop0, wg1), command names have none;
//   - for a command of four or more letters, one letter added, dropped or
//     changed, or two neighbours swapped ("statsu", "chek", "genky");
//   - for a shorter command ("up"), only two neighbours swapped ("pu"):
//     any other edit of it leaves a name too short to tell from an
//     interface name ("p", "u", "vp"). So no single-letter name is refused.
func typoOf(root *cobra.Command, name string) (string, bool) {
	if strings.ContainsAny(name, "0123456789") {
		return "", false
	}
	lower := strings.ToLower(name)
	for _, c := range root.Commands() {
		for _, n := range append([]string{c.Name()}, c.Aliases...) {
			typo := oneEditApart(lower, n)
			if len(n) < minTypoCommandLen {
				typo = len(lower) == len(n) && swapApart(lower, n)
			}
			if typo {
				return n, true
			}
		}
	}
	return "", false
}

// minTypoCommandLen is the shortest command of which any one edit counts
// as a typo; of a shorter one, only a swap of neighbours does.
const minTypoCommandLen = 4

// swapApart reports whether a and b, of equal length, are equal or differ
// only by a swap of two neighbouring letters.
func swapApart(a, b string) bool {
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return i == len(a) ||
		i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
}

// oneEditApart reports whether a and b are equal or one edit apart, a swap
// of neighbouring letters counting as one edit.
func oneEditApart(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	switch len(a) - len(b) {
	case 0:
		i := 0
		for i < len(a) && a[i] == b[i] {
			i++
		}
		return i == len(a) || a[i+1:] == b[i+1:] || swapApart(a, b)
	case 1:
		i := 0
		for i < len(b) && a[i] == b[i] {
			i++
		}
		return a[i+1:] == b[i:]
	}
	return false
}

// daemonize starts "hoprd -f NAME" in a new session and waits until it
// reports that the interface is up, or why it is not. A stop signal that
// comes meanwhile stops the child too, which removes what it set up.
func daemonize(g *globalFlags, name string) error {
	ctx, stop := catchStop(context.Background())
	defer stop()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("go to the background: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("go to the background: %w", err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("go to the background: %w", err)
	}
	defer r.Close()

	// The child runs in /: relative directories must not change meaning.
	dirs := []string{g.runDir, g.stateDir, g.wgDir}
	for i, d := range dirs {
		if d != "" {
			if dirs[i], err = filepath.Abs(d); err != nil {
				return fmt.Errorf("go to the background: %w", err)
			}
		}
	}
	cmd := exec.Command(self, "--run-dir="+dirs[0], "--state-dir="+dirs[1],
		"--wg-dir="+dirs[2], "-f", "--", name) // a name may start with '-'
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	if os.Getenv(logLevelEnv) != "" {
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("go to the background: %w", err)
	}

	msg, err := readReport(ctx, r, daemonTimeout)
	if ctx.Err() != nil {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		return nil
	}
	if err == nil && msg == readyLine {
		return cmd.Process.Release()
	}
	// The child failed, or said nothing in time: make sure it is gone.
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		return fmt.Errorf("start %s in the background: %w", name, err)
	}
	if rest, ok := strings.CutPrefix(msg, usagePrefix); ok {
		return usageError{errors.New(rest)}
	}
	if rest, ok := strings.CutPrefix(msg, errorPrefix); ok {
		return errors.New(rest)
	}
	return fmt.Errorf("start %s in the background: the daemon exited without a word", name)
}

// readReport reads what the child writes on the pipe until it closes it,
// or until ctx ends.
func readReport(ctx context.Context, r *os.File, timeout time.Duration) (string, error) {
	if err := r.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	defer context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Now()) })()
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "", fmt.Errorf("no word from the daemon within %v", timeout)
	}
	return strings.TrimSpace(string(b)), err
}

// reporter tells the waiting parent, once, how the start went. Without a
// parent (in the foreground) it does nothing.
type reporter struct {
	f *os.File
}

func newReporter() *reporter {
	v := os.Getenv(readyFDEnv)
	os.Unsetenv(readyFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return &reporter{}
	}
	return &reporter{f: os.NewFile(uintptr(fd), "ready")}
}

// report sends readyLine for a nil err, the error otherwise, and closes
// the pipe.
func (r *reporter) report(err error) {
	if r.f == nil {
		return
	}
	msg := readyLine
	var ue usageError
	switch {
	case errors.As(err, &ue):
		msg = usagePrefix + err.Error()
	case err != nil:
		msg = errorPrefix + err.Error()
	}
	fmt.Fprintln(r.f, msg)
	r.f.Close()
	r.f = nil
}

// userspaceLogger returns a logger on stderr at the level LOG_LEVEL names
// (info when unset).
func userspaceLogger() (*slog.Logger, error) {
	level := slog.LevelInfo
	switch v := strings.ToLower(os.Getenv(logLevelEnv)); v {
	case "", "info":
	case "debug", "verbose":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	case "silent":
		return slog.New(slog.DiscardHandler), nil
	default:
		return nil, usageError{fmt.Errorf("%s=%q: want debug, info, warn, error or silent",
			logLevelEnv, v)}
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}

// runUserspace runs the interface name in the foreground until a signal
// arrives or the link is deleted.
func runUserspace(ctx context.Context, g *globalFlags, name string) error {
	ctx, stop := catchStop(ctx) // first: see runUp
	defer stop()
	tuneGC()
	rep := newReporter()
	err := serveUserspace(ctx, g, name, rep)
	rep.report(err) // only if serveUserspace failed before it was up
	return err
}

// serveUserspace creates the interface and its sockets, reports that it is
// up, and serves until told to stop.
func serveUserspace(ctx context.Context, g *globalFlags, name string, rep *reporter) error {
	log, err := userspaceLogger()
	if err != nil {
		return err
	}
	log = log.With("interface", name)
	ts, err := device.OpenTimestampStore(filepath.Join(g.stateDir, name))
	if errors.Is(err, device.ErrUnsafeStateDir) {
		return usageError{err} // the operator's to fix, as a bad config is
	}
	if err != nil {
		return err
	}
	ts.Logger = log
	link, err := tun.Create(tun.Config{Name: name}, log)
	if err != nil {
		return err // it names the interface and the step that failed
	}
	defer link.Close()
	dev, err := device.New(device.Config{
		HopInterval: config.DefaultHopInterval,
		MTU:         link.MTU(),
		TUN:         link.Device,
		Bind:        bind.New(),
		Timestamps:  ts,
		Logger:      log,
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	defer dev.Close()
	ctl, err := control.Listen(g.runDir, name, func() device.Status {
		st := dev.Status()
		st.Interface.Name = name
		st.Interface.Addresses = linkAddresses(name)
		return st
	}, log)
	if err != nil {
		return fmt.Errorf("start %s: %w", name, controlSocketHint(err))
	}
	defer ctl.Close()
	// wg-quick adds the routes of the allowed IPs itself.
	wgs, err := uapi.Listen(uapi.Config{Dir: g.wgDir, Name: name, Device: dev, Logger: log})
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	defer wgs.Close()

	rep.report(nil)
	log.Info("up, waiting for wg(8) to configure it", "socket", wgs.Path(),
		"listen_port", dev.ListenPort())
	if !waitForStop(ctx, dev, log) {
		// wg-quick down deletes the link: the normal way this mode ends.
		log.Info("interface gone, shutting down")
	}
	return nil
}

// linkAddresses returns the addresses on the link called name, which
// wg-quick adds, leaving out IPv6 link-local ones; nil if it cannot tell.
func linkAddresses(name string) []netip.Prefix {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap().IsLinkLocalUnicast() {
			continue
		}
		bits, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return out
}

// serveWG serves the wg(8) configuration socket of an interface "hoprd up"
// runs, with routes kept in step with the allowed IPs. It is not fatal when
// the socket cannot be served (another process may hold the name, in
// another network namespace, since the directory is shared): the interface
// runs on, configured by its file. The returned function stops serving.
func serveWG(
	g *globalFlags,
	name string,
	dev *device.Device,
	routes uapi.Routes,
	log *slog.Logger,
) func() {
	if g.wgDir == "" {
		return func() {}
	}
	s, err := uapi.Listen(uapi.Config{Dir: g.wgDir, Name: name, Device: dev, Routes: routes,
		Logger: log})
	if err != nil {
		log.Warn("wg(8) configuration socket not served", "err", err)
		return func() {}
	}
	return func() { s.Close() }
}
