package device

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.zx2c4.com/wireguard/tai64n"
)

// TimestampStore hands out handshake initiation timestamps that never go
// backwards, even across a restart with the wall clock set back. It keeps a
// reservation on disk: a time no timestamp handed out so far exceeds,
// reserved a minute ahead of the last one. Once timestamps come within half
// a minute of it, a background write extends it, so a handshake waits for
// the disk only when the reservation has run out: after a start, or when
// the disk has been slower than half a minute.
//
// Safe for concurrent use.
type TimestampStore struct {
	// Logger, if not nil, hears when writing the state first fails and
	// when it works again, and of a damaged state file found at open: a
	// store that cannot write, or has lost its state, loses its guarantee
	// across restarts, which should not go unnoticed. Set it before use.
	Logger *slog.Logger

	path string     // of the state file, for messages
	root *os.Root   // the state directory as checked; every access goes through it
	wmu  sync.Mutex // serializes writes of the state; taken before mu

	mu        sync.Mutex       // guards the fields below
	last      tai64n.Timestamp // the last timestamp handed out
	reserved  tai64n.Timestamp // persisted; every timestamp handed out is below it
	extending bool             // a background write is under way
	failing   bool             // the last write failed
	damage    string           // what was wrong with the state file; "" once logged
}

// timestampReserve is how far ahead of the last timestamp the store
// reserves on disk.
const timestampReserve = time.Minute

// timestampStep is the smallest step between two timestamps: the whitening
// of TAI64N initiation timestamps rounds nanoseconds down to 2^24.
const timestampStep = 1 << 24

// ErrUnsafeStateDir is wrapped by the error OpenTimestampStore returns for
// a state directory another user could tamper with: one that is a symbolic
// link, is not a directory, belongs to another user, or that group or
// others may write. It is the operator's to fix; the message says how.
var ErrUnsafeStateDir = errors.New("unsafe state directory")

// OpenTimestampStore opens (creating if needed) the store in dir, which is
// created with mode 0700. It refuses, with an error wrapping
// ErrUnsafeStateDir, a dir that is a symbolic link or not a directory, that
// another user owns, or that group or others may write: whoever can write
// the directory controls the reservation, and could plant links there.
//
// A state file that is not a regular file of the effective user (a
// symbolic link, say), or that holds no plausible reservation, is damage,
// not an error: the store starts from the wall clock, and the first write
// replaces the file (never what a link points at). The damage is logged
// once, by the first reservation written after Logger is set.
func OpenTimestampStore(dir string) (*TimestampStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		// A link or a file in the way: say so, as the check below would.
		if cerr := checkStateDir(dir); errors.Is(cerr, ErrUnsafeStateDir) {
			return nil, cerr
		}
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	root, err := openStateDir(dir)
	if err != nil {
		return nil, err
	}
	s := &TimestampStore{path: filepath.Join(dir, stateFile), root: root}
	s.removeStaleTemps()
	b, damage, err := readState(root)
	switch {
	case err != nil:
		return nil, fmt.Errorf("read timestamp state: %w", err)
	case damage == "" && b != nil && !plausible(b):
		damage = "holds no plausible timestamp"
	}
	if damage != "" {
		s.damage = damage
		return s, nil // start from the wall clock
	}
	if b != nil {
		copy(s.reserved[:], b)
		s.last = s.reserved
	}
	return s, nil
}

// stateFile is the name of the state file in the state directory, and
// stateTemp the prefix of the temporary files it is written through.
const (
	stateFile = "timestamp"
	stateTemp = stateFile + ".tmp"
)

// openStateDir checks dir and opens it as a root for every later access,
// so that replacing dir after the check (possible when its parent is
// writable by others) changes nothing: the store keeps using the
// directory it checked.
func openStateDir(dir string) (*os.Root, error) {
	if err := checkStateDir(dir); err != nil {
		return nil, err
	}
	before, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("check state directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open state directory: %w", err)
	}
	opened, err := root.Stat(".")
	if err != nil || !os.SameFile(before, opened) {
		root.Close()
		return nil, fmt.Errorf("%w %s: replaced while it was checked", ErrUnsafeStateDir, dir)
	}
	return root, nil
}

// checkStateDir refuses a state directory that is a symbolic link, not a
// directory, owned by a user other than the effective one, or writable by
// group or others. The error says what to run to fix it.
func checkStateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check state directory: %w", err)
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrUnsafeStateDir, dir, fmt.Sprintf(format, args...))
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return refuse("a symbolic link; give --state-dir the directory it leads to")
	case !fi.IsDir():
		return refuse("not a directory; move it away, or choose another --state-dir")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); int(st.Uid) != euid {
			return refuse("owned by uid %d, but hoprd runs as uid %d; fix with: chown %s %s",
				st.Uid, euid, userName(euid), dir)
		}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return refuse("mode %04o lets group or others write it; fix with: chmod 700 %s",
			perm, dir)
	}
	return nil
}

// userName names uid for a chown command line.
func userName(uid int) string {
	if uid == 0 {
		return "root"
	}
	return strconv.Itoa(uid)
}

// readState reads the state file at path without following a symbolic
// link. It returns the content, nil if there is no file; or, when the file
// is not one the store could have written, a description of the damage.
// err is for faults reading a file that is the store's own.
func readState(root *os.Root) (b []byte, damage string, err error) {
	// A link is refused before the open, which would otherwise fail on one
	// that leads out of the directory.
	if fi, err := root.Lstat(stateFile); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, "is a symbolic link", nil
	}
	// O_NONBLOCK keeps a FIFO from blocking the open; the type check below
	// then calls it damage.
	f, err := root.OpenFile(stateFile, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", nil
	case errors.Is(err, syscall.ELOOP):
		return nil, "is a symbolic link", nil
	case err != nil:
		return nil, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		return nil, "is not a regular file", nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Sprintf("is owned by uid %d, not hoprd's", st.Uid), nil
	}
	b, err = io.ReadAll(io.LimitReader(f, tai64n.TimestampSize+1))
	switch {
	case err != nil:
		return nil, "", err
	case len(b) != tai64n.TimestampSize:
		return nil, fmt.Sprintf("holds %d bytes, not %d", len(b), tai64n.TimestampSize), nil
	}
	return b, "", nil
}

// Next returns a timestamp strictly after every earlier one, once the
// reservation on disk covers it.
func (s *TimestampStore) Next() tai64n.Timestamp {
	s.mu.Lock()
	ts := tai64n.Now()
	if !ts.After(s.last) {
		ts = addNanos(s.last, timestampStep)
	}
	s.last = ts
	if !s.reserved.After(ts) {
		s.mu.Unlock()
		s.reserve(ts)
		return ts
	}
	if soon := addNanos(ts, uint64(timestampReserve/2)); !s.extending && !s.reserved.After(soon) {
		s.extending = true
		go func() {
			s.reserve(soon)
			s.mu.Lock()
			s.extending = false
			s.mu.Unlock()
		}()
	}
	s.mu.Unlock()
	return ts
}

// reserve writes a reservation timestampReserve past the last timestamp
// handed out, unless one already on disk lies beyond need. A failed write
// leaves the reservation as it was: without it on disk, a restart with the
// clock set back could reuse a timestamp, which the peer would only refuse
// as a replay.
func (s *TimestampStore) reserve(need tai64n.Timestamp) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.reserved.After(need) {
		s.mu.Unlock() // a write while this one waited covered it
		return
	}
	target := addNanos(s.last, uint64(timestampReserve))
	s.noteDamage()
	s.mu.Unlock()
	err := s.persist(target)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && target.After(s.reserved) {
		s.reserved = target
	}
	s.noteWrite(err)
}

// noteDamage logs, once, that the state file read at open was damaged.
// Open cannot, having no Logger yet; a damaged file leaves no reservation,
// so the first Next comes here. s.mu is held.
func (s *TimestampStore) noteDamage() {
	if s.damage == "" || s.Logger == nil {
		return
	}
	s.Logger.Warn("handshake timestamp state damaged; starting from the wall clock, "+
		"so after a clock set back peers may refuse initiations until it catches up",
		"path", s.path, "problem", s.damage)
	s.damage = ""
}

// noteWrite logs the first of a run of failed writes, and the write that
// ends the run.
func (s *TimestampStore) noteWrite(err error) {
	failed := err != nil
	if failed == s.failing {
		return
	}
	s.failing = failed
	if s.Logger == nil {
		return
	}
	if failed {
		s.Logger.Warn("cannot keep the handshake timestamp state: after a restart with the "+
			"clock set back, peers may refuse initiations until it catches up", "err", err)
	} else {
		s.Logger.Info("handshake timestamp state written again", "path", s.path)
	}
}

// persist writes the reservation atomically and durably: to a new
// temporary file, synced, renamed over the state file, and the directory
// synced. Only one persist runs at a time (wmu).
func (s *TimestampStore) persist(reserved tai64n.Timestamp) error {
	var suffix [8]byte
	rand.Read(suffix[:])
	tmp := stateTemp + hex.EncodeToString(suffix[:])
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("write timestamp state: %w", err)
	}
	_, err = f.Write(reserved[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, stateFile)
	}
	if err != nil {
		s.root.Remove(tmp)
		return fmt.Errorf("write timestamp state: %w", err)
	}
	// The rename is durable only once the directory is: a power cut before
	// that would bring back the old, smaller reservation.
	if err := s.syncDir(); err != nil {
		return fmt.Errorf("write timestamp state: %w", err)
	}
	return nil
}

// syncDir flushes the entries of the state directory to disk.
func (s *TimestampStore) syncDir() error {
	d, err := s.root.Open(".")
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeStaleTemps removes the temporary files of writes that a crash
// interrupted before their rename. Only persist writes them, and no
// persist has run yet on a store being opened.
func (s *TimestampStore) removeStaleTemps() {
	d, err := s.root.Open(".")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, name := range names {
		if strings.HasPrefix(name, stateTemp) {
			s.root.Remove(name)
		}
	}
}

// plausible reports whether b is a TAI64N label hoprd could have written:
// nanoseconds below a second, and seconds between 1970 and a century from
// now. Anything else is damage, and would overflow the arithmetic.
func plausible(b []byte) bool {
	const tai64Base = 0x400000000000000a // TAI64 label of 1970-01-01
	secs := binary.BigEndian.Uint64(b[:8])
	nanos := binary.BigEndian.Uint32(b[8:])
	limit := uint64(time.Now().Add(100*365*24*time.Hour).Unix()) + tai64Base
	return nanos < 1e9 && secs >= tai64Base && secs <= limit
}

// addNanos returns t plus n nanoseconds.
func addNanos(t tai64n.Timestamp, n uint64) tai64n.Timestamp {
	secs := binary.BigEndian.Uint64(t[:8])
	nanos := uint64(binary.BigEndian.Uint32(t[8:])) + n
	secs += nanos / 1e9
	nanos %= 1e9
	var out tai64n.Timestamp
	binary.BigEndian.PutUint64(out[:8], secs)
	binary.BigEndian.PutUint32(out[8:], uint32(nanos))
	return out
}

// compareTimestamps orders two timestamps (for tests).
func compareTimestamps(a, b tai64n.Timestamp) int { return bytes.Compare(a[:], b[:]) }
