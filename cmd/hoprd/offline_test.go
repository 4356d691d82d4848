package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/device/control"
)

// Tests of the commands that work offline: genkey, pubkey, check, version.
// They call run as main does and swap the process's standard files, so
// they do not run in parallel.

// A private key and its public key, for tests only.
const (
	offlinePriv = "EEZjhmHptBfBhZMwuPIKFtTeG5gdI85K7QMOIElHnHM="
	offlinePub  = "6PQ/mjLoyFdi7F5hiecfyhJZUDQQdmeEW0dcfGiNyVI="
	peerPubA    = "LWbd31SBju+z/OHHu2b6uDDirA6apwIQay6d+VSgJy4="
	peerPubB    = "L45bo4lcZjSHDwc5GxLSlWxZk/+tPhy01cOnKqYEch8="
)

// runOffline runs a command line with stdin as its standard input and
// returns the exit code and what it wrote to stdout and stderr.
func runOffline(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	open := func(name, content string) *os.File {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	in, out, errOut := open("stdin", stdin), open("stdout", ""), open("stderr", "")
	oldIn, oldOut, oldErr := os.Stdin, os.Stdout, os.Stderr
	os.Stdin, os.Stdout, os.Stderr = in, out, errOut
	code = run(args)
	os.Stdin, os.Stdout, os.Stderr = oldIn, oldOut, oldErr
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return code, read("stdout"), read("stderr")
}

// keepGCPercent restores, when t ends, the collector's setting that the
// daemon code a test calls tunes for the whole process.
func keepGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	debug.SetGCPercent(old)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// withUmask runs fn under the umask mask.
func withUmask(mask int, fn func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	fn()
}

func TestGenkeyPrints(t *testing.T) {
	code, out1, errOut := runOffline(t, "", "genkey")
	if code != exitOK || errOut != "" {
		t.Fatalf("genkey: exit %d, stderr %q", code, errOut)
	}
	_, out2, _ := runOffline(t, "", "genkey")
	for _, out := range []string{out1, out2} {
		key, ok := strings.CutSuffix(out, "\n")
		raw, err := base64.StdEncoding.DecodeString(key)
		if !ok || len(key) != 44 || err != nil || len(raw) != 32 {
			t.Errorf("genkey printed %d bytes, want 44 characters of base64 and a newline",
				len(out))
		}
	}
	if out1 == out2 {
		t.Errorf("two runs printed the same key")
	}
}

func TestGenkeyOut(t *testing.T) {
	for _, mask := range []int{0, 0o022} {
		t.Run(fmt.Sprintf("umask %04o", mask), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "private.key")
			var code int
			var out, errOut string
			withUmask(mask, func() {
				code, out, errOut = runOffline(t, "", "genkey", "--out", path)
			})
			if code != exitOK || out != "" || errOut != "" {
				t.Fatalf("genkey --out: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o600 {
				t.Errorf("key file mode %v, want -rw-------", fi.Mode())
			}
			key, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			code, pub, errOut := runOffline(t, string(key), "pubkey")
			if code != exitOK || len(pub) != 45 {
				t.Errorf("pubkey of the written key: exit %d, %q, %q", code, pub, errOut)
			}
		})
	}
}

func TestGenkeyOutRefusesToReplace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private.key")
	if err := os.WriteFile(path, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runOffline(t, "", "genkey", "--out", path)
	if code != exitConfig || !strings.Contains(errOut, path) ||
		!strings.Contains(errOut, "refusing to replace") {
		t.Errorf("genkey over an existing file: exit %d, stderr %q", code, errOut)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious\n" {
		t.Errorf("existing file changed to %q", b)
	}
	code, _, _ = runOffline(t, "", "genkey", "--out", filepath.Join(path, "x"))
	if code != exitError {
		t.Errorf("genkey into a missing directory: exit %d, want %d", code, exitError)
	}
}

func TestPubkey(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		code  int
		out   string
		err   string // a substring of stderr
	}{
		{"key and newline", offlinePriv + "\n", exitOK, offlinePub + "\n", ""},
		{"key alone", offlinePriv, exitOK, offlinePub + "\n", ""},
		{"empty", "", exitConfig, "", "not a private key"},
		{"two newlines", offlinePriv + "\n\n", exitConfig, "", "not a private key"},
		{"CRLF", offlinePriv + "\r\n", exitOK, offlinePub + "\n", ""},
		{"CR alone", offlinePriv + "\r", exitConfig, "", "ends in a carriage return (\\r)"},
		{"leading space", " " + offlinePriv, exitConfig, "", "not a private key"},
		{"short", offlinePriv[:43], exitConfig, "", "got 43"},
		{"not base64", strings.Replace(offlinePriv, "E", "!", 1), exitConfig, "",
			"not standard base64"},
		{"too long", strings.Repeat(offlinePriv, 5), exitConfig, "", "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runOffline(t, tc.stdin, "pubkey")
			if code != tc.code || out != tc.out || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
					code, out, errOut, tc.code, tc.out, tc.err)
			}
			if code != exitOK && strings.Contains(errOut, offlinePriv[4:20]) {
				t.Errorf("stderr %q repeats the input", errOut)
			}
		})
	}
}

// checkDir writes key files and returns a directory for check's configs.
func checkDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"private.key", offlinePriv + "\n", 0o600},
		{"gamma.psk", peerPubB + "\n", 0o600},
		{"loose.key", offlinePriv + "\n", 0o644},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCheck(t *testing.T) {
	const good = `[interface]
name = "hop0"
private_key_file = "private.key"
address = ["100.64.0.1/24"]

[[peer]]
name = "beta"
public_key = "` + peerPubA + `"
allowed_ips = ["100.64.0.2/32"]

[[peer]]
name = "gamma"
public_key = "` + peerPubB + `"
preshared_key_file = "gamma.psk"
`
	tests := []struct {
		name string
		cfg  string
		code int
		out  string // stdout, after the config path
		err  string // a substring of stderr, after the config path
	}{
		{"good", good, exitOK, ": ok (2 peers)\n", ""},
		{"unknown key", good + "pubkey = \"x\"\n", exitConfig, "",
			`:15: peer[2].pubkey: unknown key; did you mean "public_key"?`},
		{"bad endpoint", strings.Replace(good, "[[peer]]\nname = \"beta\"",
			"[[peer]]\nname = \"beta\"\nendpoint = \"2001:db8::1:51820\"", 1),
			exitConfig, "", ":8: peer[1].endpoint:"},
		{"loose private key", strings.Replace(good, "private.key", "loose.key", 1),
			exitConfig, "", ":3: interface.private_key_file: "},
		{"own key as a peer", strings.Replace(good, peerPubA, offlinePub, 1),
			exitConfig, "", ":8: peer[1].public_key: this is the interface's own public key"},
		{"missing preshared key", strings.Replace(good, "gamma.psk", "none.psk", 1),
			exitConfig, "", ":14: peer[2].preshared_key_file: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := checkDir(t)
			path := filepath.Join(dir, "hoprd.toml")
			if err := os.WriteFile(path, []byte(tc.cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runOffline(t, "", "check", "-c", path)
			wantOut, wantErr := "", ""
			if tc.out != "" {
				wantOut = path + tc.out
			}
			if tc.err != "" {
				wantErr = "hoprd: " + path + tc.err
			}
			if code != tc.code || out != wantOut || !strings.HasPrefix(errOut, wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q...",
					code, out, errOut, tc.code, wantOut, wantErr)
			}
			if strings.Contains(errOut, offlinePriv[4:20]) {
				t.Errorf("stderr %q reveals the private key", errOut)
			}
		})
	}
}

func TestCheckLooseKeyNamesFix(t *testing.T) {
	dir := checkDir(t)
	path := filepath.Join(dir, "hoprd.toml")
	cfg := "[interface]\nname = \"hop0\"\nprivate_key_file = \"loose.key\"\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runOffline(t, "", "check", "-c", path)
	key := filepath.Join(dir, "loose.key")
	if code != exitConfig || !strings.Contains(errOut, "chmod 600 "+key) {
		t.Errorf("exit %d, stderr %q; want exit 2 and the chmod for %s", code, errOut, key)
	}
}

// TestCheckSeveral gives check several files with -c: it checks each, in
// order, and exits 2 if any fails.
func TestCheckSeveral(t *testing.T) {
	dir := checkDir(t)
	write := func(name, cfg string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := "[interface]\nname = \"hop0\"\nprivate_key_file = \"private.key\"\n"
	a, b := write("a.toml", good), write("b.toml", good)
	bad := write("bad.toml", good+"pubkey = \"x\"\n")
	loose := write("loose.toml", strings.Replace(good, "private.key", "loose.key", 1))
	tests := []struct {
		name     string
		files    []string
		code     int
		out, err []string // lines, each after a file's path
	}{
		{"all good", []string{a, b}, exitOK,
			[]string{a + ": ok (0 peers)", b + ": ok (0 peers)"}, nil},
		{"bad ones among good ones", []string{bad, a, loose, b}, exitConfig,
			[]string{a + ": ok (0 peers)", b + ": ok (0 peers)"},
			[]string{"hoprd: " + bad + ":4: interface.pubkey: unknown key",
				"hoprd: " + loose + ":3: interface.private_key_file: "}},
		{"the last bad", []string{a, bad}, exitConfig,
			[]string{a + ": ok (0 peers)"}, []string{"hoprd: " + bad + ":4: "}},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			args := []string{"check"}
			for _, f := range tc.files {
				args = append(args, "-c", f)
			}
			code, out, errOut := runOffline(t, "", args...)
			outLines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if out == "" {
				outLines = nil
			}
			errLines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
			if errOut == "" {
				errLines = nil
			}
			ok := code == tc.code && len(outLines) == len(tc.out) &&
				len(errLines) == len(tc.err)
			for i := 0; ok && i < len(tc.out); i++ {
				ok = outLines[i] == tc.out[i]
			}
			for i := 0; ok && i < len(tc.err); i++ {
				ok = strings.HasPrefix(errLines[i], tc.err[i])
			}
			if !ok {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, "+
					"stderr lines starting %q", code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"check without -c", []string{"check"}, "-c FILE"},
		{"check of a missing file", []string{"check", "-c", "/nonexistent/hoprd.toml"},
			"/nonexistent/hoprd.toml: cannot read"},
		{"argument to version", []string{"version", "now"}, "takes no arguments"},
		{"argument to genkey", []string{"genkey", "key"}, "takes no arguments"},
		{"unknown flag", []string{"genkey", "--bogus"}, "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runOffline(t, "", tc.args...)
			if code != exitConfig || out != "" || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q",
					code, out, errOut, tc.err)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	old := version
	defer func() { version = old }()
	for _, v := range []string{"dev", "v1.2.3-4-gabcdef"} {
		version = v
		code, out, _ := runOffline(t, "", "version")
		if code != exitOK || out != "hoprd "+v+"\n" {
			t.Errorf("version %q: exit %d, printed %q", v, code, out)
		}
	}
}

// TestInterfaceNameTypoGuard runs "hoprd NAME" with --wg-dir empty, which
// is refused after the typo guard and before anything is created: a name
// taken for a mistyped command says "did you mean", an interface name
// reaches the --wg-dir check.
func TestInterfaceNameTypoGuard(t *testing.T) {
	typos := map[string]string{
		"statsu": "status", "stats": "status", "chek": "check", "chekc": "check",
		"genky": "genkey", "pubky": "pubkey", "verison": "version", "hlep": "help",
		"pu": "up", "STATSU": "status", "Check": "check",
	}
	for name, sub := range typos {
		code, _, errOut := runOffline(t, "", "--wg-dir=", name)
		want := fmt.Sprintf("unknown command %q; did you mean %q?", name, sub)
		if code != exitConfig || !strings.Contains(errOut, want) {
			t.Errorf("hoprd %s: exit %d, stderr %q; want exit 2 and %q",
				name, code, errOut, want)
		}
	}
	for _, name := range []string{
		"u", "p", "x", "u0", "up0", "vp", "upp0", "hop0", "wg0", "status1", "chek0",
		"tun", "eth", "down",
	} {
		code, _, errOut := runOffline(t, "", "--wg-dir=", name)
		if code != exitConfig || !strings.Contains(errOut, "--wg-dir is empty") {
			t.Errorf("hoprd %s: exit %d, stderr %q; want it taken as an interface name",
				name, code, errOut)
		}
	}
}

// TestInterfaceNameRefusedFirst runs "hoprd -f NAME" with names Linux
// refuses: each is a usage error, said once, before the name becomes part
// of any path, so nothing appears under the state directory (a "../" name
// would otherwise reach outside it).
func TestInterfaceNameRefusedFirst(t *testing.T) {
	keepGCPercent(t)
	for name, why := range map[string]string{
		"hop:0":    `"hop:0" contains ':'`,
		"bad/name": `"bad/name" contains '/'`,
		"../esc":   `"../esc" contains '/'`,
		"..":       `".." is not a valid interface name`,
	} {
		root := t.TempDir()
		state := filepath.Join(root, "state")
		for _, mode := range []string{"-f", "--"} { // foreground, and background
			code, _, errOut := runOffline(t, "", "--run-dir", root, "--state-dir", state,
				"--wg-dir", root, mode, name)
			want := "hoprd: interface name: " + why
			if code != exitConfig || !strings.HasPrefix(errOut, want) ||
				strings.Count(errOut, "hoprd:") != 1 {
				t.Errorf("hoprd %s %s: exit %d, stderr %q; want exit 2 and %q...",
					mode, name, code, errOut, want)
			}
		}
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "state" {
				t.Errorf("hoprd -f %s left %s in its directories", name, e.Name())
			}
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("hoprd -f %s created the state directory", name)
		}
	}
}

func TestLogLevel(t *testing.T) {
	code, _, errOut := runOffline(t, "", "up", "-c", "/nonexistent/hoprd.toml",
		"--log-level", "loud")
	want := `hoprd: --log-level: unknown level "loud" (want debug, info, warn or error)` + "\n"
	if code != exitConfig || errOut != want {
		t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, errOut, want)
	}
	for _, level := range []string{"debug", "info", "warn", "error", "WARN"} {
		code, _, errOut := runOffline(t, "", "up", "-c", "/nonexistent/hoprd.toml",
			"--log-level", level)
		if code != exitConfig || !strings.Contains(errOut, "/nonexistent/hoprd.toml") {
			t.Errorf("--log-level %s: exit %d, stderr %q; want the level taken and the "+
				"missing config file reported", level, code, errOut)
		}
	}
	// Offsets, which slog would take, are not among the levels the flag names.
	code, _, errOut = runOffline(t, "", "up", "-c", "/nonexistent/hoprd.toml",
		"--log-level", "info+2")
	if code != exitConfig || !strings.Contains(errOut, "unknown level") {
		t.Errorf("--log-level info+2: exit %d, stderr %q", code, errOut)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runOffline(t, "", "--help")
	first, rest, _ := strings.Cut(out, "\n")
	if code != exitOK || !strings.HasPrefix(first, "A tunnel daemon: ") ||
		!strings.Contains(first, "key pair") || !strings.Contains(first, "hop") {
		t.Errorf("hoprd --help: exit %d, first line %q; want hoprd described", code, first)
	}
	if !strings.Contains(rest, "With a subcommand") ||
		!strings.Contains(rest, "With an interface name") {
		t.Errorf("hoprd --help does not describe both modes:\n%s", out)
	}

	code, out, _ = runOffline(t, "", "up", "--help")
	oneLine := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"On SIGINT, SIGTERM or SIGHUP", "exits with status 0",
		"SIGHUP is not a reload"} {
		if code != exitOK || !strings.Contains(oneLine, want) {
			t.Errorf("hoprd up --help: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
	code, out, _ = runOffline(t, "", "help")
	if code != exitOK || !strings.Contains(out, "until SIGINT, SIGTERM or SIGHUP") {
		t.Errorf("hoprd help: exit %d, up's summary lacks SIGHUP:\n%s", code, out)
	}
}

// TestControlSocketHint takes a control socket's name twice, as a second
// daemon with the same interface name would.
func TestControlSocketHint(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	status := func() device.Status { return device.Status{} }
	first, err := control.Listen(dir, "hop0", status, log)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := control.Listen(dir, "hop0", status, log)
	if err == nil {
		second.Close()
		t.Fatal("a second control socket of the same name was served")
	}
	got := controlSocketHint(err)
	if !errors.Is(got, err) || !strings.HasPrefix(got.Error(), err.Error()+"; ") ||
		!strings.Contains(got.Error(), "another interface name, or its own --run-dir, "+
			"--state-dir and --wg-dir") {
		t.Errorf("hint for %q: %q", err, got)
	}
	other := errors.New("create run directory: permission denied")
	if got := controlSocketHint(other); got != other {
		t.Errorf("hint for %q: %q, want the error as it is", other, got)
	}
}
