//go:build race

package bind

// raceEnabled is true when the tests run under the race detector, whose
// sync.Pool drops items at random, so that allocation pins cannot hold.
const raceEnabled = true
