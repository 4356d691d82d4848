package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"github.com/hoprd/hoprd/handshake"
)

// A key file holds one key in standard base64 (44 characters), optionally
// followed by one newline ("\n", or "\r\n" as a file saved on Windows ends),
// and nothing else. Only its owner may read or
// write it. Buffers that held key text are erased before the functions
// below return, and no error ever repeats what the file holds.

// keyTextLen is the length of a key in standard base64.
var keyTextLen = base64.StdEncoding.EncodedLen(handshake.KeySize)

// maxKeyFileSize is the most a key file may hold: more than a key and a
// newline, so that a longer file is told from a key with trailing garbage.
const maxKeyFileSize = 64

// Keys holds the secrets a Config names, read from their files.
type Keys struct {
	// Private is the interface's private key.
	Private handshake.PrivateKey
	// Public is the public key of Private.
	Public handshake.PublicKey
	// Preshared[i] is the preshared key of Config.Peers[i], all zeros when
	// the peer has none (the handshake then mixes in zeros, as WireGuard
	// does).
	Preshared []handshake.PresharedKey
}

// Zero erases the secret keys in k.
func (k *Keys) Zero() {
	k.Private.Zero()
	for i := range k.Preshared {
		k.Preshared[i].Zero()
	}
}

// ReadKeys reads the private key and the preshared keys c names, and
// checks that no peer has the interface's own public key. Its errors are
// *Error values that point at the config key naming the file at fault.
// The caller owns the keys and should Zero them when done.
func (c *Config) ReadKeys() (*Keys, error) {
	const privKey = "interface.private_key_file"
	k := &Keys{}
	var err error
	if k.Private, err = ReadPrivateKeyFile(c.Interface.PrivateKeyFile); err != nil {
		return nil, c.keyFileError(privKey, err)
	}
	if k.Private.IsZero() {
		k.Zero()
		return nil, c.errorAt(privKey, c.Interface.PrivateKeyFile+": the key is all zeros")
	}
	k.Public = k.Private.PublicKey()
	if err := c.CheckOwnKey(k.Public); err != nil {
		k.Zero()
		return nil, err
	}
	k.Preshared = make([]handshake.PresharedKey, len(c.Peers))
	for i, p := range c.Peers {
		if p.PresharedKeyFile == "" {
			continue
		}
		if k.Preshared[i], err = ReadPresharedKeyFile(p.PresharedKeyFile); err != nil {
			k.Zero()
			return nil, c.keyFileError(peerKey(i, "preshared_key_file"), err)
		}
	}
	return k, nil
}

// CheckOwnKey reports an *Error if a peer has the public key own, the
// interface's own: a host cannot be its own peer. Load cannot check this,
// since the private key is read later.
func (c *Config) CheckOwnKey(own handshake.PublicKey) error {
	for i, p := range c.Peers {
		if p.PublicKey.Equal(own) {
			return c.errorAt(peerKey(i, "public_key"),
				"this is the interface's own public key: a host cannot be its own peer")
		}
	}
	return nil
}

// peerKey names a key of the peer at index i of Config.Peers.
func peerKey(i int, name string) string {
	return fmt.Sprintf("peer[%d].%s", i+1, name)
}

// keyFileError restates an error from reading a key file as an error about
// the config key that names the file.
func (c *Config) keyFileError(key string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return c.errorAt(key, e.Msg)
	}
	return c.errorAt(key, err.Error())
}

// keyFileProblem returns an *Error about the key file at path. File, Line
// and Key are left for a caller that knows which config key named the file
// to fill in.
func keyFileProblem(path, msg string) *Error {
	return &Error{Msg: path + ": " + msg}
}

// ReadPrivateKeyFile reads a private key file. It refuses a file that is
// not a regular file, that group or others may access, or that another
// user owns; the error says how to fix it. Errors are *Error values whose
// Msg begins with path; File, Line and Key are left empty for the caller,
// which knows the config key that named the file, to fill in (ReadKeys
// does).
func ReadPrivateKeyFile(path string) (handshake.PrivateKey, error) {
	buf := make([]byte, maxKeyFileSize+1)
	defer clear(buf)
	content, err := readKeyFile(path, buf)
	if err != nil {
		return handshake.PrivateKey{}, err
	}
	k, err := DecodePrivateKey(content)
	if err != nil {
		return handshake.PrivateKey{}, badKeyFile(path, "private key", err)
	}
	return k, nil
}

// ReadPresharedKeyFile reads a preshared key file under the rules of
// ReadPrivateKeyFile.
func ReadPresharedKeyFile(path string) (handshake.PresharedKey, error) {
	buf := make([]byte, maxKeyFileSize+1)
	defer clear(buf)
	content, err := readKeyFile(path, buf)
	if err != nil {
		return handshake.PresharedKey{}, err
	}
	k, err := decodeKey(content, handshake.ParsePresharedKey)
	if err != nil {
		return handshake.PresharedKey{}, badKeyFile(path, "preshared key", err)
	}
	return k, nil
}

// badKeyFile reports a key file whose content is not a key; err comes from
// a key parser and holds no key material.
func badKeyFile(path, what string, err error) *Error {
	return keyFileProblem(path, fmt.Sprintf("not a %s file: %v; a key file holds one "+
		"key in standard base64 and at most one newline", what, err))
}

// DecodePrivateKey decodes the content of a private key file: a key in
// standard base64 and at most one trailing newline ("\n" or "\r\n"). The
// error never contains the input.
func DecodePrivateKey(b []byte) (handshake.PrivateKey, error) {
	return decodeKey(b, handshake.ParsePrivateKey)
}

// decodeKey decodes the content of a key file with parse. When the text
// still holds a carriage return once its newline is taken off (a line
// ending in a lone "\r", say), the error says so: the parser's own error
// only counts characters, and a carriage return is invisible.
func decodeKey[K any](b []byte, parse func(string) (K, error)) (K, error) {
	text := keyText(b)
	k, err := parse(text)
	switch {
	case err == nil:
	case strings.HasSuffix(text, "\r"):
		err = fmt.Errorf("%w, as the line ends in a carriage return (\\r)", err)
	case strings.IndexByte(text, '\r') >= 0:
		err = fmt.Errorf("%w, as the text holds a carriage return (\\r)", err)
	}
	return k, err
}

// keyText returns the key characters of a key file's content, less one
// trailing newline ("\n" or "\r\n"), as a string that shares b's memory:
// the handshake parsers take strings, and a copy in a fresh string could
// not be erased. The string must not be kept past the parse; the parsers
// keep nothing of it.
func keyText(b []byte) string {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// readKeyFile opens a key file, checks its type, owner and mode, and reads
// its content into buf, which the caller erases. A file that fills buf is
// too long to be a key file.
func readKeyFile(path string, buf []byte) ([]byte, error) {
	// O_NONBLOCK keeps a FIFO planted at path from blocking the open; the
	// type check below then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, keyFileProblem(path, fileProblem(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, keyFileProblem(path, fileProblem(err))
	}
	if err := checkKeyFileInfo(path, fi); err != nil {
		return nil, err
	}
	n, err := io.ReadFull(f, buf)
	switch {
	case err == nil:
		return nil, keyFileProblem(path, "too long to be a key file")
	case !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return nil, keyFileProblem(path, fileProblem(err))
	}
	return buf[:n], nil
}

// checkKeyFileInfo refuses a key file that is not a regular file, that
// another user owns or that group or others may access.
func checkKeyFileInfo(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return keyFileProblem(path, "not a regular file")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); int(st.Uid) != euid {
			return keyFileProblem(path, fmt.Sprintf(
				"owned by uid %d, but hoprd runs as uid %d; fix with: chown %d %s",
				st.Uid, euid, euid, shellQuote(path)))
		}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return keyFileProblem(path, fmt.Sprintf(
			"mode %04o gives group or others access to the key; fix with: chmod 600 %s",
			perm, shellQuote(path)))
	}
	return nil
}

// EncodePrivateKey returns k as a key file holds it: standard base64 and a
// newline. The caller owns the slice and should clear it when done.
func EncodePrivateKey(k *handshake.PrivateKey) []byte {
	text := make([]byte, keyTextLen+1)
	base64.StdEncoding.Encode(text, k[:])
	text[keyTextLen] = '\n'
	return text
}

// WritePrivateKeyFile writes k to a new key file at path with mode 0600,
// whatever the umask. It refuses to replace an existing file; that error
// wraps fs.ErrExist.
func WritePrivateKeyFile(path string, k handshake.PrivateKey) error {
	defer k.Zero() // this copy
	text := EncodePrivateKey(&k)
	defer clear(text)

	// O_EXCL also refuses a symbolic link planted at path.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write key file %s: %w; refusing to replace it", path, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(path)
		}
	}()
	// The umask may have taken bits away from 0600 (never added any);
	// set the mode outright all the same.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.Write(text); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	done = true
	return nil
}

// shellQuote quotes a path for a shell command line when it needs quoting.
func shellQuote(s string) string {
	safe := s != ""
	for i := 0; i < len(s) && safe; i++ {
		c := s[i]
		safe = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("/._-+,:@%", c) >= 0
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
