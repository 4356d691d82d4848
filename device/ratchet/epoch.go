package ratchet

import (
	"math"
	"time"
)

// Window returns how many epochs a receiver accepts behind and ahead of
// its own: max(MinWindow, ceil(WindowReach/interval)) on each side,
// capped for intervals far below the protocol's minimum, and (0, 0) when
// interval is not positive (no hopping).
func Window(interval time.Duration) (behind, ahead uint32) {
	if interval <= 0 {
		return 0, 0
	}
	w := (WindowReach-1)/interval + 1
	w = min(max(w, MinWindow), maxWindow)
	return uint32(w), uint32(w)
}

// epochAt returns the epoch now falls in, counted from start. With both
// times read from time.Now the difference is taken on the monotonic
// clock, so wall-clock steps do not move epochs. Times before start are
// epoch 0; epochs saturate at the largest a packet can name.
func epochAt(start, now time.Time, interval time.Duration) uint64 {
	if interval <= 0 {
		return 0
	}
	d := now.Sub(start)
	if d <= 0 {
		return 0
	}
	return min(uint64(d/interval), math.MaxUint32)
}

// windowOf returns the epochs accepted around cur: [cur-behind,
// cur+ahead], clipped to the epochs a packet can name.
func windowOf(cur uint64, behind, ahead uint32) (lo, hi uint64) {
	lo = cur - min(cur, uint64(behind))
	hi = min(cur+uint64(ahead), math.MaxUint32)
	return lo, hi
}
