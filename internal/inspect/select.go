package inspect

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Sort orders for Select, as --sort names them.
const (
	SortName        = "name"
	SortPending     = "pending"
	SortAckPending  = "ack-pending"
	SortRedelivered = "redelivered"
	SortHealth      = "health"
)

// SortOrders are the orders Select accepts.
var SortOrders = []string{SortName, SortPending, SortAckPending, SortRedelivered, SortHealth}

// Selection records what Select kept.
type Selection struct {
	// Sort is the order of consumers (and of streams, by their first
	// consumer in that order); "name" is the server's own, by name.
	Sort string `json:"sort"`
	// Only is the least status kept: "warn" keeps warn and critical.
	Only *Status `json:"only,omitempty"`
	// Shown and Hidden count the consumers kept and left out.
	Shown  int `json:"shown"`
	Hidden int `json:"hidden"`
}

// ParseSort checks a --sort value.
func ParseSort(s string) (string, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return SortName, nil
	}
	if s == "ackpending" || s == "ack_pending" {
		s = SortAckPending
	}
	if !slices.Contains(SortOrders, s) {
		return "", fmt.Errorf("--sort %q: use one of %s", s, strings.Join(SortOrders, ", "))
	}
	return s, nil
}

// ParseOnly reads a --only value: "warn" (warn and critical) or
// "critical"; "" keeps everything.
func ParseOnly(s string) (*Status, error) {
	switch strings.TrimSpace(strings.ToLower(s)) {
	case "":
		return nil, nil
	case "warn", "warning":
		st := Warn
		return &st, nil
	case "critical", "crit":
		st := Critical
		return &st, nil
	}
	return nil, fmt.Errorf("--only %q: use warn (warn and critical) or critical", s)
}

// Select returns a view of the snapshot that keeps the consumers at or
// above only (all when nil), drops the streams left with none to show when
// only is set (but not the one stream asked for), and orders consumers by
// sortBy, largest figure or worst health first, then by name; streams
// follow the order of their first consumer. Each stream counts the
// consumers it left out (HiddenConsumers), and the summary keeps counting
// everything the snapshot held. The snapshot itself is not changed.
func (s *Snapshot) Select(sortBy string, only *Status) *Snapshot {
	view := *s
	s = &view
	sel := &Selection{Sort: sortBy, Only: only}
	key := func(c *Consumer) float64 {
		switch sortBy {
		case SortPending:
			return float64(c.NumPending)
		case SortAckPending:
			return float64(c.NumAckPending)
		case SortRedelivered:
			return float64(c.NumRedelivered)
		case SortHealth:
			return float64(c.Health.Status)*1e6 + float64(len(c.Health.Reasons))
		}
		return 0
	}
	byKey := func(a, b *Consumer) int {
		if c := cmp.Compare(key(b), key(a)); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	}
	kept := make([]Stream, 0, len(s.Streams))
	for _, st := range s.Streams {
		cs := make([]Consumer, 0, len(st.Consumers))
		for _, c := range st.Consumers {
			if only != nil && c.Health.Status < *only {
				sel.Hidden++
				continue
			}
			cs = append(cs, c)
		}
		st.HiddenConsumers += len(st.Consumers) - len(cs)
		st.Consumers = cs
		sel.Shown += len(cs)
		if sortBy != SortName {
			slices.SortStableFunc(st.Consumers, func(a, b Consumer) int { return byKey(&a, &b) })
		}
		// The stream view of the one stream asked for says that none of
		// its consumers is at that status.
		asked := s.Scope.Stream == st.Name && s.Scope.Consumer == ""
		if only != nil && len(st.Consumers) == 0 && !asked {
			continue
		}
		kept = append(kept, st)
	}
	s.Streams = kept
	if sortBy != SortName {
		slices.SortStableFunc(s.Streams, func(a, b Stream) int {
			switch {
			case len(a.Consumers) == 0 && len(b.Consumers) == 0:
				return cmp.Compare(a.Name, b.Name)
			case len(a.Consumers) == 0:
				return 1
			case len(b.Consumers) == 0:
				return -1
			}
			return byKey(&a.Consumers[0], &b.Consumers[0])
		})
	}
	s.Selection = sel
	return s
}
