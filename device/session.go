package device

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoprd/hoprd/device/ratchet"
	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/replay"
)

// A session is the outcome of one handshake: a pair of key schedules, one per
// direction, the index pair that names it on the wire, and the replay window
// of its counters. Sessions are immutable once built except for the fields
// whose comments say otherwise.
type session struct {
	peer        *Peer
	proto       *handshake.Protocol
	localIndex  uint32
	remoteIndex uint32
	initiator   bool
	created     time.Time // carries a monotonic reading; epochs count from here
	interval    time.Duration

	sender   *ratchet.Sender
	receiver *ratchet.Receiver

	sendCounter atomic.Uint64 // next counter to assign
	confirmed   atomic.Bool   // the responder has seen the initiator use it
	received    atomic.Bool   // an authenticated message arrived on it

	replayMu sync.Mutex // guards replay
	replay   replay.Filter
}

// newSession builds a session from a completed handshake and zeroes s.
func newSession(
	p *Peer,
	s *handshake.Session,
	now time.Time,
	interval time.Duration,
) *session {
	if s.Protocol != handshake.Hop {
		interval = 0 // WireGuard peers never hop within a session
	}
	sess := &session{
		peer:        p,
		proto:       s.Protocol,
		localIndex:  s.LocalIndex,
		remoteIndex: s.RemoteIndex,
		initiator:   s.Initiator,
		created:     now,
		interval:    interval,
		sender:      ratchet.NewSender(&s.Send, now, interval),
	}
	// The responder starts its clock when it sends its response, the
	// initiator when that arrives: the initiator's first messages look a
	// round trip late here until one of them anchors the receiver.
	if s.Initiator {
		sess.receiver = ratchet.NewReceiver(&s.Receive, now, interval)
	} else {
		sess.receiver = ratchet.NewAnchoringReceiver(&s.Receive, now, interval)
	}
	sess.confirmed.Store(s.Initiator)
	s.Zero()
	return sess
}

// headerSize is the transport header length of this session's protocol.
func (s *session) headerSize() int {
	if s.proto == handshake.Hop {
		return hopHeaderSize
	}
	return wgHeaderSize
}

// epoch returns the session's epoch at now.
func (s *session) epoch(now time.Time) uint32 {
	if s.interval == 0 {
		return 0
	}
	return uint32(now.Sub(s.created) / s.interval)
}

// expired reports whether the session may no longer carry traffic.
func (s *session) expired(now time.Time) bool {
	return now.Sub(s.created) >= s.peer.device.timers.RejectAfterTime ||
		s.sendCounter.Load() >= RejectAfterMessages
}

// checkReplay validates a counter against the replay window.
func (s *session) checkReplay(counter uint64) bool {
	s.replayMu.Lock()
	ok := s.replay.ValidateCounter(counter, RejectAfterMessages)
	s.replayMu.Unlock()
	return ok
}

// close erases the session's keys. Groups still in flight hold their own
// references to epoch keys, which are erased when the last one is released.
func (s *session) close() {
	s.sender.Close()
	s.receiver.Close()
}
