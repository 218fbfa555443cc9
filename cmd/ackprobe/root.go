package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ackprobe/ackprobe/internal/connect"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	conn    connect.Options
	json    bool
	noColor bool
	getenv  func(string) string
	// flags are the persistent flags, to tell a flag given from its
	// environment default.
	flags *pflag.FlagSet
	// envErr is an environment variable that could not be read (an
	// invalid NATS_TIMEOUT): reported when the command connects.
	envErr error
}

const rootLong = `ackprobe shows, measures and proves how JetStream acknowledgements behave.

A standard ack (Msg.Ack) is fire-and-forget: it returns once buffered, and the
server may not have applied it yet. A confirmed ack (Msg.DoubleAck) waits for
the server to confirm it applied the ack. ackprobe reads the consumer's state
back from the server to show the difference, and measures it.

With no server, URL or context given, ackprobe starts an embedded nats-server
with JetStream (temporary store, random loopback port) and probes that.

EXIT STATUS
  0    the probe ran and every check held
  1    the probe ran and a check failed
  2    it could not run or finish: bad flags, cannot connect, auth or
       permission denied, JetStream unavailable, an account limit, unknown
       stream or consumer, a consumer that is not ackprobe's, the server went
       away during the run; or the run left something on the server it could
       not remove (its result is printed first, then what to run)
  130  interrupted (Ctrl-C); what the probe created is cleaned up first`

// newRootCmd builds the command tree. runF, when not nil, replaces the
// probe run of compare and ack (tests capture the parsed flags with it).
func newRootCmd(s streams, runF func(*probeRun) error) *cobra.Command {
	g := &globalOptions{getenv: s.getenv}
	root := &cobra.Command{
		Use:           "ackprobe",
		Short:         "See, measure and prove how JetStream acks behave",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version, as cobra gives it: the same text as "ackprobe version".
		Version: buildVersion().Version,
	}
	root.SetVersionTemplate(versionText(buildVersion()))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(flagError(err)) })
	addConnFlags(root.PersistentFlags(), g, s.getenv)
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print one JSON document on stdout instead of tables")
	root.PersistentFlags().BoolVar(&g.noColor, "no-color", false, "no colors (also off when stdout is not a terminal, NO_COLOR is set or TERM=dumb; FORCE_COLOR=1 turns them on when piped)")

	root.AddCommand(
		newCompareCmd(g, s, runF),
		newAckCmd(g, s, runF),
		newInspectCmd(g, s, nil),
		newCleanupCmd(g, s),
		newCanaryCmd(g, s, nil),
		newVersionCmd(s),
	)
	g.flags = root.PersistentFlags()
	strictCompletion(root)
	scrubErrors(root, g)
	return root
}

// strictCompletion makes "ackprobe completion <shell>" refuse a shell cobra
// has no script for (exit 2) instead of printing help and exiting 0.
func strictCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		var shells []string
		for _, sh := range c.Commands() {
			shells = append(shells, sh.Name())
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return usageErr(fmt.Sprintf("completion: no script for shell %q; use one of %s", args[0], strings.Join(shells, ", ")))
		}
	}
}

// flagError says in plain words what is wrong with a flag's value; pflag
// says it in Go's ("strconv.ParseInt: parsing ...: invalid syntax").
func flagError(err error) string {
	var ive *pflag.InvalidValueError
	if !errors.As(err, &ive) {
		return err.Error()
	}
	f := ive.GetFlag()
	name := "--" + f.Name
	if f.Shorthand != "" {
		name = "-" + f.Shorthand + "/" + name
	}
	what := "is not valid"
	switch f.Value.Type() {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		what = "is not a whole number"
	case "float32", "float64":
		what = "is not a number"
	case "duration":
		what = "is not a duration (such as 500ms, 5s, 2m)"
	case "bool":
		what = "is not true or false"
	default:
		if cause := errors.Unwrap(ive); cause != nil {
			what = "is not valid: " + cause.Error()
		}
	}
	return fmt.Sprintf("%s %q %s", name, ive.GetValue(), what)
}

// scrubErrors makes every command's error carry the connection's secrets,
// so that the one line printed for it never shows them (see explain).
func scrubErrors(root *cobra.Command, g *globalOptions) {
	for _, c := range root.Commands() {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				err := run(cmd, args)
				if err == nil || errors.Is(err, errCheckFailed) {
					return err
				}
				return &secretsError{err: err, scrub: g.conn.Scrub}
			}
		}
	}
}

// addConnFlags declares the connection flags with the nats CLI's names and
// environment variables.
func addConnFlags(f *pflag.FlagSet, g *globalOptions, getenv func(string) string) {
	c := &g.conn
	f.StringVarP(&c.Servers, "server", "s", getenv("NATS_URL"), "NATS server URLs, comma separated (NATS_URL); none: an embedded server")
	f.BoolVar(&c.Embedded, "embedded", false, "start an embedded server even when NATS_URL or a context is set")
	f.StringVar(&c.Context, "context", getenv("NATS_CONTEXT"), "nats CLI context name, or a path to a context .json file (NATS_CONTEXT); default: the selected one when no server is given")
	f.StringVar(&c.Creds, "creds", getenv("NATS_CREDS"), "user credentials file (NATS_CREDS)")
	f.StringVar(&c.NKey, "nkey", getenv("NATS_NKEY"), "user NKey seed file (NATS_NKEY)")
	f.StringVar(&c.User, "user", getenv("NATS_USER"), "username or token (NATS_USER)")
	f.StringVar(&c.Password, "password", getenv("NATS_PASSWORD"), "password (NATS_PASSWORD)")
	f.StringVar(&c.Token, "token", getenv("NATS_TOKEN"), "authentication token (NATS_TOKEN)")
	f.StringVar(&c.TLSCert, "tlscert", getenv("NATS_CERT"), "TLS client certificate file (NATS_CERT)")
	f.StringVar(&c.TLSKey, "tlskey", getenv("NATS_KEY"), "TLS client key file (NATS_KEY)")
	f.StringVar(&c.TLSCA, "tlsca", getenv("NATS_CA"), "TLS certificate authority file (NATS_CA)")
	f.BoolVar(&c.TLSFirst, "tlsfirst", false, "perform the TLS handshake before the server's INFO")
	f.StringVar(&c.JSDomain, "js-domain", getenv("NATS_JS_DOMAIN"), "JetStream domain (NATS_JS_DOMAIN)")
	f.StringVar(&c.APIPrefix, "js-api-prefix", "", "subject prefix of the JetStream API, for JetStream imported from another account (default $JS.API)")
	f.StringVar(&c.InboxPrefix, "inbox-prefix", "", "prefix of every reply subject ackprobe uses, for accounts that may not subscribe to _INBOX.> (default _INBOX)")
	f.BoolVar(&c.NoContext, "no-context", false, "ignore the selected nats context (and NATS_CONTEXT)")
	f.StringVar(&c.Name, "connection-name", "ackprobe", "connection name shown by the server")
	// --help shows a flag's default, here taken from the environment:
	// never a secret.
	for _, name := range []string{"password", "token", "user"} {
		f.Lookup(name).DefValue = ""
	}
	f.Lookup("server").DefValue = connect.Redact(c.Servers)
	if connect.LooksLikeSeed(c.NKey) {
		f.Lookup("nkey").DefValue = ""
	}
	timeout := 5 * time.Second
	if v := getenv("NATS_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err == nil && d > 0 {
			timeout = d
		} else {
			g.envErr = usageErr(fmt.Sprintf("NATS_TIMEOUT=%q is not a positive duration (such as 5s): fix or unset it, or pass --timeout", v))
		}
	}
	f.DurationVar(&c.Timeout, "timeout", timeout, "time limit of every request to the server (NATS_TIMEOUT)")
}

// validateConn applies a nats CLI context and checks the connection
// flags before dialing.
func validateConn(g *globalOptions) error {
	getenv := g.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if g.envErr != nil && (g.flags == nil || !g.flags.Changed("timeout")) {
		return g.envErr
	}
	if g.conn.NoContext && g.flags != nil && g.flags.Changed("context") {
		return usageErr("--context and --no-context contradict each other: pass one")
	}
	if err := g.conn.ApplyContext(connect.ConfigDir(getenv)); err != nil {
		return err
	}
	if err := checkPrefixes(g.conn); err != nil {
		return err
	}
	if g.conn.Timeout <= 0 {
		return usageErr(fmt.Sprintf("--timeout must be positive, got %s", g.conn.Timeout))
	}
	if err := checkFiles(g.conn); err != nil {
		return err
	}
	if g.conn.UsesEmbedded() {
		return nil
	}
	for _, u := range strings.Split(g.conn.Servers, ",") {
		if err := checkURL(strings.TrimSpace(u)); err != nil {
			return err
		}
	}
	return nil
}

// colorOn decides once whether stdout gets colors.
func colorOn(g *globalOptions, s streams) bool {
	switch {
	case g.noColor, s.getenv("NO_COLOR") != "", s.getenv("TERM") == "dumb":
		return false
	case s.getenv("FORCE_COLOR") != "" && s.getenv("FORCE_COLOR") != "0":
		return true
	}
	return s.stdoutTTY
}
