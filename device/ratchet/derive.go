package ratchet

import (
	"hash"

	"golang.org/x/crypto/blake2s"
)

// hopInfo is HopLabel as the hash consumes it.
var hopInfo = []byte(HopLabel)

// deriver takes steps along a chain. It computes HKDF-Expand with
// HMAC-BLAKE2s itself rather than through golang.org/x/crypto/hkdf and
// crypto/hmac, whose objects keep the padded key and hash states out of
// reach; here every such value lives in a field and is wiped after each
// step. Tests check the output against x/crypto/hkdf. Not safe for
// concurrent use: each Sender and Receiver guards its own with a mutex.
type deriver struct {
	// h is one BLAKE2s-256 state reused for both hashes of every HMAC.
	h hash.Hash
	// pad holds the key padded to a block and XORed with ipad or opad.
	pad [blake2s.BlockSize]byte
	// inner is the inner hash of the HMAC being computed.
	inner [blake2s.Size]byte
	// t1 is T(1), the next chain value, until it replaces the old one.
	t1 [blake2s.Size]byte
	// ctr is the HKDF block counter.
	ctr [1]byte
	// key receives K_e; whoever reads it must zero it.
	key [keySize]byte
	// steps counts the steps taken, for tests.
	steps uint64
}

// HMAC pad bytes (RFC 2104).
const (
	ipad = 0x36
	opad = 0x5c
)

func newDeriver() deriver {
	h, err := blake2s.New256(nil)
	if err != nil {
		// Only a key longer than 32 bytes makes New256 fail.
		panic("ratchet: blake2s: " + err.Error())
	}
	return deriver{h: h}
}

// step moves chain from chain_e to chain_{e+1}. With withKey it also
// leaves K_e in d.key; without, it skips K_e's half of the work, for
// epochs passed over whose keys no one will use.
func (d *deriver) step(chain *[keySize]byte, withKey bool) {
	// T(1) = HMAC(chain_e, info || 0x01) is chain_{e+1}.
	d.ctr[0] = 1
	d.mac(chain, &d.t1, nil)

	// T(2) = HMAC(chain_e, T(1) || info || 0x02) is K_e.
	if withKey {
		d.ctr[0] = 2
		d.mac(chain, &d.key, d.t1[:])
	}

	*chain = d.t1
	d.wipe()
	d.steps++
}

// mac writes HMAC-BLAKE2s(k, prev || hopInfo || d.ctr) to dst.
func (d *deriver) mac(k *[keySize]byte, dst *[blake2s.Size]byte, prev []byte) {
	clear(d.pad[:])
	copy(d.pad[:], k[:])
	for i := range d.pad {
		d.pad[i] ^= ipad
	}
	d.h.Reset()
	d.h.Write(d.pad[:])
	d.h.Write(prev)
	d.h.Write(hopInfo)
	d.h.Write(d.ctr[:])
	d.h.Sum(d.inner[:0])

	for i := range d.pad {
		d.pad[i] ^= ipad ^ opad
	}
	d.h.Reset()
	d.h.Write(d.pad[:])
	d.h.Write(d.inner[:])
	d.h.Sum(dst[:0])
}

// wipe zeroes the scratch buffers and returns the hash to a state that
// holds nothing secret: after a reset, writing one all-zero block leaves
// the initial chaining value and a buffered block of zeros, because
// BLAKE2s only compresses a full block once more input follows it.
func (d *deriver) wipe() {
	clear(d.pad[:])
	clear(d.inner[:])
	clear(d.t1[:])
	d.ctr[0] = 0
	d.h.Reset()
	d.h.Write(d.pad[:])
}

// erase wipes everything the deriver holds, the unread key included.
func (d *deriver) erase() {
	d.wipe()
	clear(d.key[:])
}
