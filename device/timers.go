package device

import (
	"sync"
	"time"
)

// peerTimers are a peer's WireGuard timers. Each is a time.AfterFunc timer,
// so an idle peer costs no goroutine. The data path reports sent and
// received groups (not single packets) to them.
type peerTimers struct {
	mu sync.Mutex // guards the timers and flags below

	// retransmit resends an unanswered initiation after RekeyTimeout.
	retransmit *time.Timer
	// keepalive answers received data with an empty message when we have
	// sent nothing for KeepaliveTimeout.
	keepalive        *time.Timer
	keepalivePending bool
	// newHandshake starts a handshake when data we sent was not answered
	// for KeepaliveTimeout + RekeyTimeout.
	newHandshake        *time.Timer
	newHandshakePending bool
	// zeroKeys erases every session 3 × RejectAfterTime after the last
	// handshake.
	zeroKeys *time.Timer
	// persistent sends a keepalive after the persistent keepalive interval
	// without traffic either way.
	persistent *time.Timer
	stopped    bool

	problemLog rateLimit // for "peer problem" log lines
	tm         *Timers   // the device's timer settings
}

func (t *peerTimers) init(p *Peer) {
	d := p.device
	t.tm = &d.timers
	t.retransmit = newIdleTimer(func() { d.retryHandshake(p) })
	t.keepalive = newIdleTimer(func() {
		t.mu.Lock()
		t.keepalivePending = false
		t.mu.Unlock()
		p.sendKeepalive()
	})
	t.newHandshake = newIdleTimer(func() {
		t.mu.Lock()
		t.newHandshakePending = false
		t.mu.Unlock()
		d.initiateHandshake(p, false)
	})
	t.zeroKeys = newIdleTimer(p.clearSessions)
	t.persistent = newIdleTimer(func() {
		p.sendKeepalive()
		p.startPersistentKeepalive()
	})
	t.problemLog.every = time.Minute
}

// newIdleTimer returns a stopped timer that runs f when it fires.
func newIdleTimer(f func()) *time.Timer {
	t := time.AfterFunc(time.Hour, f)
	t.Stop()
	return t
}

func (t *peerTimers) packetSent(data bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if t.keepalivePending {
		t.keepalive.Stop()
		t.keepalivePending = false
	}
	if data && !t.newHandshakePending {
		t.newHandshake.Reset(t.tm.KeepaliveTimeout + t.tm.rekeyTimeoutWithJitter())
		t.newHandshakePending = true
	}
}

func (t *peerTimers) packetReceived(data bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if t.newHandshakePending {
		t.newHandshake.Stop()
		t.newHandshakePending = false
	}
	if data && !t.keepalivePending {
		t.keepalive.Reset(t.tm.KeepaliveTimeout)
		t.keepalivePending = true
	}
}

func (t *peerTimers) handshakeSent(retry time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.retransmit.Reset(retry)
	}
}

func (t *peerTimers) handshakeComplete() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.retransmit.Stop()
		t.zeroKeys.Reset(3 * t.tm.RejectAfterTime)
	}
}

// startPersistentKeepalive (re)arms the persistent keepalive, if any.
func (p *Peer) startPersistentKeepalive() {
	p.mu.RLock()
	every := p.keepalive
	p.mu.RUnlock()
	t := &p.timers
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if every <= 0 {
		t.persistent.Stop()
		return
	}
	t.persistent.Reset(every)
}

func (t *peerTimers) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	for _, tm := range []*time.Timer{
		t.retransmit, t.keepalive, t.newHandshake, t.zeroKeys, t.persistent,
	} {
		tm.Stop()
	}
}

// rateLimit allows one event per interval.
type rateLimit struct {
	mu    sync.Mutex
	every time.Duration
	last  time.Time
}

// Allow reports whether an event may happen now.
func (r *rateLimit) Allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		return false
	}
	r.last = now
	return true
}
