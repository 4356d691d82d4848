// Package ratchet implements hoprd's key schedule, "key hopping": after a
// handshake, each direction of a session turns its 32-byte transport
// secret into a one-way chain of per-epoch ChaCha20-Poly1305 keys, and
// erases every key and chain value as soon as it is no longer needed.
//
// # The chain
//
// Time since the session's start, read on the local monotonic clock, is
// cut into epochs of one hop interval each. With T the transport secret:
//
//	chain_0 = T
//	out     = HKDF-Expand(PRK = chain_e, info = HopLabel, L = 64)
//	chain_{e+1} = out[0:32]
//	K_e         = out[32:64]
//
// HKDF uses HMAC over BLAKE2s-256. Both halves come out of a one-way
// function of chain_e, so K_e and chain_{e+1} tell nothing about chain_e,
// and once chain_e is erased no earlier key can be rebuilt. With a zero
// interval the session never hops, and every packet is sealed with T
// itself, as WireGuard seals it.
//
// # Use on the data path
//
// A [Sender] hands the engine the key of the current epoch; the engine
// seals with it, writes [Key.Epoch] into the packet header and releases
// it. A [Receiver] maps the epoch a packet names to its key, if that
// epoch lies in a small window around the receiver's own, and never
// tries more than that one key. Both take no lock and allocate nothing
// while the epoch stays the same; the first call of a new epoch derives
// the next key under the type's mutex. A periodic call of Advance keeps
// erasing keys on schedule when no packets flow.
//
// # Erasure
//
// Each [Key] is reference counted: the Sender or Receiver holds one
// reference, and every caller that obtained the key holds another until
// it calls [Key.Release]. When the last reference goes, the key bytes are
// zeroed inside the AEAD itself, so a key can be retired while a worker
// on another core still seals with it, and is wiped the moment that
// worker is done. Chain values and every scratch buffer of a derivation,
// including the BLAKE2s state, are wiped right after each step.
//
// What Go does not let a library reach is not wiped: registers and stack
// copies the hash and cipher code make while they run.
package ratchet
