package device

import "sync"

// packetBuf is one full-size packet buffer. Full-size buffers let the TUN
// coalesce segments on write and the UDP socket deliver GRO batches.
type packetBuf [maxMessageSize]byte

// bufPool recycles packet buffers. The number of buffers in use is bounded
// by the queues they travel through, each of which has a fixed capacity.
var bufPool = sync.Pool{New: func() any { return new(packetBuf) }}

func getBuf() *packetBuf  { return bufPool.Get().(*packetBuf) }
func putBuf(b *packetBuf) { bufPool.Put(b) }
