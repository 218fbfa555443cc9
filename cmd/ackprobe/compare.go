package main

import (
	"github.com/spf13/cobra"

	"github.com/ackprobe/ackprobe/internal/probe"
)

const compareLong = `Probe standard acks and confirmed acks on the same consumer, side by side.

With --count 1 (the default) this is the classic scenario: a stream holding two
probe messages and one pull consumer with explicit acks. The first message is
acked with a standard ack (Msg.Ack), the second with a confirmed ack
(Msg.DoubleAck). The consumer's state (pending, ack pending) is read from the
server at start, after receiving and right after acking, for each mode in turn.

With --count N each mode acks N messages of its own on the same consumer, one
mode after the other; a mode starts only once the previous mode's acks show in
the consumer's state, so neither disturbs the other's figures.`

func newCompareCmd(g *globalOptions, s streams, runF func(*probeRun) error) *cobra.Command {
	modes := func() ([]probe.Mode, error) { return []probe.Mode{probe.Standard, probe.Confirmed}, nil }
	return newProbeCmd("compare", "Standard and confirmed acks side by side", compareLong, g, s, modes, nil, runF)
}
