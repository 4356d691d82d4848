package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/device/control"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type statusFlags struct {
	iface string
	json  bool
}

func newStatusCmd(g *globalFlags) *cobra.Command {
	f := &statusFlags{}
	cmd := &cobra.Command{
		Use:   "status [-i NAME] [--json]",
		Short: "Show the running daemon's interface and peers",
		Long: "Asks the daemon of an interface, over its control socket, for its state:\n" +
			"the interface's public key, port and addresses, and per peer the endpoint,\n" +
			"allowed IPs, last handshake, hop epoch and hops, bytes moved, drops by\n" +
			"reason and any problem. Needs root or the daemon's user.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.OutOrStdout(), g, f)
		},
	}
	cmd.Flags().StringVarP(&f.iface, "interface", "i", "",
		"interface name (may be left out when one daemon runs)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
	g.addFlags(cmd.Flags(), false)
	return cmd
}

func runStatus(w io.Writer, g *globalFlags, f *statusFlags) error {
	name := f.iface
	if name == "" {
		names, err := control.Running(g.runDir)
		if err != nil {
			return fmt.Errorf("list daemons: %w", err)
		}
		switch len(names) {
		case 0:
			return fmt.Errorf("%w: no control socket in %s", control.ErrNotRunning, g.runDir)
		case 1:
			name = names[0]
		default:
			return usageError{fmt.Errorf("several interfaces run (%s): choose one with -i",
				strings.Join(names, ", "))}
		}
	}
	path := control.SocketPath(g.runDir, name)
	st, err := control.Status(path)
	if errors.Is(err, control.ErrPermission) {
		return permissionProblem(path)
	}
	if err != nil {
		return err
	}
	if f.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(w, st, time.Now())
	return nil
}

// permissionProblem says why this user may not connect to the control socket
// at path: a directory on the way that it may not search (and then whether a
// socket is there at all cannot be told), or the socket itself, which is the
// daemon's.
func permissionProblem(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	for dir := range ancestors(filepath.Dir(abs)) {
		if unix.Access(dir, unix.X_OK) == nil {
			continue
		}
		return fmt.Errorf("%w: cannot search %s (%s), so cannot tell whether %s's "+
			"daemon runs: run as root or as the daemon's user", control.ErrPermission,
			dir, ownerMode(dir), strings.TrimSuffix(filepath.Base(abs), ".sock"))
	}
	return fmt.Errorf("%w: %s (%s) is the daemon's own: run as root or as its user",
		control.ErrPermission, abs, ownerMode(abs))
}

// ancestors yields the directories from the root down to dir, an absolute
// path, dir included.
func ancestors(dir string) iter.Seq[string] {
	return func(yield func(string) bool) {
		var chain []string
		for d := dir; ; d = filepath.Dir(d) {
			chain = append(chain, d)
			if d == filepath.Dir(d) {
				break
			}
		}
		for _, d := range slices.Backward(chain) {
			if !yield(d) {
				return
			}
		}
	}
}

// ownerMode describes the owner and mode of the file at path, for a message.
func ownerMode(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return "cannot stat it"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "mode " + fi.Mode().String()
	}
	return fmt.Sprintf("owner uid %d, gid %d, mode %s", st.Uid, st.Gid, fi.Mode())
}

// printStatus writes st as a readable table.
func printStatus(w io.Writer, st *device.Status, now time.Time) {
	in := st.Interface
	fmt.Fprintf(w, "interface: %s\n", in.Name)
	fmt.Fprintf(w, "  public key:   %s\n", in.PublicKey)
	fmt.Fprintf(w, "  listen port:  %d\n", in.ListenPort)
	fmt.Fprintf(w, "  addresses:    %s\n", joinPrefixes(in.Addresses))
	fmt.Fprintf(w, "  hop interval: %s\n", in.HopInterval)
	if len(st.Drops) > 0 {
		fmt.Fprintf(w, "  drops:        %s\n", formatDrops(st.Drops))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tMODE\tENDPOINT\tALLOWED IPS\tHANDSHAKE\tEPOCH\tHOPS\tRX\tTX")
	for _, p := range st.Peers {
		ep := "-"
		if p.Endpoint != nil {
			ep = *p.Endpoint
		}
		hsAgo := "never"
		if p.LastHandshake != nil {
			hsAgo = now.Sub(*p.LastHandshake).Round(time.Second).String() + " ago"
		}
		epoch := "-"
		if p.Epoch != nil {
			epoch = fmt.Sprint(*p.Epoch)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Name, p.Mode, ep,
			joinPrefixes(p.AllowedIPs), hsAgo, epoch, p.Hops, formatBytes(p.RxBytes),
			formatBytes(p.TxBytes))
	}
	tw.Flush()
	for _, p := range st.Peers {
		if p.Problem != "" {
			fmt.Fprintf(w, "%s: %s\n", p.Name, p.Problem)
		}
		if len(p.Drops) > 0 {
			fmt.Fprintf(w, "%s drops: %s\n", p.Name, formatDrops(p.Drops))
		}
		fmt.Fprintf(w, "%s public key: %s\n", p.Name, p.PublicKey)
	}
}

func joinPrefixes[T fmt.Stringer](ps []T) string {
	if len(ps) == 0 {
		return "-"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func formatDrops(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// formatBytes renders a byte count with a binary unit.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
