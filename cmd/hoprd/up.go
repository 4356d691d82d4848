package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/hoprd/hoprd/bind"
	"github.com/hoprd/hoprd/config"
	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/device/control"
	"github.com/hoprd/hoprd/handshake"
	"github.com/hoprd/hoprd/tun"
	"github.com/spf13/cobra"
)

type upFlags struct {
	config   string
	logLevel string
	resolver *resolver // of peer endpoints; nil: the system's (tests set one)
}

func newUpCmd(g *globalFlags) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up -c FILE",
		Short: "Run the daemon in the foreground until SIGINT, SIGTERM or SIGHUP",
		Long: "Creates the interface described by the config file, brings up the overlay\n" +
			"and serves the control socket. On SIGINT, SIGTERM or SIGHUP it removes the\n" +
			"interface, its addresses and routes, and exits with status 0. SIGHUP is\n" +
			"not a reload: there is none, and the config file is read only at start,\n" +
			"so restart the daemon to apply a change.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), g, f)
		},
	}
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "config file (required)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	g.addFlags(cmd.Flags(), true)
	return cmd
}

// newLogger returns a text logger on stderr at the named level: debug,
// info, warn or error, in any letter case.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, usageError{fmt.Errorf(
			"--log-level: unknown level %q (want debug, info, warn or error)", level)}
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})
	return slog.New(h), nil
}

// controlSocketHint adds to err, from listening on the control socket, how
// to run a second daemon when the socket's name is another daemon's. The
// control package has no sentinel for that case, so its message is matched.
func controlSocketHint(err error) error {
	if !strings.Contains(err.Error(), ": another hoprd serves ") {
		return err
	}
	return fmt.Errorf("%w; to run a second daemon on this host, give it another "+
		"interface name, or its own --run-dir, --state-dir and --wg-dir", err)
}

// daemonConfig is a loaded config with its secrets read.
type daemonConfig struct {
	cfg   *config.Config
	priv  handshake.PrivateKey
	peers []device.PeerConfig
}

// loadDaemonConfig reads and checks everything before any interface is
// created, so a bad config changes nothing on the host. It leaves the
// peers' endpoints to resolver.resolveAll.
func loadDaemonConfig(path string) (*daemonConfig, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	keys, err := cfg.ReadKeys()
	if err != nil {
		return nil, err
	}
	defer keys.Zero()
	dc := &daemonConfig{cfg: cfg, priv: keys.Private}
	for i, pc := range cfg.Peers {
		p := device.PeerConfig{
			Name:                pc.Name,
			PublicKey:           pc.PublicKey,
			PresharedKey:        keys.Preshared[i],
			Protocol:            handshake.Hop,
			AllowedIPs:          pc.AllowedIPs,
			PersistentKeepalive: pc.PersistentKeepalive,
		}
		if pc.Mode == config.ModeWireGuard {
			p.Protocol = handshake.WireGuard
		}
		dc.peers = append(dc.peers, p)
	}
	return dc, nil
}

// wipe erases the secrets held.
func (dc *daemonConfig) wipe() {
	dc.priv.Zero()
	for i := range dc.peers {
		dc.peers[i].PresharedKey.Zero()
	}
}

// daemonGCPercent is the garbage collector's target for the daemon. The
// data path allocates nothing per packet, so collecting more often costs it
// nothing, while the default (100) lets the garbage of configuration
// requests double the heap's touched pages: see docs/performance.md.
const daemonGCPercent = 25

// tuneGC applies daemonGCPercent unless GOGC says otherwise.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
}

// runUp runs the daemon until a stop signal, ctx's end or a fault. The
// stop signals are caught first of all, so that one arriving while the
// daemon starts unwinds what it has set up and exits 0 as it would later.
func runUp(ctx context.Context, g *globalFlags, f *upFlags) error {
	ctx, stop := catchStop(ctx)
	defer stop()
	tuneGC()
	if f.config == "" {
		return usageError{errors.New("up needs a config file: hoprd up -c FILE")}
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	dc, err := loadDaemonConfig(f.config)
	if err != nil {
		return err
	}
	defer dc.wipe()
	res := f.resolver
	if res == nil {
		res = systemResolver()
	}
	unresolved := res.resolveAll(ctx, dc, log)
	if stopRequested(ctx, log) {
		return nil // nothing on the host has changed yet
	}
	ic := dc.cfg.Interface
	log = log.With("interface", ic.Name)

	ts, err := device.OpenTimestampStore(filepath.Join(g.stateDir, ic.Name))
	if errors.Is(err, device.ErrUnsafeStateDir) {
		return usageError{err} // the operator's to fix, as a bad config is
	}
	if err != nil {
		return err
	}
	ts.Logger = log
	if err := checkListenPort(ic.ListenPort); err != nil {
		return fmt.Errorf("start %s: %w", ic.Name, err)
	}

	var routes []netip.Prefix
	for _, p := range dc.peers {
		routes = append(routes, p.AllowedIPs...)
	}
	link, err := tun.Create(tun.Config{
		Name:      ic.Name,
		MTU:       ic.MTU,
		Addresses: ic.Addresses,
		Routes:    routes,
	}, log)
	if err != nil {
		return err // it names the interface and the step that failed
	}
	defer link.Close()

	dev, err := device.New(device.Config{
		PrivateKey:  dc.priv,
		ListenPort:  ic.ListenPort,
		HopInterval: ic.HopInterval,
		MTU:         link.MTU(),
		TUN:         link.Device,
		Bind:        bind.New(),
		Timestamps:  ts,
		Logger:      log,
	})
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("start %s: %w", ic.Name, portInUse(ic.ListenPort, err))
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", ic.Name, err)
	}
	defer dev.Close()
	for _, pc := range dc.peers {
		if _, err := dev.AddPeer(pc); err != nil {
			return fmt.Errorf("start %s: %w", ic.Name, err)
		}
	}
	dc.wipe()
	stopRetry := res.retry(ctx, dev, unresolved, log)
	defer stopRetry()

	srv, err := control.Listen(g.runDir, ic.Name, func() device.Status {
		st := dev.Status()
		st.Interface.Name = ic.Name
		st.Interface.Addresses = ic.Addresses
		return st
	}, log)
	if err != nil {
		return fmt.Errorf("start %s: %w", ic.Name, controlSocketHint(err))
	}
	defer srv.Close()
	stopWG := serveWG(g, ic.Name, dev, link, log)
	defer stopWG()

	log.Info("up", "public_key", dev.PublicKey().String(), "listen_port", dev.ListenPort(),
		"peers", len(dc.peers), "hop_interval", ic.HopInterval.String())

	if !waitForStop(ctx, dev, log) {
		// A fault, not a request: exit non-zero so a supervisor restarts us.
		return fmt.Errorf("%s stopped: its TUN failed or was deleted", ic.Name)
	}
	return nil
}

// stopSignals stop the daemon cleanly: it removes what it set up and exits 0.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// catchStop returns a context that a stop signal ends, with the signal as
// its cause, and a function that restores the signals' default action. A
// daemon calls it before anything else: a signal that finds no handler
// kills the process, leaving the TUN, routes and sockets behind.
func catchStop(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, stopSignals...)
}

// stopRequested reports whether ctx, from catchStop, has ended, and if so
// logs why.
func stopRequested(ctx context.Context, log *slog.Logger) bool {
	if ctx.Err() == nil {
		return false
	}
	log.Info("shutting down", "reason", context.Cause(ctx).Error())
	return true
}

// waitForStop returns true when ctx, from catchStop, ends (on SIGINT,
// SIGTERM or SIGHUP, even one that came while the daemon started), and
// false when the device stops by itself.
func waitForStop(ctx context.Context, dev *device.Device, log *slog.Logger) bool {
	select {
	case <-ctx.Done():
		stopRequested(ctx, log)
		return true
	case <-dev.Done():
		return false
	}
}

// checkListenPort reports a listen port that another socket holds, in
// either address family, before any interface exists: creating one would
// add routes that its removal cannot give back to whatever they replaced.
// The device opens the port for real later; port 0 picks a free one then.
func checkListenPort(port uint16) error {
	if port == 0 {
		return nil
	}
	for _, network := range []string{"udp4", "udp6"} {
		c, err := net.ListenPacket(network, ":"+strconv.Itoa(int(port)))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return portInUse(port, err)
			}
			continue // a family the host lacks; the device decides
		}
		c.Close()
	}
	return nil
}

// portInUse describes err, an EADDRINUSE from binding the listen port.
func portInUse(port uint16, err error) error {
	return fmt.Errorf("listen port %d is already in use: stop the program that holds it "+
		"or choose another listen_port (%w)", port, err)
}
