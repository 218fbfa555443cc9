package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/jedib0t/go-pretty/v6/table"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

// streamView is one stream's configuration, state and placement, and a
// table of its consumers.
func streamView(b *strings.Builder, st *inspect.Stream, p palette) {
	fmt.Fprintf(b, "%s %s", p.bold.Sprint("Stream"), p.bold.Sprint(st.Name))
	if st.Ackprobe {
		b.WriteString(p.dim.Sprint("  (created by ackprobe)"))
	}
	b.WriteString("\n")
	k := &kv{b: b, p: p}
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
	if st.LastSeq > 0 {
		state += fmt.Sprintf(", sequences %s–%s", num(st.FirstSeq), num(st.LastSeq))
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
		b.WriteString("No consumers on this stream.\n")
	} else {
		watching := false
		for _, c := range st.Consumers {
			watching = watching || c.Delta != nil
		}
		t := newTable()
		head := table.Row{"Consumer", "Pending", "Ack Pending", "Redelivered", "Waiting", "Delivered", "Ack Floor"}
		right := []int{2, 3, 4, 5, 6, 7}
		if watching {
			head = append(head, "Delivered/s", "Acked/s")
			right = append(right, 8, 9)
		}
		t.AppendHeader(append(head, "Status", "Notes"))
		alignRight(t, right...)
		for i := range st.Consumers {
			row := consumerRow(&st.Consumers[i], watching, p)
			t.AppendRow(append(table.Row{row[1]}, row[4:]...))
		}
		b.WriteString(t.Render() + "\n")
	}
	b.WriteString("\n")
	missing(b, st.MissingConsumers, "consumer", p)
	reasons(b, []inspect.Stream{*st}, false, p)
	s := inspect.Summary{Streams: 1, Consumers: len(st.Consumers)}
	for _, c := range st.Consumers {
		switch c.Health.Status {
		case inspect.Critical:
			s.Critical++
		case inspect.Warn:
			s.Warn++
		default:
			s.OK++
		}
	}
	verdictLine(b, s, p)
}
