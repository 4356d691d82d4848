package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestScanLines(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want map[string]int // key path -> line, as lineOf finds it
	}{
		{"tables and keys", doc(
			`# comment [not] a = "table"`,
			`[interface]`,
			`name = "hop0" # trailing [comment]`,
			``,
			`[[peer]]`,
			`name = "a"`,
			`[[peer]]`,
			`  name   =   "b"`,
			`mode="hop"`,
		), map[string]int{
			"interface": 2, "interface.name": 3,
			"peer[1]": 5, "peer[1].name": 6,
			"peer[2]": 7, "peer[2].name": 8, "peer[2].mode": 9,
		}},
		{"multi-line strings hide keys", doc(
			`[interface]`,
			`name = """`,
			`mtu = 1`,
			`[[peer]]`,
			`"""`,
			`private_key_file = '''`,
			`x = """ '''`,
			`mtu = 2`,
			`bad = """quote "" inside and at the end"""""`,
			`hop_interval = "\"mtu = 3"`,
			`listen_port = 'C:\path'`,
		), map[string]int{
			"interface.name": 2, "interface.private_key_file": 6, "interface.mtu": 8,
			"interface.bad": 9, "interface.hop_interval": 10, "interface.listen_port": 11,
		}},
		{"arrays over several lines", doc(
			`[interface]`,
			`address = [ # first`,
			`  "a", # [x]`,
			``,
			`  "b",`,
			`  [ "c", "d" ],`,
			`]`,
			`mtu = 1`,
		), map[string]int{
			"interface.address": 2, "interface.address[1]": 3, "interface.address[2]": 5,
			"interface.address[3]": 6, "interface.address[3][2]": 6, "interface.mtu": 8,
		}},
		{"dotted and quoted keys", doc(
			`interface.name = "hop0"`,
			`"interface" . 'mtu' = 1`,
			`[peer."my key"]`,
			`"a b" = 1`,
			`[[ peer . sub ]]`,
		), map[string]int{
			"interface": 1, "interface.name": 1, "interface.mtu": 2,
			`peer."my key"`: 3, `peer."my key"."a b"`: 4, "peer.sub[1]": 5,
		}},
		{"inline tables", doc(
			`peer = [`,
			`  { name = "a", allowed_ips = ["x", "y"] },`,
			`  { name = "b",`,
			`    mode = "hop" },`,
			`]`,
			`interface = { name = "hop0" }`,
		), map[string]int{
			"peer": 1, "peer[1]": 2, "peer[1].name": 2, "peer[1].allowed_ips[2]": 2,
			"peer[2].name": 3, "peer[2].mode": 4, "interface.name": 6,
		}},
		{"subtable of an array element", doc(
			`[[peer]]`,
			`[[peer]]`,
			`[peer.extra]`,
			`k = 1`,
		), map[string]int{"peer[2].extra": 3, "peer[2].extra.k": 4}},
		{"datetimes and numbers", doc(
			`a = 1979-05-27 07:32:00Z`,
			`b = [1979-05-27 07:32:00, 2, +inf]`,
			`c = 1_000`,
		), map[string]int{"a": 1, "b": 2, "b[3]": 2, "c": 3}},
		{"CRLF line ends", "[interface]\r\nname = \"x\"\r\n\r\nmtu = 1\r\n",
			map[string]int{"interface": 1, "interface.name": 2, "interface.mtu": 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if _, err := toml.Decode(tc.doc, &m); err != nil {
				t.Fatalf("test document is not valid TOML: %v", err)
			}
			got, tooDeep := scanLines([]byte(tc.doc))
			if tooDeep != 0 {
				t.Errorf("scanner stopped on line %d", tooDeep)
			}
			for k, line := range tc.want {
				if n := lineOf(got, k); n != line {
					t.Errorf("line of %s = %d, want %d", k, n, line)
				}
			}
		})
	}
}

func TestLineOfFallsBackToInnerKeys(t *testing.T) {
	lines := map[string]int{"peer[2].extra.k": 9, "peer[2].extra.j": 7, "peerx": 1}
	tests := []struct {
		key  string
		want int
	}{
		{"peer[2].extra.k", 9},
		{"peer[2].extra", 7},
		{"peer[2]", 7},
		{"peer", 7},
		{"pee", 0},
		{"interface", 0},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if got := lineOf(lines, tc.key); got != tc.want {
				t.Errorf("lineOf(%q) = %d, want %d", tc.key, got, tc.want)
			}
		})
	}
}

func TestScanLinesStopsAtDeepNesting(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		line int // where the scanner stops, 0 for not at all
	}{
		{"arrays at the limit", "a = 1\nb = " + strings.Repeat("[", maxNesting) +
			strings.Repeat("]", maxNesting) + "\n", 0},
		{"arrays past the limit", "a = 1\nb = " + strings.Repeat("[", maxNesting+1) +
			strings.Repeat("]", maxNesting+1) + "\nc = 2\n", 2},
		{"inline tables past the limit", "a = 1\n\nb = " +
			strings.Repeat("{x=", maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1), 3},
		{"dotted key at the limit", strings.Repeat("a.", maxKeyParts-1) + "a = 1\n", 0},
		{"dotted key past the limit", "\n" + strings.Repeat("a.", maxKeyParts) + "a = 1\n", 2},
		{"header past the limit", "[" + strings.Repeat("a.", maxKeyParts) + "a]\n", 1},
		{"brackets in strings do not count",
			`s = "` + strings.Repeat("[", 100) + `"` + "\n", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines, tooDeep := scanLines([]byte(tc.doc))
			if tooDeep != tc.line {
				t.Errorf("stopped on line %d, want %d", tooDeep, tc.line)
			}
			if lines["a"] != 1 && strings.HasPrefix(tc.doc, "a = 1") {
				t.Errorf("lost the line of a key before the deep one: %v", lines)
			}
		})
	}
}

// TestParseDeepNestingIsQuick guards against the decoder's slowness on
// deep documents, which takes it minutes at this depth.
func TestParseDeepNestingIsQuick(t *testing.T) {
	docs := []string{
		"a = " + strings.Repeat("{b=", 16000) + "1" + strings.Repeat("}", 16000) + "\n",
		strings.Repeat("a.", 16000) + "a = 1\n",
	}
	for _, d := range docs {
		start := time.Now()
		_, err := Parse([]byte(d), "deep.toml")
		var e *Error
		if !errors.As(err, &e) || e.Line != 1 || !strings.Contains(e.Msg, "nested too deeply") {
			t.Errorf("Parse = %v, want a nesting error on line 1", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Parse took %v", d)
		}
	}
}
