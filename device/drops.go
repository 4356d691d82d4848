package device

import (
	"sync/atomic"
)

// DropReason says why a packet or message was discarded. Drops are counted,
// never logged one by one; a periodic summary reports those that grew.
type DropReason int

// Drop reasons. Their names (see String) are what status shows.
const (
	DropNoRoute DropReason = iota
	DropStagedOverflow
	DropShort
	DropBadType
	DropUnknownIndex
	DropProtocolMismatch
	DropExpiredSession
	DropEpochOutOfWindow
	DropDecrypt
	DropReplay
	DropBadInnerPacket
	DropSourceNotAllowed
	DropBadMAC1
	DropCookieRequired
	DropRateLimited
	DropHandshakeQueueFull
	DropHandshakeRejected
	DropHandshakeReplay
	DropHandshakeFlood
	DropHandshakeCrossed
	DropBadLength
	DropTooBig
	DropTUNReadError
	DropHandshakeUnknownPeer
	DropSendError
	DropTUNWriteError
	DropNoPrivateKey
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropNoRoute:              "no_route",
	DropStagedOverflow:       "staged_overflow",
	DropShort:                "short_message",
	DropBadType:              "bad_type",
	DropUnknownIndex:         "unknown_index",
	DropProtocolMismatch:     "protocol_mismatch",
	DropExpiredSession:       "expired_session",
	DropEpochOutOfWindow:     "epoch_out_of_window",
	DropDecrypt:              "decrypt_failed",
	DropReplay:               "replay",
	DropBadInnerPacket:       "bad_inner_packet",
	DropSourceNotAllowed:     "source_not_allowed",
	DropBadMAC1:              "bad_mac1",
	DropCookieRequired:       "cookie_required",
	DropRateLimited:          "rate_limited",
	DropHandshakeQueueFull:   "handshake_queue_full",
	DropHandshakeRejected:    "handshake_rejected",
	DropHandshakeReplay:      "handshake_replay",
	DropHandshakeFlood:       "handshake_flood",
	DropHandshakeCrossed:     "handshake_crossed",
	DropBadLength:            "bad_length",
	DropTooBig:               "too_big",
	DropTUNReadError:         "tun_read_error",
	DropHandshakeUnknownPeer: "handshake_unknown_peer",
	DropSendError:            "send_error",
	DropTUNWriteError:        "tun_write_error",
	DropNoPrivateKey:         "no_private_key",
}

// String returns the reason's name as status shows it.
func (r DropReason) String() string {
	if r < 0 || r >= numDropReasons {
		return "unknown"
	}
	return dropNames[r]
}

// dropCounters counts drops by reason. Safe for concurrent use.
type dropCounters [numDropReasons]atomic.Uint64

func (c *dropCounters) add(r DropReason, n uint64) { c[r].Add(n) }

// snapshot returns the non-zero counters by name.
func (c *dropCounters) snapshot() map[string]uint64 {
	m := make(map[string]uint64)
	for i := range c {
		if v := c[i].Load(); v != 0 {
			m[DropReason(i).String()] = v
		}
	}
	return m
}

// total returns the sum of all counters.
func (c *dropCounters) total() uint64 {
	var t uint64
	for i := range c {
		t += c[i].Load()
	}
	return t
}
