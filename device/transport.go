package device

import (
	"encoding/binary"

	"github.com/hoprd/hoprd/handshake"
)

// Transport headers arrive from anyone who can reach the UDP port, so they
// are decoded in one place, by a pure function that checks every length
// before it reads and allocates nothing. Its callers decide what a bad
// header costs; it only says whether the header is whole.

// transportHeader is the decoded header of a transport message.
type transportHeader struct {
	proto    *handshake.Protocol // handshake.Hop or handshake.WireGuard
	receiver uint32              // the index the receiver picked in the handshake
	epoch    uint32              // the sender's epoch; 0 in WireGuard's format
	counter  uint64              // the session's message counter, also the nonce
	size     int                 // header length: hopHeaderSize or wgHeaderSize
}

// parseTransportHeader decodes the header of b, a whole datagram. It reports
// false when b is not a transport message of either protocol (a handshake
// type, an unknown type, or reserved bytes that are not zero) or is too
// short to hold the header and an authentication tag. It reads only b's
// header and keeps no reference to b.
func parseTransportHeader(b []byte) (transportHeader, bool) {
	if len(b) < 4 {
		return transportHeader{}, false
	}
	typ := binary.LittleEndian.Uint32(b[0:4])
	proto, ok := handshake.ProtocolForType(typ)
	if !ok || typ != proto.TypeTransport {
		return transportHeader{}, false
	}
	h := transportHeader{proto: proto, size: wgHeaderSize}
	if proto == handshake.Hop {
		h.size = hopHeaderSize
	}
	if len(b) < h.size+tagSize {
		return transportHeader{}, false
	}
	h.receiver = binary.LittleEndian.Uint32(b[4:8])
	if proto == handshake.Hop {
		h.epoch = binary.LittleEndian.Uint32(b[8:12])
	}
	// The counter ends the header in both formats.
	h.counter = binary.LittleEndian.Uint64(b[h.size-8 : h.size])
	return h, true
}
