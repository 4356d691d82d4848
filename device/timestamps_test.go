package device

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tai64n"
)

func TestTimestampsStrictlyIncrease(t *testing.T) {
	s, err := OpenTimestampStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	prev := s.Next()
	for i := range 1000 {
		ts := s.Next()
		if compareTimestamps(ts, prev) <= 0 {
			t.Fatalf("timestamp %d did not increase: %v after %v", i, ts, prev)
		}
		prev = ts
	}
}

// TestTimestampsSurviveClockSetBack stands in for a restart with the wall
// clock set back: the state file holds a reservation an hour ahead of now,
// and the reopened store must hand out timestamps beyond it.
func TestTimestampsSurviveClockSetBack(t *testing.T) {
	dir := t.TempDir()
	future := stampOf(time.Now().Add(time.Hour))
	if err := os.WriteFile(filepath.Join(dir, "timestamp"), future[:], 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ts := s.Next(); compareTimestamps(ts, future) <= 0 {
		t.Fatalf("first timestamp %v after restart is not beyond the reservation %v", ts, future)
	}
}

// TestTimestampsReservedOnDisk checks that every timestamp handed out is
// covered by the reservation on disk before Next returns.
func TestTimestampsReservedOnDisk(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		ts := s.Next()
		b, err := os.ReadFile(filepath.Join(dir, "timestamp"))
		if err != nil {
			t.Fatal(err)
		}
		var onDisk tai64n.Timestamp
		copy(onDisk[:], b)
		if len(b) != tai64n.TimestampSize || compareTimestamps(onDisk, ts) <= 0 {
			t.Fatalf("reservation on disk %v does not cover %v", onDisk, ts)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "timestamp"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestTimestampsDamagedFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "timestamp"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatalf("a damaged state file must not stop the daemon: %v", err)
	}
	now := stampOf(time.Now().Add(-time.Second))
	if ts := s.Next(); compareTimestamps(ts, now) <= 0 {
		t.Errorf("timestamp %v is not current", ts)
	}
}

// stampOf encodes t as TAI64N.
func stampOf(t time.Time) tai64n.Timestamp {
	secs := uint64(0x400000000000000a) + uint64(t.Unix())
	var ts tai64n.Timestamp
	for i := range 8 {
		ts[i] = byte(secs >> (56 - 8*i))
	}
	ns := uint32(t.Nanosecond())
	for i := range 4 {
		ts[8+i] = byte(ns >> (24 - 8*i))
	}
	return ts
}

// TestTimestampsImplausibleFile: a state file of 0xff bytes would overflow
// the arithmetic and wrap to a timestamp the peer refuses; it is treated as
// damage.
func TestTimestampsImplausibleFile(t *testing.T) {
	dir := t.TempDir()
	junk := bytes.Repeat([]byte{0xff}, tai64n.TimestampSize)
	if err := os.WriteFile(filepath.Join(dir, "timestamp"), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := stampOf(time.Now().Add(-time.Second))
	if ts := s.Next(); compareTimestamps(ts, now) <= 0 {
		t.Errorf("timestamp %x after a damaged state file is not current", ts)
	}
}

// TestTimestampWriteFailureLogged makes the state impossible to write (a
// directory where the temporary file goes) and checks that the store says
// so once, not on every initiation, and says so again when writing works.
func TestTimestampWriteFailureLogged(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logged lineCounter
	s.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	blocker := filepath.Join(dir, "timestamp.tmp")
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s.Next()
		s.reserved = s.last // make the next call write again
	}
	if n := logged.count("cannot keep the handshake timestamp state"); n != 1 {
		t.Fatalf("%d warnings for 3 failed writes, want 1", n)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	s.Next()
	if n := logged.count("written again"); n != 1 {
		t.Fatal("no line when writing worked again")
	}
	if _, err := os.Stat(filepath.Join(dir, "timestamp")); err != nil {
		t.Fatalf("state not written once possible: %v", err)
	}
}

// TestTimestampsExtendInBackground: once timestamps come within half the
// reserve of the reservation, Next extends it without waiting for the disk.
// The test holds the store's write lock, which any write Next waited for
// would need, so a Next that blocked on the disk never returns.
func TestTimestampsExtendInBackground(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := s.Next() // reserves a minute ahead, and waits for it
	near := addNanos(first, uint64(timestampReserve/4))
	if err := persist(s.path, near); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.reserved = near // as if a quarter of the reserve were left
	s.mu.Unlock()

	s.wmu.Lock()
	returned := make(chan tai64n.Timestamp)
	go func() { returned <- s.Next() }()
	var ts tai64n.Timestamp
	select {
	case ts = <-returned:
	case <-time.After(10 * time.Second):
		s.wmu.Unlock()
		t.Fatal("Next waited for the disk with a quarter of the reserve left")
	}
	s.wmu.Unlock()

	// The write lands on disk first, then in memory.
	want := addNanos(ts, uint64(timestampReserve))
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, err := os.ReadFile(filepath.Join(dir, "timestamp"))
		if err != nil {
			t.Fatal(err)
		}
		var onDisk tai64n.Timestamp
		copy(onDisk[:], b)
		s.mu.Lock()
		inMemory := s.reserved
		s.mu.Unlock()
		if compareTimestamps(onDisk, want) >= 0 && compareTimestamps(inMemory, want) >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reservation on disk %v, in memory %v; want at least %v",
				onDisk, inMemory, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
