package ratchet

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Sender is the sending direction of a session's key schedule. It holds
// the key of the current epoch and the chain value that follows it;
// moving to a later epoch erases both and keeps only their successors.
// All methods are safe for concurrent use.
type Sender struct {
	start    time.Time
	interval time.Duration

	// cur is the current epoch's key, holding the Sender's reference;
	// nil once closed. Readers load it without the lock.
	cur  atomic.Pointer[Key]
	hops atomic.Uint64

	// mu guards everything below and serializes changes to cur.
	mu     sync.Mutex
	chain  [keySize]byte // chain_{e+1}, e being cur's epoch
	d      deriver
	closed bool
}

// NewSender returns the Sender for a direction whose transport secret is
// *secret, which it copies and then zeroes. Epochs are counted from
// start, which must carry a monotonic clock reading (a time.Now value),
// in steps of interval; an interval of zero or less never hops and keys
// every packet with the secret itself, as WireGuard does. The key of epoch
// 0 is made at once, so the secret is kept only inside it.
func NewSender(secret *[32]byte, start time.Time, interval time.Duration) *Sender {
	s := &Sender{start: start, interval: max(interval, 0), d: newDeriver()}
	s.chain = *secret
	clear(secret[:])
	if s.interval == 0 {
		s.cur.Store(newKey(0, &s.chain))
		return s
	}
	s.d.step(&s.chain, true)
	s.cur.Store(newKey(0, &s.d.key))
	return s
}

// Current returns the key of now's epoch with a reference taken for the
// caller, who must Release it. If another goroutine has already moved to
// a later epoch, it returns that later key: the Sender never goes back.
// Moving forward erases the keys and chain values passed. It takes no
// lock and does not allocate while the epoch is unchanged. It returns
// nil once the Sender is closed.
func (s *Sender) Current(now time.Time) *Key {
	e := epochAt(s.start, now, s.interval)
	if k := s.cur.Load(); k != nil && uint64(k.Epoch) >= e && k.tryAcquire() {
		return k
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.advanceLocked(e)
	k := s.cur.Load()
	k.Acquire() // the Sender's own reference keeps it alive under mu
	return k
}

// Advance moves to now's epoch, erasing the keys and chain values passed,
// and returns how many epochs it moved. A periodic call keeps keys
// erased on schedule while nothing is sent.
func (s *Sender) Advance(now time.Time) int {
	e := epochAt(s.start, now, s.interval)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	return s.advanceLocked(e)
}

// advanceLocked moves to epoch e if it is later than the current one.
// Epochs in between cost a chain step each but no key.
func (s *Sender) advanceLocked(e uint64) int {
	old := s.cur.Load()
	from := uint64(old.Epoch)
	if e <= from {
		return 0
	}
	for range e - from - 1 {
		s.d.step(&s.chain, false)
	}
	s.d.step(&s.chain, true)
	// Publish the new key before retiring the old one, so that readers
	// always find a live key.
	s.cur.Store(newKey(uint32(e), &s.d.key))
	old.Release()
	s.hops.Add(e - from)
	return int(e - from)
}

// Hops returns how many epochs the Sender has moved forward in all.
func (s *Sender) Hops() uint64 { return s.hops.Load() }

// Close erases the chain and drops the Sender's reference to the current
// key, which is erased as soon as no caller holds it either. Current
// returns nil afterwards. Close is idempotent.
func (s *Sender) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if k := s.cur.Swap(nil); k != nil {
		k.Release()
	}
	clear(s.chain[:])
	s.d.erase()
}

// String describes the Sender's position; it never shows key material.
func (s *Sender) String() string {
	k := s.cur.Load()
	if k == nil {
		return "ratchet.Sender{closed}"
	}
	return "ratchet.Sender{epoch " + strconv.FormatUint(uint64(k.Epoch), 10) +
		", hops " + strconv.FormatUint(s.Hops(), 10) + "}"
}
