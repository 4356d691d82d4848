// Package handshake implements the Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s
// handshake that WireGuard uses, parameterized by a Protocol descriptor so
// that one implementation speaks two protocols:
//
//   - Hop, hoprd's own overlay protocol, whose identifier, MAC labels and
//     message types differ from WireGuard's so that neither side can ever
//     complete a handshake with the other by accident;
//   - WireGuard, byte-for-byte compatible with wireguard-go and the Linux
//     kernel module.
//
// The handshake is one round trip. In Noise notation, with the responder's
// static key known to the initiator in advance:
//
//	<- s
//	...
//	-> e, es, s, ss, {timestamp}
//	<- e, ee, se, psk, {}
//
// The initiator calls [Handshake.CreateInitiation]; the responder passes the
// message to [ConsumeInitiation], which finds the peer's [Handshake] through
// a caller-supplied lookup, then calls [Handshake.CreateResponse]; the
// initiator finishes with [ConsumeResponse]. Each side then holds a
// [Session] with the two transport secrets. Under load the responder answers
// with a cookie reply ([CookieChecker.CreateReply]) instead, which the
// initiator stores with [Handshake.ConsumeCookieReply] so that its next
// message carries a valid mac2.
//
// The package owns no sockets, timers or index tables: the caller chooses
// the 32-bit session indices, keeps the table that maps them to handshakes,
// and decides when to retry or give up.
//
// Concurrency: an [Identity] is immutable once built. A [Handshake] and a
// [CookieChecker] each guard their state with a mutex of their own, and no
// function in this package holds two of those locks at once, so there is no
// lock order to respect. The lookup functions passed to [ConsumeInitiation]
// and [ConsumeResponse] are called with no lock held.
package handshake
