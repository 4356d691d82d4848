package device

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Status is a snapshot of a device, as `hoprd status` shows it. It holds no
// secret.
type Status struct {
	Interface InterfaceStatus   `json:"interface"`
	Peers     []PeerStatus      `json:"peers"`
	Drops     map[string]uint64 `json:"drops"` // not attributable to a peer
}

// InterfaceStatus describes the device itself. Name and Addresses are
// filled in by the daemon, which owns the TUN.
type InterfaceStatus struct {
	Name        string         `json:"name"`
	PublicKey   string         `json:"public_key"`
	ListenPort  uint16         `json:"listen_port"`
	Addresses   []netip.Prefix `json:"addresses"`
	HopInterval string         `json:"hop_interval"`
}

// PeerStatus describes one peer.
type PeerStatus struct {
	Name                string            `json:"name"`
	PublicKey           string            `json:"public_key"`
	Mode                string            `json:"mode"`
	Endpoint            *string           `json:"endpoint"`
	AllowedIPs          []netip.Prefix    `json:"allowed_ips"`
	PersistentKeepalive string            `json:"persistent_keepalive,omitempty"`
	LastHandshake       *time.Time        `json:"last_handshake"`
	Epoch               *uint32           `json:"epoch"`
	Hops                uint64            `json:"hops"`
	RxBytes             uint64            `json:"rx_bytes"`
	TxBytes             uint64            `json:"tx_bytes"`
	Drops               map[string]uint64 `json:"drops"`
	Problem             string            `json:"problem"` // empty when none
}

// Status returns a snapshot of the device and its peers, sorted by name.
func (d *Device) Status() Status {
	st := Status{
		Interface: InterfaceStatus{
			PublicKey:   d.publicKeyString(),
			ListenPort:  d.ListenPort(),
			HopInterval: d.hopInterval.String(),
		},
		Drops: d.drops.snapshot(),
	}
	now := time.Now()
	d.peersMu.RLock()
	for _, p := range d.peers {
		ps := p.status(now)
		ps.AllowedIPs = slices.Clone(p.allowedIPs)
		st.Peers = append(st.Peers, ps)
	}
	d.peersMu.RUnlock()
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int { return strings.Compare(a.Name, b.Name) })
	if st.Peers == nil {
		st.Peers = []PeerStatus{}
	}
	return st
}

// status describes p, except for its allowed IPs.
func (p *Peer) status(now time.Time) PeerStatus {
	ps := PeerStatus{
		Name:      p.name,
		PublicKey: p.public.String(),
		Mode:      p.proto.Name,
		Hops:      p.Hops(),
		RxBytes:   p.rxBytes.Load(),
		TxBytes:   p.txBytes.Load(),
		Drops:     p.drops.snapshot(),
	}
	if ep := p.getEndpoint(); ep != nil {
		s := ep.DstToString()
		ps.Endpoint = &s
	}
	if ns := p.lastHandshake.Load(); ns != 0 {
		t := time.Unix(0, ns).UTC()
		ps.LastHandshake = &t
	}
	p.mu.RLock()
	if s := p.current; s != nil && !s.expired(now) {
		e := s.epoch(now)
		ps.Epoch = &e
	}
	if p.keepalive > 0 {
		ps.PersistentKeepalive = p.keepalive.String()
	}
	p.mu.RUnlock()
	if msg := p.lastProblem.Load(); msg != nil {
		ps.Problem = *msg
	}
	if msg := p.endpointProblem.Load(); msg != nil && ps.Endpoint == nil {
		ps.Problem = "no endpoint known: " + *msg
	}
	return ps
}
