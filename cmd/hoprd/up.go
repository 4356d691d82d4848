package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hoprd/hoprd/config"
	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/device/control"
	"github.com/hoprd/hoprd/handshake"
	"github.com/hoprd/hoprd/tun"
	"github.com/spf13/cobra"
	"golang.zx2c4.com/wireguard/conn"
)

type upFlags struct {
	config   string
	logLevel string
}

func newUpCmd(g *globalFlags) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up -c FILE",
		Short: "Run the daemon in the foreground until SIGINT or SIGTERM",
		Long: "Creates the interface described by the config file, brings up the overlay\n" +
			"and serves the control socket. On SIGINT or SIGTERM it removes the\n" +
			"interface, its addresses and routes, and exits.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), g, f)
		},
	}
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "config file (required)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.MarkFlagRequired("config")
	return cmd
}

// newLogger returns a text logger on stderr at the named level.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})
	return slog.New(h), nil
}

// daemonConfig is a loaded config with its secrets read.
type daemonConfig struct {
	cfg   *config.Config
	priv  handshake.PrivateKey
	peers []device.PeerConfig
}

// loadDaemonConfig reads and checks everything before any interface is
// created, so a bad config changes nothing on the host.
func loadDaemonConfig(path string, log *slog.Logger) (*daemonConfig, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	priv, err := config.ReadPrivateKeyFile(cfg.Interface.PrivateKeyFile)
	if err != nil {
		return nil, withLine(cfg, "interface.private_key_file", err)
	}
	dc := &daemonConfig{cfg: cfg, priv: priv}
	own := priv.PublicKey()
	for i, pc := range cfg.Peers {
		key := fmt.Sprintf("peer[%d]", i+1)
		if pc.PublicKey.Equal(own) {
			dc.wipe()
			return nil, &config.Error{File: cfg.Path, Line: cfg.LineOf(key + ".public_key"),
				Key: key + ".public_key", Msg: "is this interface's own public key"}
		}
		p := device.PeerConfig{
			Name:                pc.Name,
			PublicKey:           pc.PublicKey,
			Protocol:            handshake.Hop,
			AllowedIPs:          pc.AllowedIPs,
			PersistentKeepalive: pc.PersistentKeepalive,
		}
		if pc.Mode == config.ModeWireGuard {
			p.Protocol = handshake.WireGuard
		}
		if pc.PresharedKeyFile != "" {
			psk, err := config.ReadPresharedKeyFile(pc.PresharedKeyFile)
			if err != nil {
				dc.wipe()
				return nil, withLine(cfg, key+".preshared_key_file", err)
			}
			p.PresharedKey = psk
		}
		if pc.Endpoint != "" {
			ap, err := device.ResolveEndpoint(pc.Endpoint)
			if err != nil {
				log.Warn("endpoint not resolved; waiting for the peer to make contact",
					"peer", pc.Name, "err", err)
			} else {
				p.Endpoint = ap
			}
		}
		dc.peers = append(dc.peers, p)
	}
	return dc, nil
}

// withLine returns err as a config error, naming the key's line when err
// does not already.
func withLine(cfg *config.Config, key string, err error) error {
	var ce *config.Error
	if errors.As(err, &ce) {
		if ce.Line == 0 {
			ce.Line = cfg.LineOf(key)
		}
		if ce.File == "" {
			ce.File = cfg.Path
		}
		if ce.Key == "" {
			ce.Key = key
		}
		return ce
	}
	return &config.Error{File: cfg.Path, Line: cfg.LineOf(key), Key: key, Msg: err.Error()}
}

// wipe erases the secrets held.
func (dc *daemonConfig) wipe() {
	dc.priv.Zero()
	for i := range dc.peers {
		dc.peers[i].PresharedKey.Zero()
	}
}

func runUp(ctx context.Context, g *globalFlags, f *upFlags) error {
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	dc, err := loadDaemonConfig(f.config, log)
	if err != nil {
		return err
	}
	defer dc.wipe()
	ic := dc.cfg.Interface
	log = log.With("interface", ic.Name)

	ts, err := device.OpenTimestampStore(filepath.Join(g.stateDir, ic.Name))
	if err != nil {
		return err
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
		return fmt.Errorf("create interface %s: %w", ic.Name, err)
	}
	defer link.Close()

	dev, err := device.New(device.Config{
		PrivateKey:  dc.priv,
		ListenPort:  ic.ListenPort,
		HopInterval: ic.HopInterval,
		MTU:         link.MTU(),
		TUN:         link.Device,
		Bind:        conn.NewStdNetBind(),
		Timestamps:  ts,
		Logger:      log,
	})
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

	srv, err := control.Listen(g.runDir, ic.Name, func() device.Status {
		st := dev.Status()
		st.Interface.Name = ic.Name
		st.Interface.Addresses = ic.Addresses
		return st
	}, log)
	if err != nil {
		return fmt.Errorf("start %s: %w", ic.Name, err)
	}
	defer srv.Close()

	log.Info("up", "public_key", dev.PublicKey().String(), "listen_port", dev.ListenPort(),
		"peers", len(dc.peers), "hop_interval", ic.HopInterval.String())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case <-dev.Done():
		log.Error("device stopped")
	case <-ctxDone(ctx):
	}
	return nil
}

// ctxDone returns ctx's done channel, or nil (never ready) without a ctx.
func ctxDone(ctx context.Context) <-chan struct{} {
	if ctx == nil {
		return nil
	}
	return ctx.Done()
}
