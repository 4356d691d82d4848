// Package scripts holds the tests of the shell scripts beside it that do
// not need root: here, the report of scripts/bench.sh, rendered from saved
// samples.
package scripts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// benchSamples are the lines "system round metric value" of a run of three
// rounds, chosen so that the medians of the figures and the medians of the
// per-round ratios tell different stories.
const benchSamples = `hop1s	1	tcp1	2.4
hop1s	2	tcp1	2.0
hop1s	3	tcp1	1.8
hop50ms	1	tcp1	2.3
hop50ms	2	tcp1	1.85
hop50ms	3	tcp1	1.75
wg	1	tcp1	1.5
wg	2	tcp1	2.1
wg	3	tcp1	1.6
hop1s	1	tcp4	1.0
hop1s	2	tcp4	1.0
hop1s	3	tcp4	1.0
wg	1	tcp4	1.1
wg	2	tcp4	0.9
wg	3	tcp4	1.2
hop1s	1	rtt_p50	0.4
hop1s	2	rtt_p50	0.5
hop1s	3	rtt_p50	0.45
wg	1	rtt_p50	0.6
wg	2	rtt_p50	0.4
wg	3	rtt_p50	0.6
`

// TestBenchReport renders the report of benchSamples and checks the table
// and each target's verdict, which is taken on the median of the per-round
// ratios, not on the ratio of the medians.
func TestBenchReport(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bench.sh needs bash: %v", err)
	}
	tsv := filepath.Join(t.TempDir(), "samples.tsv")
	if err := os.WriteFile(tsv, []byte(benchSamples), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "bench.sh")
	cmd.Env = append(os.Environ(), "REPORT="+tsv, "ROUNDS=3", "SCALE=0",
		"SYSTEMS=wg hop1s hop50ms")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench.sh REPORT=...: %v\n%s", err, out)
	}
	report := string(out)
	for _, want := range []string{
		"## Data path: medians of 3 rounds (ratio to wireguard-go)",
		"| TCP, 1 stream (Gbit/s) | 1.60 (1.00x) | 2.00 (1.25x) | 1.85 (1.16x) |",
		"| TCP, 4 streams (Gbit/s) | 1.10 (1.00x) | 1.00 (0.91x) | - |",
		"- TCP 1 stream, hop 1s >= wireguard-go: met (median ratio per round 1.125 >= 1;" +
			" in 2 of 3 rounds; medians 2 and 1.6)",
		// The medians alone (1.85 against 0.95 * 2.0) would miss this one.
		"- TCP 1 stream, hop 50ms within 5 % of hop 1s: met (median ratio per round" +
			" 0.958 >= 0.95; in 2 of 3 rounds; medians 1.85 and 2)",
		"- TCP 4 streams, hop 1s >= wireguard-go: MISSED (median ratio per round" +
			" 0.909 >= 1; in 1 of 3 rounds; medians 1 and 1.1)",
		"- TCP 4 streams, hop 50ms within 5 % of hop 1s: not measured",
		"- ping p50, hop 1s <= wireguard-go: met (median ratio per round 0.750 <= 1;" +
			" in 2 of 3 rounds; medians 0.45 and 0.6)",
	} {
		if !strings.Contains(report, want+"\n") {
			t.Errorf("report lacks %q\nreport:\n%s", want, report)
		}
	}
	if strings.Contains(report, "RSS at") {
		t.Errorf("SCALE=0 report has scale targets:\n%s", report)
	}
}

// TestBenchReportMissingFile checks that a report of samples that are not
// there fails, and says so.
func TestBenchReportMissingFile(t *testing.T) {
	cmd := exec.Command("bash", "bench.sh")
	cmd.Env = append(os.Environ(), "REPORT="+filepath.Join(t.TempDir(), "none.tsv"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("bench.sh with a missing REPORT file succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "no such readable file") {
		t.Errorf("output does not name the problem:\n%s", out)
	}
}

// TestBenchKnobs checks that bench.sh refuses each knob it cannot use,
// before it builds or creates anything, with exit code 2 and the knob's
// name.
func TestBenchKnobs(t *testing.T) {
	tests := []struct{ env, says string }{
		{"ROUNDS=0", "ROUNDS=0: want a whole number"},
		{"ROUNDS=abc", "ROUNDS=abc: want a whole number"},
		{"DURATION=-1", "DURATION=-1: want a whole number"},
		{"PEERS=1e4", "PEERS=1e4: want a whole number"},
		{"SCALE=yes", "SCALE=yes: want 0 (skip) or 1"},
		{"UDP_RATE=lots", "UDP_RATE=lots: want a rate"},
		{"SYSTEMS=veth bogus", "no system bogus"},
		{"SYSTEMS= ", "SYSTEMS is empty"},
		{"HOPRD=/nonexistent/hoprd", "HOPRD=/nonexistent/hoprd: no executable"},
		{"SYSTEMS=wg base", "HOPRD_BASE= is no executable"},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			cmd := exec.Command("bash", "bench.sh")
			cmd.Env = append(os.Environ(), tc.env, "HOPRD_BASE=")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("bench.sh with %s: %v, want exit code 2\n%s", tc.env, err, out)
			}
			if !strings.Contains(string(out), tc.says) {
				t.Errorf("bench.sh with %s says %q, want %q", tc.env, out, tc.says)
			}
		})
	}
}
