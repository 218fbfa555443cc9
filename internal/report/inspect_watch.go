package report

import (
	"github.com/ackprobe/ackprobe/internal/inspect"
)

func hasDeltas(snap *inspect.Snapshot) bool {
	for _, st := range snap.Streams {
		if st.Delta != nil {
			return true
		}
		for _, c := range st.Consumers {
			if c.Delta != nil {
				return true
			}
		}
	}
	return false
}

// withDelta appends the change since the previous refresh to a figure.
func withDelta[D any](s string, d *D, f func(*D) int64, p palette) string {
	if d == nil {
		return s
	}
	return s + " " + p.delta(f(d))
}
