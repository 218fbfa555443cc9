package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// version and commit are set at build time with
// -ldflags "-X main.version=… -X main.commit=…" (see the Makefile).
var version, commit = "", ""

// versionInfo is what "ackprobe version" reports.
type versionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	Go         string `json:"go"`
	NatsGo     string `json:"nats_go"`
	NatsServer string `json:"nats_server"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: version, Commit: "unknown", Go: runtime.Version(), NatsGo: nats.Version, NatsServer: server.VERSION}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				v.Commit = kv.Value[:12]
			}
		}
	}
	if commit != "" {
		v.Commit = commit
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}

func newVersionCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ackprobe's version and the nats.go and nats-server versions it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			if json, _ := cmd.Flags().GetBool("json"); json {
				return writeJSON(s.stdout, v)
			}
			_, err := fmt.Fprint(s.stdout, versionText(v))
			return err
		},
	}
}

// versionText is what "ackprobe version" and "ackprobe --version" print.
func versionText(v versionInfo) string {
	return fmt.Sprintf("ackprobe %s (commit %s, %s)\nnats.go %s\nnats-server %s (embedded)\n",
		v.Version, v.Commit, v.Go, v.NatsGo, v.NatsServer)
}
