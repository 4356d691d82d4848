package ratchet

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Receiver is the receiving direction of a session's key schedule. It
// keeps the keys of a window of epochs around its own, so that packets
// sealed a little earlier or later by the peer, whose clock started at a
// slightly different moment, still open; keys that fall behind the window
// are erased. All methods are safe for concurrent use.
//
// Keys are derived lazily, at most up to the epoch a packet names, and
// only for epochs inside the window; deriving forward from the chain is
// the only way to reach an epoch, and an erased one cannot be reached
// again.
type Receiver struct {
	interval time.Duration
	ahead    uint32
	narrow   uint32 // how far behind the window reaches once anchored
	// behind is how far behind the window reaches now: narrow, or up to
	// AnchorReach's worth of epochs until Anchor. Anchor changes it and
	// start together under mu.
	behind atomic.Uint32
	// start anchors epoch 0; Anchor may move it once.
	start atomic.Pointer[time.Time]
	// slots hold every derived, unerased key: the key of epoch e, for
	// floor <= e < next, sits at slots[e%len(slots)]. len(slots) is
	// behind+ahead+1 for the widest behind, the widest span of epochs
	// ever held at once. Readers load them without the lock.
	slots []atomic.Pointer[Key]
	// mu guards everything below and serializes changes to slots, start
	// and behind.
	mu       sync.Mutex
	chain    [keySize]byte // chain_next
	next     uint64        // the lowest epoch not derived yet
	top      uint64        // the latest local epoch seen
	floor    uint64        // keys of epochs below are erased
	d        deriver
	anchored bool // Anchor has run, or there is nothing to anchor
	closed   bool
}

// NewReceiver returns the Receiver for a direction whose transport secret
// is *secret, which it copies and then zeroes. Epochs are counted from
// start, which must carry a monotonic clock reading (a time.Now value),
// in steps of interval; an interval of zero or less never hops and keys
// every packet with the secret itself, as WireGuard does. The key of epoch
// 0 is made at once, so the secret is kept only inside it.
func NewReceiver(secret *[32]byte, start time.Time, interval time.Duration) *Receiver {
	return newReceiver(secret, start, interval, 0)
}

// NewAnchoringReceiver is NewReceiver for a direction whose sender starts
// its clock up to a round trip after start, as the initiator of a session
// does after the responder. Until Anchor, its window reaches back as far
// as AnchorReach (at least as far as Window's), so that the sender's
// first messages find their keys however late they look here; Anchor then
// lines the clocks up and narrows the window to Window's.
func NewAnchoringReceiver(secret *[32]byte, start time.Time, interval time.Duration) *Receiver {
	return newReceiver(secret, start, interval, AnchorReach)
}

func newReceiver(secret *[32]byte, start time.Time, interval, reach time.Duration) *Receiver {
	interval = max(interval, 0)
	behind, ahead := Window(interval)
	wide := behind
	if interval > 0 {
		wide = max(wide, uint32(min((reach+interval-1)/interval, maxAnchorWindow)))
	}
	r := &Receiver{
		interval: interval,
		ahead:    ahead,
		narrow:   behind,
		slots:    make([]atomic.Pointer[Key], wide+ahead+1),
		d:        newDeriver(),
		anchored: reach == 0 || interval == 0,
	}
	r.behind.Store(wide)
	r.start.Store(&start)
	r.chain = *secret
	clear(secret[:])
	if interval == 0 {
		r.slot(0).Store(newKey(0, &r.chain))
		r.next = 1
		return r
	}
	r.deriveLocked(0)
	return r
}

// Key returns the key of epoch, named by a packet, with a reference taken
// for the caller, who must Release it. The epoch must lie in the window
// [cur-behind, cur+ahead] around cur, the local epoch of now (see
// Window and NewAnchoringReceiver), and its key must not be erased yet;
// otherwise Key returns ErrEpochOutOfWindow, having derived nothing. An
// epoch ahead of those derived so far costs one key derivation per epoch
// up to it, at most behind+ahead+1, besides the chain steps Advance would
// have taken. It takes no lock and does not allocate when the key is
// already derived. After Close it returns ErrClosed.
func (r *Receiver) Key(epoch uint32, now time.Time) (*Key, error) {
	e := uint64(epoch)
	if !r.inWindow(e, now) {
		return nil, ErrEpochOutOfWindow
	}
	if k := r.slot(e).Load(); k != nil && k.Epoch == epoch && k.tryAcquire() {
		return k, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	// Anchor may have moved the window since the check above.
	if !r.inWindow(e, now) {
		return nil, ErrEpochOutOfWindow
	}
	r.advanceLocked(r.epochAt(now))
	if e < r.floor {
		return nil, ErrEpochOutOfWindow
	}
	r.deriveLocked(e)
	k := r.slot(e).Load()
	k.Acquire() // the Receiver's own reference keeps it alive under mu
	return k, nil
}

// inWindow reports whether epoch e lies in the window around now's epoch.
func (r *Receiver) inWindow(e uint64, now time.Time) bool {
	lo, hi := windowOf(r.epochAt(now), r.behind.Load(), r.ahead)
	return e >= lo && e <= hi
}

// epochAt returns the local epoch of now.
func (r *Receiver) epochAt(now time.Time) uint64 {
	return epochAt(*r.start.Load(), now, r.interval)
}

// Advance moves to now's epoch: it erases the keys of epochs behind the
// window and derives those up to its front. A periodic call keeps keys
// erased on schedule while nothing arrives.
func (r *Receiver) Advance(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.advanceLocked(r.epochAt(now))
	_, hi := windowOf(r.top, r.behind.Load(), r.ahead)
	r.deriveLocked(hi)
}

// advanceLocked takes note of local epoch cur: keys falling behind the
// window of the latest epoch seen are erased, and the chain skips over
// epochs that fell behind it before they were ever derived.
func (r *Receiver) advanceLocked(cur uint64) {
	r.top = max(r.top, cur)
	floor, _ := windowOf(r.top, r.behind.Load(), r.ahead)
	if floor <= r.floor {
		return
	}
	for e := r.floor; e < min(floor, r.next); e++ {
		if k := r.slot(e).Swap(nil); k != nil {
			k.Release()
		}
	}
	r.floor = floor
	for ; r.next < floor; r.next++ {
		r.d.step(&r.chain, false)
	}
}

// deriveLocked derives the keys of epochs up to e that are not derived
// yet. The caller keeps e within the window of r.top, which keeps every
// slot written free: it last held an epoch below the floor.
func (r *Receiver) deriveLocked(e uint64) {
	for ; r.next <= e; r.next++ {
		r.d.step(&r.chain, true)
		r.slot(r.next).Store(newKey(uint32(r.next), &r.d.key))
	}
}

func (r *Receiver) slot(e uint64) *atomic.Pointer[Key] {
	return &r.slots[e%uint64(len(r.slots))]
}

// Epoch returns the receiver's own epoch at now, the centre of its window.
func (r *Receiver) Epoch(now time.Time) uint32 {
	return uint32(epochAt(*r.start.Load(), now, r.interval))
}

// Anchor lines the receiver's clock up with the sender's, on a message
// that names epoch, arrived at now, and that the caller has opened with
// this Receiver's key of that epoch, so that the sender really used it.
// Epoch 0 moves to now - epoch*interval and the window narrows to
// Window's; keys erased stay erased and the window never moves back past
// them. Only the first call on a Receiver from NewAnchoringReceiver does
// anything: a message never moves the clock unless it proved its key.
func (r *Receiver) Anchor(epoch uint32, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.anchored {
		return
	}
	r.anchored = true
	start := now.Add(-time.Duration(epoch) * r.interval)
	r.start.Store(&start)
	r.behind.Store(r.narrow)
	r.top = uint64(epoch)
	r.advanceLocked(r.top)
}

// Close erases the chain and drops the Receiver's references to all keys,
// each erased as soon as no caller holds it either. Key returns ErrClosed
// afterwards. Close is idempotent.
func (r *Receiver) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for i := range r.slots {
		if k := r.slots[i].Swap(nil); k != nil {
			k.Release()
		}
	}
	clear(r.chain[:])
	r.d.erase()
}

// String describes the Receiver's window; it never shows key material.
func (r *Receiver) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "ratchet.Receiver{closed}"
	}
	return "ratchet.Receiver{keys of epochs [" + strconv.FormatUint(r.floor, 10) + ", " +
		strconv.FormatUint(r.next, 10) + ")}"
}
