package ratchet

import "errors"

// Sentinel errors. They are returned bare, without wrapping, because the
// receive path meets them per packet and must not allocate; they never
// contain key material.
var (
	// ErrEpochOutOfWindow reports a packet that names an epoch outside
	// the receiver's window, or one whose key is already erased.
	ErrEpochOutOfWindow = errors.New("ratchet: epoch out of window")

	// ErrClosed reports a use of a closed Receiver.
	ErrClosed = errors.New("ratchet: closed")
)

// errAEADLayout reports that golang.org/x/crypto/chacha20poly1305 no
// longer keeps its key where this package erases it.
var errAEADLayout = errors.New("ratchet: unexpected chacha20poly1305 layout")
