package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/jsm.go/monitor"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

// Nagios exit codes, as `nats server check` uses them.
const (
	NagiosOK       = 0
	NagiosWarning  = 1
	NagiosCritical = 2
	NagiosUnknown  = 3
)

// InspectNagios writes a snapshot as one Nagios plugin line in the style of
// `nats server check consumer`: jsm.go monitor's Result renders the
// status, the check name (STREAM_CONSUMER for one consumer, the stream's
// name for one stream, "JetStream" for the account), a Crit: or Warn: item
// per reason that fired, and the performance data. It returns the Nagios
// code of the status: 0 OK, 1 WARNING, 2 CRITICAL. The statuses are
// inspect's; this only renders them.
func InspectNagios(w io.Writer, snap *inspect.Snapshot) (int, error) {
	r := &monitor.Result{Check: "consumer", RenderFormat: monitor.NagiosFormat}
	one := snap.Scope.Consumer != "" && len(snap.Streams) == 1 && len(snap.Streams[0].Consumers) == 1
	switch {
	case one:
		st, c := &snap.Streams[0], &snap.Streams[0].Consumers[0]
		r.Name = st.Name + "_" + c.Name
		nagiosReasons(r, c, "")
		r.Pd(consumerPerfData(c)...)
	default:
		r.Name = "JetStream"
		if snap.Scope.Stream != "" {
			r.Name = snap.Scope.Stream
		}
		for i := range snap.Streams {
			st := &snap.Streams[i]
			for j := range st.Consumers {
				nagiosReasons(r, &st.Consumers[j], st.Name+"_"+st.Consumers[j].Name+": ")
			}
		}
		for _, m := range snap.Missing {
			r.Warnf("stream %s did not report: %s", m.Name, m.Reason)
		}
		s := snap.Summary
		r.Pd(
			&monitor.PerfDataItem{Name: "streams", Value: float64(s.Streams), Help: "Streams looked at"},
			&monitor.PerfDataItem{Name: "consumers", Value: float64(s.Consumers), Help: "Consumers looked at"},
			&monitor.PerfDataItem{Name: "consumers_ok", Value: float64(s.OK), Help: "Consumers whose health is ok"},
			&monitor.PerfDataItem{Name: "consumers_warn", Value: float64(s.Warn), Help: "Consumers whose health is warn"},
			&monitor.PerfDataItem{Name: "consumers_critical", Value: float64(s.Critical), Help: "Consumers whose health is critical"},
		)
	}
	_, err := fmt.Fprintln(w, r.String())
	switch r.Status {
	case monitor.CriticalStatus:
		return NagiosCritical, err
	case monitor.WarningStatus:
		return NagiosWarning, err
	case monitor.OKStatus:
		return NagiosOK, err
	}
	return NagiosUnknown, err
}

// InspectNagiosUnknown writes the UNKNOWN line of a check that could not
// run: "UNKNOWN <name> <message>".
func InspectNagiosUnknown(w io.Writer, scope inspect.Scope, msg string) error {
	name := "JetStream"
	switch {
	case scope.Consumer != "":
		name = scope.Stream + "_" + scope.Consumer
	case scope.Stream != "":
		name = scope.Stream
	}
	_, err := fmt.Fprintf(w, "%s %s %s\n", monitor.UnknownStatus, name, strings.ReplaceAll(msg, "|", "/"))
	return err
}

func nagiosReasons(r *monitor.Result, c *inspect.Consumer, prefix string) {
	for _, re := range c.Health.Reasons {
		// "|" starts the performance data in a Nagios line.
		msg := prefix + strings.ReplaceAll(re.Message, "|", "/")
		switch re.Status {
		case inspect.Critical:
			r.Critical(msg)
		case inspect.Warn:
			r.Warn(msg)
		}
	}
}

// consumerPerfData is `nats server check consumer`'s performance data for
// one consumer, with the same names, values and units (last_delivery and
// last_ack in seconds since delivered.last_active and
// ack_floor.last_active), each with the warn and critical thresholds that
// judged it, followed by ackprobe's additions under --watch.
func consumerPerfData(c *inspect.Consumer) []*monitor.PerfDataItem {
	var t inspect.Thresholds
	if c.Health.Thresholds != nil {
		t = *c.Health.Thresholds
	}
	pd := []*monitor.PerfDataItem{
		{Name: "ack_pending", Value: float64(c.NumAckPending), Help: "The number of messages waiting to be Acknowledged", Warn: float64(t.Warn.OutstandingAck), Crit: float64(t.Critical.OutstandingAck)},
		{Name: "pull_waiting", Value: float64(c.NumWaiting), Help: "The number of waiting Pull requests", Warn: float64(t.Warn.Waiting), Crit: float64(t.Critical.Waiting)},
		{Name: "pending", Value: float64(c.NumPending), Help: "The number of messages that have not yet been consumed", Warn: float64(t.Warn.Unprocessed), Crit: float64(t.Critical.Unprocessed)},
		{Name: "redelivered", Value: float64(c.NumRedelivered), Help: "The number of messages currently being redelivered", Warn: float64(t.Warn.Redelivery), Crit: float64(t.Critical.Redelivery)},
	}
	if c.Delivered.Age != nil {
		pd = append(pd, &monitor.PerfDataItem{Name: "last_delivery", Value: time.Duration(*c.Delivered.Age).Seconds(), Unit: "s", Help: "Seconds since the last message was delivered",
			Warn: t.Warn.LastDelivery.Seconds(), Crit: t.Critical.LastDelivery.Seconds()})
	}
	if c.AckFloor.Age != nil {
		pd = append(pd, &monitor.PerfDataItem{Name: "last_ack", Value: time.Duration(*c.AckFloor.Age).Seconds(), Unit: "s", Help: "Seconds since the ack floor last moved",
			Warn: t.Warn.LastAck.Seconds(), Crit: t.Critical.LastAck.Seconds()})
	}
	if c.Config.PriorityPolicy == jetstream.PriorityPolicyPinned {
		pinned := 0
		for _, g := range c.PriorityGroups {
			if g.PinnedClientID != "" {
				pinned++
			}
		}
		pd = append(pd, &monitor.PerfDataItem{Name: "pinned_groups", Value: float64(pinned), Help: "The number of consumers groups with pinned clients"},
			&monitor.PerfDataItem{Name: "groups", Value: float64(len(c.Config.PriorityGroups)), Help: "The total number of consumers groups"})
	}
	if d := c.Delta; d != nil && !d.Reset {
		pd = append(pd,
			&monitor.PerfDataItem{Name: "delivered_rate", Value: d.DeliveredPerSec, Help: "Deliveries per second in the interval"},
			&monitor.PerfDataItem{Name: "acked_rate", Value: d.AckedPerSec, Help: "Acks per second proven in the interval"},
			&monitor.PerfDataItem{Name: "redelivery_rate", Value: d.RedeliveriesPerSec, Help: "Redeliveries per second in the interval", Warn: t.Warn.RedeliveryStorm, Crit: t.Critical.RedeliveryStorm},
		)
		if ev := d.Events; ev != nil {
			pd = append(pd,
				&monitor.PerfDataItem{Name: "naks", Value: float64(ev.Naks), Help: "MSG_NAKED advisories in the interval", Warn: float64(t.Warn.NakStorm), Crit: float64(t.Critical.NakStorm)},
				&monitor.PerfDataItem{Name: "terminated", Value: float64(ev.Terminated), Help: "Client +TERM advisories in the interval", Warn: float64(t.Warn.Terminated), Crit: float64(t.Critical.Terminated)},
				&monitor.PerfDataItem{Name: "max_deliveries", Value: float64(ev.MaxDeliveries), Help: "MAX_DELIVERIES advisories in the interval", Warn: float64(t.Warn.MaxDeliverReached), Crit: float64(t.Critical.MaxDeliverReached)},
			)
		}
		if a := d.AckTimes; a != nil {
			pd = append(pd,
				&monitor.PerfDataItem{Name: "ack_time_p50", Value: time.Duration(a.P50).Seconds(), Unit: "s", Help: "Median sampled delivery to ack time"},
				&monitor.PerfDataItem{Name: "ack_time_p99", Value: time.Duration(a.P99).Seconds(), Unit: "s", Help: "99th percentile sampled delivery to ack time"},
			)
		}
	}
	return pd
}
