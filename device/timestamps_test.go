package device

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
// directory where the state file goes, which no rename replaces) and checks
// that the store says so once, not on every initiation, and says so again
// when writing works. A failed write leaves no temporary file behind.
func TestTimestampWriteFailureLogged(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logged lineCounter
	s.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	blocker := filepath.Join(dir, "timestamp")
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
	if left, _ := filepath.Glob(filepath.Join(dir, "timestamp.tmp*")); len(left) != 0 {
		t.Fatalf("failed writes left %v behind", left)
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
	if err := s.persist(near); err != nil {
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

// TestTimestampsUnsafeStateDir: a state directory another user could write
// is refused, with a sentinel cmd/hoprd maps to a configuration error and a
// message that says how to fix it; a link planted in it is left alone.
func TestTimestampsUnsafeStateDir(t *testing.T) {
	cases := []struct {
		name     string
		rootOnly bool
		make     func(t *testing.T, dir string)
		want     string
	}{
		{"group writable", false, func(t *testing.T, dir string) {
			mkdirMode(t, dir, 0o770)
		}, "chmod 700 "},
		{"world writable", false, func(t *testing.T, dir string) {
			mkdirMode(t, dir, 0o1777)
		}, "chmod 700 "},
		{"symbolic link", false, func(t *testing.T, dir string) {
			target := filepath.Join(filepath.Dir(dir), "target")
			mkdirMode(t, target, 0o700)
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		}, ": a symbolic link"},
		{"dangling symbolic link", false, func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(dir), "gone"), dir); err != nil {
				t.Fatal(err)
			}
		}, ": a symbolic link"},
		{"regular file", false, func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, ": not a directory"},
		{"another user's", true, func(t *testing.T, dir string) {
			mkdirMode(t, dir, 0o700)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "fix with: chown "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rootOnly && os.Geteuid() != 0 {
				t.Skip("needs root to give the directory away")
			}
			base := t.TempDir()
			dir := filepath.Join(base, "hop0")
			tc.make(t, dir)
			victim := filepath.Join(base, "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
			// What the owner of the directory would plant; it may fail
			// where the directory is a link to nowhere or a file.
			os.Symlink(victim, filepath.Join(dir, "timestamp.tmp"))

			s, err := OpenTimestampStore(dir)
			if err == nil {
				s.Next()
				t.Fatal("opened a store in an unsafe state directory")
			}
			if !errors.Is(err, ErrUnsafeStateDir) {
				t.Errorf("error %q does not wrap ErrUnsafeStateDir", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name %s and say %q", err, dir, tc.want)
			}
			assertFile(t, victim, "precious")
		})
	}
}

// mkdirMode creates dir with exactly mode perm, whatever the umask.
func mkdirMode(t *testing.T, dir string, perm os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
}

// assertFile fails t unless the file at path holds want.
func assertFile(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Fatalf("%s holds %q, want %q", path, b, want)
	}
}

// TestTimestampsTempLinkNotFollowed: a link where a fixed temporary name
// would go is never written through; writes go to a fresh file.
func TestTimestampsTempLinkNotFollowed(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "hop0")
	mkdirMode(t, dir, 0o700)
	victim := filepath.Join(base, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "timestamp.tmp")); err != nil {
		t.Fatal(err)
	}
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Next()
	assertFile(t, victim, "precious")
	assertRegularState(t, dir)
}

// assertRegularState fails t unless dir holds a regular state file of mode
// 0600 with a reservation.
func assertRegularState(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(dir, "timestamp"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || fi.Size() != tai64n.TimestampSize {
		t.Fatalf("state file is %v of %d bytes, want a regular 0600 file of %d",
			fi.Mode(), fi.Size(), tai64n.TimestampSize)
	}
}

// TestTimestampsStateNotRegular: a state file that is a link (to a file
// holding a reservation an hour ahead) or a FIFO is damage. The store
// starts from the wall clock without blocking, says so once when it has a
// Logger, leaves the link's target alone and replaces the file with its own.
func TestTimestampsStateNotRegular(t *testing.T) {
	future := stampOf(time.Now().Add(time.Hour))
	cases := []struct {
		name string
		make func(t *testing.T, path, victim string)
		want string
	}{
		{"symbolic link", func(t *testing.T, path, victim string) {
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
		{"fifo", func(t *testing.T, path, _ string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "hop0")
			mkdirMode(t, dir, 0o700)
			victim := filepath.Join(base, "victim")
			if err := os.WriteFile(victim, future[:], 0o600); err != nil {
				t.Fatal(err)
			}
			tc.make(t, filepath.Join(dir, "timestamp"), victim)

			opened := make(chan *TimestampStore, 1)
			go func() {
				s, err := OpenTimestampStore(dir)
				if err != nil {
					t.Error(err)
				}
				opened <- s
			}()
			var s *TimestampStore
			select {
			case s = <-opened:
			case <-time.After(10 * time.Second):
				t.Fatal("open blocked on the state file")
			}
			if s == nil {
				return
			}
			var logged lineCounter
			s.Logger = slog.New(slog.NewTextHandler(&logged, nil))
			for range 3 {
				if ts := s.Next(); compareTimestamps(ts, future) >= 0 {
					t.Fatalf("timestamp %v follows the reservation the %s held", ts, tc.name)
				}
				s.mu.Lock()
				s.reserved = s.last // make the next call write again
				s.mu.Unlock()
			}
			if n := logged.count(tc.want); n != 1 {
				t.Errorf("%d warnings saying %q, want 1: %q", n, tc.want, logged.lines)
			}
			assertFile(t, victim, string(future[:]))
			assertRegularState(t, dir)
		})
	}
}

// TestTimestampsDamageLogged: a damaged state file is logged once, by the
// first write once a Logger is set, not on every write.
func TestTimestampsDamageLogged(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"short", "junk", "holds 4 bytes"},
		{"implausible", string(bytes.Repeat([]byte{0xff}, tai64n.TimestampSize)),
			"no plausible timestamp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "timestamp")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := OpenTimestampStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			var logged lineCounter
			s.Logger = slog.New(slog.NewTextHandler(&logged, nil))
			for range 3 {
				s.Next()
				s.mu.Lock()
				s.reserved = s.last // make the next call write again
				s.mu.Unlock()
			}
			if n := logged.count("timestamp state damaged"); n != 1 {
				t.Fatalf("%d warnings of damage over 3 writes, want 1: %q", n, logged.lines)
			}
			if n := logged.count(tc.want); n != 1 {
				t.Errorf("the warning does not say %q: %q", tc.want, logged.lines)
			}
		})
	}
}

// TestTimestampsStaleTempsRemoved: the temporary files of writes a crash
// cut short are removed when the store opens; the state itself stays.
func TestTimestampsStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	future := stampOf(time.Now().Add(time.Hour))
	if err := os.WriteFile(filepath.Join(dir, "timestamp"), future[:], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"timestamp.tmp123", "timestamp.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "timestamp" {
		t.Errorf("state directory holds %v, want only the state file", entries)
	}
	if ts := s.Next(); compareTimestamps(ts, future) <= 0 {
		t.Errorf("timestamp %v is not beyond the kept reservation %v", ts, future)
	}
}

// TestTimestampsStaleTempsOnlyOwn: an interface name may hold glob
// characters ("hop*" is a valid name), and opening its store must still
// remove only its own temporary files, not another interface's write in
// progress.
func TestTimestampsStaleTempsOnlyOwn(t *testing.T) {
	base := t.TempDir()
	other := filepath.Join(base, "hop0")
	mkdirMode(t, other, 0o700)
	inflight := filepath.Join(other, "timestamp.tmp4242")
	if err := os.WriteFile(inflight, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hop*", "hop[", "hop?"} {
		if _, err := OpenTimestampStore(filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(inflight); err != nil {
		t.Fatalf("opening other stores removed %s: %v", inflight, err)
	}
}

// TestTimestampsStateDirSwappedAfterOpen: whoever may write the state
// directory's parent can replace the directory after the store checked
// it. The store keeps writing into the directory it checked, never
// through what took its place.
func TestTimestampsStateDirSwappedAfterOpen(t *testing.T) {
	base := t.TempDir()
	parent := filepath.Join(base, "shared")
	mkdirMode(t, parent, 0o777)
	dir := filepath.Join(parent, "hop0")
	s, err := OpenTimestampStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(base, "victim")
	mkdirMode(t, victim, 0o755)
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, dir); err != nil {
		t.Fatal(err)
	}
	s.Next()
	if _, err := os.Lstat(filepath.Join(victim, "timestamp")); err == nil {
		t.Fatalf("the reservation was written through a link into %s", victim)
	}
	if _, err := os.Stat(filepath.Join(dir+".old", "timestamp")); err != nil {
		t.Fatalf("the reservation is not in the directory the store checked: %v", err)
	}
}
