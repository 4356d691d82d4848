//go:build !race

package bind

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = false
