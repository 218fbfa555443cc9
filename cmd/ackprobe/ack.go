package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ackprobe/ackprobe/internal/probe"
)

const ackLong = `Probe one ack mode alone, with the same steps and measurements as compare.

  --mode standard    Msg.Ack: a publish that returns once buffered
  --mode confirmed   Msg.DoubleAck: a request answered once the server applied the ack`

func newAckCmd(g *globalOptions, s streams, runF func(*probeRun) error) *cobra.Command {
	var mode string
	modes := func() ([]probe.Mode, error) {
		m, err := probe.ParseMode(mode)
		if err != nil {
			return nil, usageErr("--mode: " + err.Error())
		}
		return []probe.Mode{m}, nil
	}
	extra := func(f *pflag.FlagSet) {
		f.StringVarP(&mode, "mode", "m", "confirmed", "ack mode: standard or confirmed")
	}
	return newProbeCmd("ack", "One ack mode alone: standard or confirmed", ackLong, g, s, modes, extra, runF)
}
