package device

import (
	"time"
)

// hopTicker moves every live session to the current epoch once per hop
// interval, so keys are erased on schedule even when no packet flows, and
// drops sessions past RejectAfterTime. The data path advances keys too,
// lazily, when it needs the key of a new epoch.
func (d *Device) hopTicker() {
	every := d.hopInterval
	if every <= 0 || every > time.Second {
		every = time.Second // expiry still needs checking
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			d.peersMu.RLock()
			for _, p := range d.peers {
				p.hop(now)
			}
			d.peersMu.RUnlock()
		case <-d.closed:
			return
		}
	}
}

// hop advances p's sessions to now's epoch and expires old ones.
func (p *Peer) hop(now time.Time) {
	p.expireSessions(now)
	p.mu.RLock()
	// next is left alone until confirmed. A session we responded to hops
	// before its first message anchors it: its receiver's window reaches
	// back far enough (ratchet.NewAnchoringReceiver).
	for _, s := range []*session{p.current, p.previous} {
		if s != nil {
			s.sender.Advance(now)
			s.receiver.Advance(now)
		}
	}
	p.mu.RUnlock()
	p.checkEpochDrops()
}

// checkEpochDrops turns a growing count of out-of-window epochs from the
// peer's address into a problem shown in status: the usual cause is a peer
// hopping at another interval, which would otherwise look like silent
// loss. Only the hop ticker calls it.
func (p *Peer) checkEpochDrops() {
	n := p.epochDropsAtEndpoint.Load()
	if n == p.epochDropsSeen {
		return
	}
	p.epochDropsSeen = n
	p.noteProblem("packets name hop epochs outside the receive window: check that the " +
		"peer uses the same hop_interval (" + p.device.hopInterval.String() +
		" here) and that the path adds less than half a second of delay")
}

// dropReporter logs, at most once a minute (Config.DropSummaryEvery), a
// summary of the drops counted since the last summary. Drops are never
// logged one by one.
func (d *Device) dropReporter() {
	t := time.NewTicker(d.summaryEach)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-t.C:
		case <-d.closed:
			return
		}
		total := d.drops.total()
		for _, p := range d.Peers() {
			total += p.drops.total()
		}
		if total < last {
			last = total // a removed peer took its counts with it
		}
		if total != last {
			d.log.Info("packets dropped", "since_last", total-last, "total", total,
				"see", "hoprd status")
			last = total
		}
	}
}
