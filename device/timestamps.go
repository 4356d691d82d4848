package device

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tai64n"
)

// TimestampStore hands out handshake initiation timestamps that never go
// backwards, even across a restart with the wall clock set back. It keeps a
// reservation on disk: a time no timestamp handed out so far exceeds,
// reserved a minute ahead of the last one. Once timestamps come within half
// a minute of it, a background write extends it, so a handshake waits for
// the disk only when the reservation has run out: after a start, or when
// the disk has been slower than half a minute.
//
// Safe for concurrent use.
type TimestampStore struct {
	// Logger, if not nil, hears when writing the state first fails and
	// when it works again: a store that cannot write loses its guarantee
	// across restarts, which should not go unnoticed. Set it before use.
	Logger *slog.Logger

	path string
	wmu  sync.Mutex // serializes writes of the state; taken before mu

	mu        sync.Mutex       // guards the fields below
	last      tai64n.Timestamp // the last timestamp handed out
	reserved  tai64n.Timestamp // persisted; every timestamp handed out is below it
	extending bool             // a background write is under way
	failing   bool             // the last write failed
}

// timestampReserve is how far ahead of the last timestamp the store
// reserves on disk.
const timestampReserve = time.Minute

// timestampStep is the smallest step between two timestamps: the whitening
// of TAI64N initiation timestamps rounds nanoseconds down to 2^24.
const timestampStep = 1 << 24

// OpenTimestampStore opens (creating if needed) the store in dir, which is
// created with mode 0700.
func OpenTimestampStore(dir string) (*TimestampStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	s := &TimestampStore{path: filepath.Join(dir, "timestamp")}
	b, err := os.ReadFile(s.path)
	switch {
	case err == nil && len(b) == tai64n.TimestampSize && plausible(b):
		copy(s.reserved[:], b)
		s.last = s.reserved
	case err == nil || os.IsNotExist(err):
		// A missing or damaged file: start from the wall clock.
	default:
		return nil, fmt.Errorf("read timestamp state: %w", err)
	}
	return s, nil
}

// Next returns a timestamp strictly after every earlier one, once the
// reservation on disk covers it.
func (s *TimestampStore) Next() tai64n.Timestamp {
	s.mu.Lock()
	ts := tai64n.Now()
	if !ts.After(s.last) {
		ts = addNanos(s.last, timestampStep)
	}
	s.last = ts
	if !s.reserved.After(ts) {
		s.mu.Unlock()
		s.reserve(ts)
		return ts
	}
	if soon := addNanos(ts, uint64(timestampReserve/2)); !s.extending && !s.reserved.After(soon) {
		s.extending = true
		go func() {
			s.reserve(soon)
			s.mu.Lock()
			s.extending = false
			s.mu.Unlock()
		}()
	}
	s.mu.Unlock()
	return ts
}

// reserve writes a reservation timestampReserve past the last timestamp
// handed out, unless one already on disk lies beyond need. A failed write
// leaves the reservation as it was: without it on disk, a restart with the
// clock set back could reuse a timestamp, which the peer would only refuse
// as a replay.
func (s *TimestampStore) reserve(need tai64n.Timestamp) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.reserved.After(need) {
		s.mu.Unlock() // a write while this one waited covered it
		return
	}
	target := addNanos(s.last, uint64(timestampReserve))
	s.mu.Unlock()
	err := persist(s.path, target)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && target.After(s.reserved) {
		s.reserved = target
	}
	s.noteWrite(err)
}

// noteWrite logs the first of a run of failed writes, and the write that
// ends the run.
func (s *TimestampStore) noteWrite(err error) {
	failed := err != nil
	if failed == s.failing {
		return
	}
	s.failing = failed
	if s.Logger == nil {
		return
	}
	if failed {
		s.Logger.Warn("cannot keep the handshake timestamp state: after a restart with the "+
			"clock set back, peers may refuse initiations until it catches up", "err", err)
	} else {
		s.Logger.Info("handshake timestamp state written again", "path", s.path)
	}
}

// persist writes the reservation to path atomically and durably.
func persist(path string, reserved tai64n.Timestamp) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write timestamp state: %w", err)
	}
	_, err = f.Write(reserved[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write timestamp state: %w", err)
	}
	return nil
}

// plausible reports whether b is a TAI64N label hoprd could have written:
// nanoseconds below a second, and seconds between 1970 and a century from
// now. Anything else is damage, and would overflow the arithmetic.
func plausible(b []byte) bool {
	const tai64Base = 0x400000000000000a // TAI64 label of 1970-01-01
	secs := binary.BigEndian.Uint64(b[:8])
	nanos := binary.BigEndian.Uint32(b[8:])
	limit := uint64(time.Now().Add(100*365*24*time.Hour).Unix()) + tai64Base
	return nanos < 1e9 && secs >= tai64Base && secs <= limit
}

// addNanos returns t plus n nanoseconds.
func addNanos(t tai64n.Timestamp, n uint64) tai64n.Timestamp {
	secs := binary.BigEndian.Uint64(t[:8])
	nanos := uint64(binary.BigEndian.Uint32(t[8:])) + n
	secs += nanos / 1e9
	nanos %= 1e9
	var out tai64n.Timestamp
	binary.BigEndian.PutUint64(out[:8], secs)
	binary.BigEndian.PutUint32(out[8:], uint32(nanos))
	return out
}

// compareTimestamps orders two timestamps (for tests).
func compareTimestamps(a, b tai64n.Timestamp) int { return bytes.Compare(a[:], b[:]) }
