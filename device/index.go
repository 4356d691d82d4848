package device

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
)

// indexEntry is what a local index names: a peer's handshake in progress
// (sess nil) or one of its sessions.
type indexEntry struct {
	peer *Peer
	sess *session
}

// indexTable maps the random 32-bit indices hoprd hands to peers (they come
// back as receiver indices) to what they name. Safe for concurrent use.
type indexTable struct {
	mu sync.RWMutex // guards m
	m  map[uint32]indexEntry
}

func newIndexTable() *indexTable {
	return &indexTable{m: make(map[uint32]indexEntry)}
}

// newIndex reserves a fresh random index for a handshake of p.
func (t *indexTable) newIndex(p *Peer) uint32 {
	var b [4]byte
	for {
		rand.Read(b[:])
		idx := binary.LittleEndian.Uint32(b[:])
		t.mu.Lock()
		if _, used := t.m[idx]; !used && idx != 0 {
			t.m[idx] = indexEntry{peer: p}
			t.mu.Unlock()
			return idx
		}
		t.mu.Unlock()
	}
}

// bind makes idx name sess.
func (t *indexTable) bind(idx uint32, sess *session) {
	t.mu.Lock()
	t.m[idx] = indexEntry{peer: sess.peer, sess: sess}
	t.mu.Unlock()
}

func (t *indexTable) lookup(idx uint32) indexEntry {
	t.mu.RLock()
	e := t.m[idx]
	t.mu.RUnlock()
	return e
}

func (t *indexTable) remove(idx uint32) {
	t.mu.Lock()
	delete(t.m, idx)
	t.mu.Unlock()
}
