package main

// Peer endpoints given as DNS names. "hoprd up" looks each up once before
// it creates the interface. A name that does not resolve then (at boot the
// resolver may not be up yet) is looked up again in the background, with
// backoff, until it resolves, the peer has an endpoint by other means (its
// own packets, or wg(8)), the peer is removed or the daemon stops. Meanwhile
// the peer's status problem says why.

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/hoprd/hoprd/config"
	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/handshake"
)

// Waits between lookups of an endpoint that did not resolve: the first,
// doubled after each failure up to the last.
const (
	resolveRetryFirst = time.Second
	resolveRetryMax   = time.Minute
)

// resolver looks up the endpoints of peers. Tests give their own.
type resolver struct {
	// lookup resolves one configured endpoint. It returns ctx's error as
	// soon as ctx ends.
	lookup func(ctx context.Context, endpoint string) (netip.AddrPort, error)
	first  time.Duration // wait after the first failure
	max    time.Duration // longest wait between lookups
}

// systemResolver resolves with the host's resolver, as device.ResolveEndpoint
// does.
func systemResolver() *resolver {
	return &resolver{lookup: lookupEndpoint, first: resolveRetryFirst, max: resolveRetryMax}
}

// lookupEndpoint is device.ResolveEndpoint returning early when ctx ends; the
// lookup then finishes in the background, bounded by the resolver's own
// timeouts.
func lookupEndpoint(ctx context.Context, endpoint string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(endpoint); err == nil {
		return ap, nil
	}
	type result struct {
		ap  netip.AddrPort
		err error
	}
	c := make(chan result, 1)
	go func() {
		ap, err := device.ResolveEndpoint(endpoint)
		if err == nil {
			// A name may lead to an address no peer can have.
			if cerr := config.CheckEndpointAddr(ap); cerr != nil {
				err = fmt.Errorf("resolve endpoint %s: %v: %w", endpoint, ap, cerr)
			}
		}
		c <- result{ap, err}
	}()
	select {
	case r := <-c:
		return r.ap, r.err
	case <-ctx.Done():
		return netip.AddrPort{}, ctx.Err()
	}
}

// unresolved is a peer whose configured endpoint did not resolve at start.
type unresolved struct {
	peer     string // its name, for the log
	public   handshake.PublicKey
	endpoint string
	err      error // why the last lookup failed
}

// resolveAll sets the endpoint of each peer in dc that has one configured,
// and returns those whose lookup failed, with one warning each. It returns
// early, with what it has, when ctx ends.
func (r *resolver) resolveAll(
	ctx context.Context,
	dc *daemonConfig,
	log *slog.Logger,
) []unresolved {
	var failed []unresolved
	for i := range dc.peers {
		p := &dc.peers[i]
		ep := dc.cfg.Peers[i].Endpoint
		if ep == "" {
			continue
		}
		ap, err := r.lookup(ctx, ep)
		if ctx.Err() != nil {
			return failed
		}
		if err != nil {
			log.Warn("endpoint not resolved; trying again, and answering the peer "+
				"if it makes contact first", "peer", p.Name, "err", err)
			failed = append(failed, unresolved{peer: p.Name, public: p.PublicKey,
				endpoint: ep, err: err})
			continue
		}
		p.Endpoint = ap
	}
	return failed
}

// retry looks up the endpoints in failed again, in the background, one
// goroutine per peer of dev. The returned function stops the lookups and
// waits for them to end.
func (r *resolver) retry(
	ctx context.Context,
	dev *device.Device,
	failed []unresolved,
	log *slog.Logger,
) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, u := range failed {
		if p := dev.Peer(u.public); p != nil {
			wg.Go(func() { r.retryPeer(ctx, dev, p, u, log.With("peer", u.peer)) })
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// retryPeer looks up u's endpoint until it resolves or is no longer needed.
// Failures after the first (which resolveAll warned of) are logged at debug
// level only; success takes one line.
func (r *resolver) retryPeer(
	ctx context.Context,
	dev *device.Device,
	p *device.Peer,
	u unresolved,
	log *slog.Logger,
) {
	defer p.SetEndpointProblem("")
	err := u.err
	for wait := r.first; ; wait = r.next(wait) {
		p.SetEndpointProblem(err.Error() + "; looking it up again, and waiting for " +
			"the peer to initiate")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !needsEndpoint(dev, p) {
			return
		}
		var ap netip.AddrPort
		ap, err = r.lookup(ctx, u.endpoint)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Debug("endpoint still not resolved", "err", err, "retry_in", r.next(wait))
			continue
		}
		// The peer may make contact between this check and the store; its
		// next authenticated packet then moves the endpoint back.
		if !needsEndpoint(dev, p) {
			return
		}
		if err := p.SetEndpoint(ap); err != nil {
			log.Warn("resolved endpoint not usable", "endpoint", u.endpoint, "err", err)
			return
		}
		log.Info("endpoint resolved", "endpoint", u.endpoint, "address", ap.String())
		return
	}
}

// next returns the wait after wait: twice as long, at most r.max.
func (r *resolver) next(wait time.Duration) time.Duration {
	return min(2*wait, r.max)
}

// needsEndpoint reports whether p is still dev's peer and has no endpoint.
func needsEndpoint(dev *device.Device, p *device.Peer) bool {
	return dev.Peer(p.PublicKey()) == p && p.Endpoint() == ""
}
