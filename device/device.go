// Package device is hoprd's packet engine: it moves packets between a TUN
// device and a UDP bind, encrypting them with keys that hop on a schedule,
// and runs the handshakes and timers that keep each peer's session fresh.
//
// Concurrency model. The data path has a fixed set of goroutines per
// device, none per peer, so ten thousand configured peers cost memory only:
//
//   - one TUN reader (send.go) routes packets and assigns keys and counters;
//   - GOMAXPROCS crypto workers seal and open groups of packets in parallel;
//   - one sequential sender (send.go) hands sealed groups to the bind in
//     the order the reader produced them;
//   - per UDP receive function, one receiver and one sequential writer
//     (receive.go) that checks replay and the inner source and writes to
//     the TUN in arrival order;
//   - one handshake worker (handshake.go) and one hop ticker (hop.go).
//
// Ordering comes from FIFO queues between single goroutines: a group's
// done mutex is held until a worker has processed it, and the sequential
// stage waits on it. A batch with nothing queued ahead of it may instead
// be sealed and sent, or opened and written, by the goroutine that read
// it (sendInline, deliverInline): on two cores or fewer every such batch,
// on more only small ones (Config.InlineMax). Per-peer timers (timers.go)
// are time.AfterFunc timers.
package device

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoprd/hoprd/device/allowedips"
	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/ratelimiter"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Sentinel errors of the device package.
var (
	ErrClosed        = errors.New("device closed")
	ErrPeerExists    = errors.New("peer already exists")
	ErrUnknownPeer   = errors.New("no such peer")
	ErrPrefixClaimed = errors.New("prefix claimed by another peer")
	ErrOwnKey        = errors.New("peer has the interface's own public key")
)

// Config is what a Device needs to start.
type Config struct {
	PrivateKey  handshake.PrivateKey
	ListenPort  uint16
	HopInterval time.Duration // key hop interval of hop-mode sessions
	MTU         int           // of the TUN, bounds padding
	TUN         wgtun.Device
	Bind        conn.Bind
	Timestamps  handshake.TimestampSource // nil: the wall clock
	Logger      *slog.Logger
	Timers      Timers // zero: WireGuard's
	// DropSummaryEvery is how often at most a summary of drops is logged;
	// zero means once a minute.
	DropSummaryEvery time.Duration
	// InlineMax is the most packets a batch may hold to be sealed or
	// opened on the goroutine that read it, skipping the crypto workers,
	// when nothing is queued ahead of it. Zero chooses by the cores the
	// runtime may use (GOMAXPROCS, which follows a container's CPU limit):
	// on two or fewer every batch (a core for the workers is rarely
	// free there, and the hand-offs cost wake-ups and cache misses for no
	// parallelism); on more, only batches of a few packets, so that bulk
	// traffic is sealed in parallel.
	InlineMax int
}

// Device is one hoprd interface: its identity, its peers and its pipelines.
//
// Lock order: Device.keyMu, then Device.peersMu, then Peer.mu, then
// Peer.hsMu. Device.net.mu is taken with none of them held.
type Device struct {
	log         *slog.Logger
	tun         wgtun.Device
	bind        conn.Bind
	mtu         int
	hopInterval time.Duration
	timestamps  handshake.TimestampSource
	listenPort  uint16 // guarded by net.mu
	timers      Timers
	summaryEach time.Duration // see Config.DropSummaryEvery
	inlineMax   int           // see Config.InlineMax

	// keyMu guards identity, cookies, public and every Peer.hs: the
	// handshake paths hold it for reading, SetPrivateKey for writing.
	keyMu    sync.RWMutex
	identity *handshake.Identity // nil while the interface has no private key
	cookies  *handshake.CookieChecker
	public   handshake.PublicKey

	net netState // the bind's runtime settings (runtime.go)

	peersMu sync.RWMutex // guards peers, names and claimed
	peers   map[handshake.PublicKey]*Peer
	names   map[string]*Peer
	claimed map[netip.Prefix]*Peer  // allowed IPs by exact prefix
	allowed allowedips.Table[*Peer] // safe for concurrent use by itself
	indices *indexTable

	encryptQueue   chan *outGroup
	decryptQueue   chan *inGroup
	sendQueue      chan *outBatch
	handshakeQueue chan *hsMessage

	limiter        ratelimiter.Ratelimiter
	underLoadUntil atomic.Int64 // unix nanoseconds
	drops          dropCounters

	// outPending and inPending count the batches handed to sendSequential
	// and to the writers and not finished yet. At zero no packet is queued
	// ahead, and a small batch may skip the queues (sendInline,
	// deliverInline) without overtaking any.
	outPending atomic.Int64
	inPending  atomic.Int64

	stagedBytes atomic.Int64 // bytes of the packets all peers have staged

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

// New starts a device: it opens the bind on the listen port and starts the
// pipelines. The caller adds peers afterwards and calls Close when done.
func New(cfg Config) (*Device, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timestamps == nil {
		cfg.Timestamps = handshake.WallClock{}
	}
	if cfg.DropSummaryEvery <= 0 {
		cfg.DropSummaryEvery = time.Minute
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1420
	}
	if cfg.InlineMax <= 0 {
		cfg.InlineMax = inlineMax
		if runtime.GOMAXPROCS(0) <= fewCores {
			cfg.InlineMax = math.MaxInt
		}
	}
	d := &Device{
		log:            cfg.Logger,
		tun:            cfg.TUN,
		bind:           cfg.Bind,
		mtu:            cfg.MTU,
		hopInterval:    cfg.HopInterval,
		timestamps:     cfg.Timestamps,
		timers:         cfg.Timers.withDefaults(),
		summaryEach:    cfg.DropSummaryEvery,
		inlineMax:      cfg.InlineMax,
		peers:          make(map[handshake.PublicKey]*Peer),
		names:          make(map[string]*Peer),
		claimed:        make(map[netip.Prefix]*Peer),
		indices:        newIndexTable(),
		encryptQueue:   make(chan *outGroup, queueCrypto),
		decryptQueue:   make(chan *inGroup, queueCrypto),
		sendQueue:      make(chan *outBatch, queueOutbound),
		handshakeQueue: make(chan *hsMessage, queueHandshake),
		closed:         make(chan struct{}),
	}
	if !cfg.PrivateKey.IsZero() {
		d.identity = handshake.NewIdentity(cfg.PrivateKey)
		d.public = d.identity.PublicKey()
		d.cookies = handshake.NewCookieChecker(d.identity)
	}
	d.limiter.Init()

	fns, port, err := d.bind.Open(cfg.ListenPort)
	if err != nil {
		if d.identity != nil {
			d.identity.Zero()
		}
		d.limiter.Close()
		return nil, fmt.Errorf("open udp port %d: %w", cfg.ListenPort, err)
	}
	d.listenPort = port

	workers := runtime.GOMAXPROCS(0)
	d.start(workers, func() { d.encryptWorker() })
	d.start(workers, func() { d.decryptWorker() })
	d.start(1, d.readTUN)
	d.start(1, d.sendSequential)
	d.startReceivers(fns)
	d.start(1, d.handshakeWorker)
	d.start(1, d.hopTicker)
	d.start(1, d.dropReporter)
	return d, nil
}

func (d *Device) start(n int, f func()) {
	for range n {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			f()
		}()
	}
}

// Close stops the pipelines, closes the TUN and the bind, and erases every
// key. It is safe to call more than once.
func (d *Device) Close() {
	d.closeOnce.Do(func() {
		close(d.closed)
		d.net.mu.Lock()
		d.bind.Close()
		d.net.mu.Unlock()
		d.tun.Close()
		d.peersMu.Lock()
		for _, p := range d.peers {
			p.stop()
		}
		d.peersMu.Unlock()
		d.wg.Wait()
		d.limiter.Close()
		d.keyMu.Lock()
		if d.identity != nil {
			d.identity.Zero()
		}
		d.keyMu.Unlock()
	})
}

// isClosed reports whether Close has begun.
func (d *Device) isClosed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// PublicKey returns the device's public key, zero while it has no private
// key.
func (d *Device) PublicKey() handshake.PublicKey {
	d.keyMu.RLock()
	defer d.keyMu.RUnlock()
	return d.public
}

// ListenPort returns the UDP port the device listens on.
func (d *Device) ListenPort() uint16 {
	d.net.mu.Lock()
	defer d.net.mu.Unlock()
	return d.listenPort
}

// HopInterval returns the key hop interval of hop-mode sessions.
func (d *Device) HopInterval() time.Duration { return d.hopInterval }

// PeerConfig describes one peer.
type PeerConfig struct {
	Name                string
	PublicKey           handshake.PublicKey
	PresharedKey        handshake.PresharedKey
	Protocol            *handshake.Protocol // handshake.Hop or handshake.WireGuard
	Endpoint            netip.AddrPort      // zero: learnt from the peer's packets
	AllowedIPs          []netip.Prefix
	PersistentKeepalive time.Duration
}

// AddPeer adds a peer. Its allowed IPs must not be claimed by another peer.
func (d *Device) AddPeer(pc PeerConfig) (*Peer, error) {
	d.keyMu.RLock()
	defer d.keyMu.RUnlock()
	if d.identity != nil && pc.PublicKey.Equal(d.public) {
		return nil, fmt.Errorf("add peer %q: %w", pc.Name, ErrOwnKey)
	}
	if pc.Protocol == nil {
		pc.Protocol = handshake.Hop
	}
	d.peersMu.Lock()
	defer d.peersMu.Unlock()
	if d.isClosed() {
		return nil, ErrClosed
	}
	if _, ok := d.peers[pc.PublicKey]; ok {
		return nil, fmt.Errorf("add peer %q: %w", pc.Name, ErrPeerExists)
	}
	if pc.Name == "" {
		pc.Name = pc.PublicKey.String()[:8]
	}
	if _, ok := d.names[pc.Name]; ok {
		return nil, fmt.Errorf("add peer %q: name in use: %w", pc.Name, ErrPeerExists)
	}
	for _, pfx := range pc.AllowedIPs {
		if other, ok := d.claimed[pfx.Masked()]; ok {
			return nil, fmt.Errorf("add peer %q: %s held by %q: %w",
				pc.Name, pfx.Masked(), other.name, ErrPrefixClaimed)
		}
	}
	p := newPeer(d, pc)
	if pc.Endpoint.IsValid() {
		ep, err := d.bind.ParseEndpoint(pc.Endpoint.String())
		if err != nil {
			return nil, fmt.Errorf("add peer %q: endpoint: %w", pc.Name, err)
		}
		p.endpoint.Store(&ep)
	}
	for _, pfx := range pc.AllowedIPs {
		d.claimed[pfx.Masked()] = p
		d.allowed.Insert(pfx.Masked(), p)
		p.allowedIPs = append(p.allowedIPs, pfx.Masked())
	}
	d.peers[pc.PublicKey] = p
	d.names[pc.Name] = p
	p.startPersistentKeepalive()
	if pc.PersistentKeepalive > 0 && p.getEndpoint() != nil {
		// As WireGuard does: a peer kept alive is contacted at once.
		go p.sendKeepalive()
	}
	return p, nil
}

// RemovePeer removes a peer and erases its keys.
func (d *Device) RemovePeer(pub handshake.PublicKey) error {
	d.peersMu.Lock()
	p, ok := d.peers[pub]
	if ok {
		delete(d.peers, pub)
		delete(d.names, p.name)
		for _, pfx := range p.allowedIPs {
			delete(d.claimed, pfx)
		}
		d.allowed.RemoveValue(p)
	}
	d.peersMu.Unlock()
	if !ok {
		return ErrUnknownPeer
	}
	p.stop()
	return nil
}

// Peer returns the peer with the given public key, or nil.
func (d *Device) Peer(pub handshake.PublicKey) *Peer {
	d.peersMu.RLock()
	defer d.peersMu.RUnlock()
	return d.peers[pub]
}

// Peers returns all peers in no particular order.
func (d *Device) Peers() []*Peer {
	d.peersMu.RLock()
	defer d.peersMu.RUnlock()
	ps := make([]*Peer, 0, len(d.peers))
	for _, p := range d.peers {
		ps = append(ps, p)
	}
	return ps
}

// lookupHandshake finds the handshake state of the peer with key pub.
func (d *Device) lookupHandshake(pub handshake.PublicKey) *handshake.Handshake {
	d.peersMu.RLock()
	p := d.peers[pub]
	d.peersMu.RUnlock()
	if p == nil {
		return nil
	}
	return p.hs
}

// underLoad reports whether handshake initiations must carry a cookie.
func (d *Device) underLoad() bool {
	now := time.Now()
	if len(d.handshakeQueue) >= underLoadThreshold {
		d.underLoadUntil.Store(now.Add(underLoadAfter).UnixNano())
		return true
	}
	return d.underLoadUntil.Load() > now.UnixNano()
}

// ResolveEndpoint turns a configured endpoint (host:port, [v6]:port or a
// DNS name with port) into an address.
func ResolveEndpoint(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ua, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve endpoint %s: %w", s, err)
	}
	// The resolver gives IPv4 addresses in their 16-byte form.
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Done is closed when the device stops, by Close or after a fatal error.
func (d *Device) Done() <-chan struct{} { return d.closed }
