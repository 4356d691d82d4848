package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hoprd/hoprd/handshake"
)

// A private key and its public key, for tests only.
const (
	testPrivate = "EEZjhmHptBfBhZMwuPIKFtTeG5gdI85K7QMOIElHnHM="
	testPublic  = "6PQ/mjLoyFdi7F5hiecfyhJZUDQQdmeEW0dcfGiNyVI="
)

// writeFile writes a file with exactly the given mode.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestReadPrivateKeyFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		msg     string // a substring of the error; "" for success
	}{
		{"key and newline", testPrivate + "\n", 0o600, ""},
		{"key alone", testPrivate, 0o600, ""},
		{"read-only", testPrivate + "\n", 0o400, ""},
		{"readable by all", testPrivate + "\n", 0o644, "mode 0644 gives group or others"},
		{"readable by group", testPrivate + "\n", 0o640, "chmod 600"},
		{"writable by others", testPrivate + "\n", 0o602, "chmod 600"},
		{"two newlines", testPrivate + "\n\n", 0o600, "not a private key file"},
		{"trailing garbage", testPrivate + "\nxyz", 0o600, "not a private key file"},
		{"trailing space", testPrivate + " ", 0o600, "not a private key file"},
		{"CRLF", testPrivate + "\r\n", 0o600, ""},
		{"CR alone", testPrivate + "\r", 0o600,
			"got 45, as the line ends in a carriage return (\\r)"},
		{"CRLF twice", testPrivate + "\r\n\r\n", 0o600, "holds a carriage return"},
		{"CR before LF", testPrivate + "\r\r\n", 0o600, "ends in a carriage return"},
		{"leading space", " " + testPrivate, 0o600, "not a private key file"},
		{"empty", "", 0o600, "not a private key file"},
		{"short", testPrivate[:43] + "\n", 0o600, "got 43"},
		{"long", strings.Repeat(testPrivate, 3), 0o600, "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			writeFile(t, path, tc.content, tc.mode)
			k, err := ReadPrivateKeyFile(path)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("ReadPrivateKeyFile: %v", err)
				}
				if got := k.PublicKey().String(); got != testPublic {
					t.Errorf("public key %s, want %s", got, testPublic)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if !strings.HasPrefix(e.Msg, path+": ") || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("error %q, want one about %s saying %q", err, path, tc.msg)
			}
			if strings.Contains(e.Msg, "chmod") && !strings.Contains(e.Msg, "chmod 600 "+path) {
				t.Errorf("error %q does not name the fix for %s", err, path)
			}
			if strings.Contains(err.Error(), testPrivate[:20]) {
				t.Errorf("error %q reveals the key", err)
			}
			if !k.IsZero() {
				t.Errorf("a key came back with the error")
			}
		})
	}
}

func TestReadKeyFileRefusesOddFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		msg  string
	}{
		{"directory", dir, "not a regular file"},
		{"FIFO", fifo, "not a regular file"}, // and it does not block
		{"missing", filepath.Join(dir, "none"), "cannot read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadPresharedKeyFile(tc.path)
			var e *Error
			if !errors.As(err, &e) || !strings.HasPrefix(e.Msg, tc.path+": ") ||
				!strings.Contains(e.Msg, tc.msg) {
				t.Fatalf("error %v, want *Error about %s saying %q", err, tc.path, tc.msg)
			}
		})
	}
}

func TestReadKeyFileRefusesOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	path := filepath.Join(t.TempDir(), "key")
	writeFile(t, path, testPrivate+"\n", 0o600)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := ReadPrivateKeyFile(path)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Msg, "owned by uid 65534") ||
		!strings.Contains(e.Msg, "chown 0 "+path) {
		t.Fatalf("error %v, want one naming the owner and the chown fix", err)
	}
}

func TestWritePrivateKeyFile(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077} {
		t.Run(fmt.Sprintf("umask %04o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			k, err := handshake.GeneratePrivateKey()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "key")
			if err := WritePrivateKeyFile(path, k); err != nil {
				t.Fatalf("WritePrivateKeyFile: %v", err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o600 {
				t.Errorf("mode %v, want -rw-------", fi.Mode())
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != k.Base64()+"\n" {
				t.Errorf("file holds %d bytes, want the key and a newline", len(data))
			}
			back, err := ReadPrivateKeyFile(path)
			if err != nil || back != k {
				t.Errorf("read back: %v, same key %v", err, back == k)
			}
		})
	}
}

func TestWritePrivateKeyFileRefusesToReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	writeFile(t, path, "precious\n", 0o600)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	k, err := handshake.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, link} {
		if err := WritePrivateKeyFile(p, k); !errors.Is(err, fs.ErrExist) {
			t.Errorf("WritePrivateKeyFile(%s) = %v, want fs.ErrExist", p, err)
		}
	}
	if data, _ := os.ReadFile(path); string(data) != "precious\n" {
		t.Errorf("existing file changed to %q", data)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the symbolic link was followed")
	}
}

func TestReadKeys(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	writeFile(t, key, testPrivate+"\n", 0o600)
	psk := filepath.Join(dir, "psk")
	writeFile(t, psk, pubB+"\n", 0o600)
	loose := filepath.Join(dir, "loose")
	writeFile(t, loose, pubB+"\n", 0o644)

	tests := []struct {
		name string
		doc  string
		line int
		key  string
		msg  string // "" for success
	}{
		{"keys read", iface(peers(peer("a", pubA, ""),
			peer("b", pubB, "", `preshared_key_file = "psk"`))...), 0, "", ""},
		{"own key as a peer", iface(peers(peer("a", pubA, ""),
			peer("self", testPublic, ""))...), 11, "peer[2].public_key",
			"the interface's own public key"},
		{"loose preshared key file", iface(peer("a", pubA, "",
			`preshared_key_file = "loose"`)...), 9, "peer[1].preshared_key_file",
			loose + ": mode 0644"},
		{"missing private key file", doc(`[interface]`, `name = "hop0"`,
			`private_key_file = "none"`), 3, "interface.private_key_file",
			filepath.Join(dir, "none") + ": cannot read"},
		{"all-zero private key", doc(`[interface]`, `name = "hop0"`,
			`private_key_file = "zero"`), 3, "interface.private_key_file", "all zeros"},
	}
	writeFile(t, filepath.Join(dir, "zero"), strings.Repeat("A", 43)+"=\n", 0o600)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.doc), filepath.Join(dir, "hoprd.toml"))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			keys, err := cfg.ReadKeys()
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("ReadKeys: %v", err)
				}
				if keys.Public.String() != testPublic || len(keys.Preshared) != 2 ||
					!keys.Preshared[0].IsZero() || keys.Preshared[1].Base64() != pubB {
					t.Errorf("keys read wrong")
				}
				keys.Zero()
				if !keys.Private.IsZero() || !keys.Preshared[1].IsZero() {
					t.Errorf("Zero left key material")
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.File != cfg.Path || e.Line != tc.line || e.Key != tc.key ||
				!strings.Contains(e.Msg, tc.msg) {
				t.Errorf("error %q, want line %d key %s and %q", err, tc.line, tc.key, tc.msg)
			}
		})
	}
}

func TestReadPresharedKeyFileCRLF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "psk")
	writeFile(t, path, pubB+"\r\n", 0o600)
	k, err := ReadPresharedKeyFile(path)
	if err != nil || k.Base64() != pubB {
		t.Fatalf("ReadPresharedKeyFile of a key and CRLF: %v", err)
	}
}

func TestDecodePrivateKey(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"bare", testPrivate, true},
		{"newline", testPrivate + "\n", true},
		{"two newlines", testPrivate + "\n\n", false},
		{"CR", testPrivate + "\r", false},
		{"CRLF", testPrivate + "\r\n", true},
		{"CRLF only", "\r\n", false},
		{"LF CR", testPrivate + "\n\r", false},
		{"empty", "", false},
		{"newline only", "\n", false},
		{"hex", strings.Repeat("ab", 32), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := DecodePrivateKey([]byte(tc.in))
			if tc.ok != (err == nil) {
				t.Fatalf("DecodePrivateKey: %v, want ok %v", err, tc.ok)
			}
			if tc.ok && k.PublicKey().String() != testPublic {
				t.Errorf("wrong key")
			}
			if err != nil && len(tc.in) >= 10 && strings.Contains(err.Error(), tc.in[:10]) {
				t.Errorf("error %q repeats the input", err)
			}
		})
	}
}
