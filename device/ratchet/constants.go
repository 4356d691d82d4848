package ratchet

import "time"

// Protocol constants of the key schedule.
const (
	// HopLabel is the HKDF info string of every step of the chain.
	HopLabel = "hoprd hop v1"

	// WindowReach is how far, in time, a receiver accepts epochs on each
	// side of its own: ceil(WindowReach / interval) epochs, so a packet
	// that spent up to this long in flight or was sent by a clock this
	// far off still finds its key at short intervals.
	WindowReach = 500 * time.Millisecond

	// AnchorReach is how far, in time, the responder's receiver of a new
	// session accepts epochs behind its own until the first authenticated
	// message from the initiator anchors it (see
	// NewAnchoringReceiver): the longest round trip over which a
	// session starts at short intervals.
	AnchorReach = 3 * time.Second

	// MinWindow is the least number of epochs a receiver accepts on each
	// side of its own, whatever the interval.
	MinWindow = 2
)

// maxWindow bounds the epochs accepted on each side, and with it a
// receiver's memory, for intervals far below any the protocol allows
// (the bound only bites below WindowReach/maxWindow, about 8 ms).
const maxWindow = 64

// maxAnchorWindow bounds the epochs an unanchored receiver accepts behind
// its own, for the same reason (AnchorReach reaches it only below 47 ms).
const maxAnchorWindow = 64

// keySize is the size of a transport secret, a chain value and a key.
const keySize = 32
