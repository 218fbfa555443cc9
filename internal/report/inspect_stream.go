package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

// streamView is one stream's configuration, state and placement, and a
// table of its consumers.
func streamView(b *strings.Builder, snap *inspect.Snapshot, st *inspect.Stream, o InspectOptions, p palette) {
	fmt.Fprintf(b, "%s %s", p.bold.Sprint("Stream"), p.bold.Sprint(st.Name))
	switch {
	case st.Orphan:
		b.WriteString(p.warn.Sprint("  (created by ackprobe; its run is over: remove it with " + st.RemoveWith + ")"))
	case st.Ackprobe:
		b.WriteString(p.dim.Sprint("  (created by ackprobe)"))
	}
	b.WriteString("\n")
	k := &kv{b: b, p: p, width: o.Width}
	cfg := st.Config
	if cfg.Description != "" {
		k.add("description", cfg.Description)
	}
	if len(cfg.Subjects) > 0 {
		k.add("subjects", strings.Join(cfg.Subjects, ", "))
	}
	if cfg.Mirror != nil {
		k.add("mirror of", cfg.Mirror.Name)
	}
	if len(cfg.Sources) > 0 {
		var names []string
		for _, s := range cfg.Sources {
			if s != nil {
				names = append(names, s.Name)
			}
		}
		k.add("sources", strings.Join(names, ", "))
	}
	k.add("storage", fmt.Sprintf("%s, R%d, %s retention, discard %s", storageName(cfg.Storage), max(cfg.Replicas, 1), retentionName(cfg.Retention), discardName(cfg.Discard)))
	k.add("limits", fmt.Sprintf("messages %s, bytes %s, age %s, message size %s, per subject %s, consumers %s",
		limit(cfg.MaxMsgs, num[int64]), limit(cfg.MaxBytes, func(v int64) string { return humanize.IBytes(uint64(v)) }),
		limit(int64(cfg.MaxAge), func(v int64) string { return inspect.Short(time.Duration(v)) }),
		limit(int64(cfg.MaxMsgSize), func(v int64) string { return humanize.IBytes(uint64(v)) }),
		limit(cfg.MaxMsgsPerSubject, num[int64]), limit(int64(cfg.MaxConsumers), num[int64])))
	state := fmt.Sprintf("%s %s, %s", num(st.Messages), inspect.Plural(int(min(st.Messages, 2)), "message", "messages"), humanize.IBytes(st.Bytes))
	switch {
	case st.Messages > 0:
		state += fmt.Sprintf(", sequences %s–%s", num(st.FirstSeq), num(st.LastSeq))
	case st.LastSeq > 0:
		state += fmt.Sprintf(", empty after sequence %s", num(st.LastSeq))
	}
	if st.NumDeleted > 0 {
		state += fmt.Sprintf(", %s deleted", num(st.NumDeleted))
	}
	if st.LastAge != nil {
		state += fmt.Sprintf(", last message %s ago", inspect.Short(time.Duration(*st.LastAge)))
	}
	if d := st.Delta; d != nil {
		state += fmt.Sprintf(", %s since the last refresh", p.delta(d.Messages))
		if d.StoredPerSec > 0 {
			state += fmt.Sprintf(" (%s stored)", rate(d.StoredPerSec))
		}
	}
	k.add("state", state)
	k.add("created", timeAndAge(st.Created, st.TimeStamp))
	if st.Cluster != nil {
		k.add("cluster", clusterLine(st.Cluster, st.TimeStamp, p))
	}
	if m := metadataLine(cfg.Metadata); m != "" {
		k.add("metadata", m)
	}
	k.flush()
	b.WriteString("\n")

	if len(st.Consumers) == 0 {
		if st.HiddenConsumers > 0 && snap.Selection != nil && snap.Selection.Only != nil {
			fmt.Fprintf(b, "No consumer of this stream at %s or worse.\n", snap.Selection.Only)
		} else {
			b.WriteString("No consumers on this stream.\n")
		}
	} else {
		watching := false
		for _, c := range st.Consumers {
			watching = watching || c.Delta != nil
		}
		b.WriteString(consumerTable([]inspect.Stream{*st}, false, watching, o.Width, p) + "\n")
	}
	b.WriteString("\n")
	missing(b, st.MissingConsumers, "consumer", o.Width, p)
	watchNotes(b, snap, o.Width, p)
	reasons(b, []inspect.Stream{*st}, false, o.Width, p)
	verdictLine(b, snap, o.Width, p)
}
