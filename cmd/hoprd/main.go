// Command hoprd is the hoprd daemon and its command-line interface.
//
// Each subcommand lives in a file of its own. The daemon runs under
// "hoprd up"; the other commands either work offline (genkey, pubkey,
// check, version) or are thin clients of the running daemon's control
// socket (status). "hoprd [-f] INTERFACE" runs an interface configured
// only through wg(8), as wg-quick's userspace implementation
// (userspace.go).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/hoprd/hoprd/config"
	"github.com/hoprd/hoprd/device/uapi"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1 // a runtime fault: the daemon could not start or failed
	exitConfig = 2 // a bad config file or bad command-line usage
)

// usageError marks an error as the user's (bad flags, bad config): the
// process exits with exitConfig.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// reportedError is an error the command has printed already: run only
// takes the exit code from it.
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }
func (e reportedError) Unwrap() error { return e.err }

// globalFlags are the flags every subcommand understands.
type globalFlags struct {
	runDir   string // where control sockets live
	stateDir string // where persistent state (timestamp high-water marks) lives
	wgDir    string // where wg(8) configuration sockets live; empty for none
}

// addFlags adds the directory flags to fs: the run directory always, the
// state and wg directories when daemon is set.
func (g *globalFlags) addFlags(fs *pflag.FlagSet, daemon bool) {
	fs.StringVar(&g.runDir, "run-dir", defaultRunDir, "directory of the daemons' control sockets")
	if !daemon {
		return
	}
	fs.StringVar(&g.stateDir, "state-dir", defaultStateDir, "directory of persistent daemon state")
	fs.StringVar(&g.wgDir, "wg-dir", uapi.SocketDir,
		"directory of the wg(8) configuration sockets (empty: serve none)")
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "hoprd",
		Short:         "hoprd: a tunnel daemon whose traffic keys hop on a schedule",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	g.addFlags(root.Flags(), true)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{err}
	})
	root.AddCommand(
		newGenkeyCmd(),
		newPubkeyCmd(),
		newCheckCmd(),
		newVersionCmd(),
		newUpCmd(g),
		newStatusCmd(g),
	)
	addUserspace(root, g)
	return root
}

const (
	defaultRunDir   = "/run/hoprd"
	defaultStateDir = "/var/lib/hoprd"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the process exit code.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	if !errors.As(err, new(reportedError)) {
		fmt.Fprintf(os.Stderr, "hoprd: %v\n", err)
	}
	var ue usageError
	if errors.As(err, &ue) || isUsageError(err) {
		return exitConfig
	}
	return exitError
}

// isUsageError reports whether err comes from a bad config file, which
// exits with exitConfig like bad usage does.
func isUsageError(err error) bool {
	var ce *config.Error
	return errors.As(err, &ce)
}
