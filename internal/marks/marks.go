// Package marks names the metadata that marks streams and consumers as
// ackprobe's own. ackprobe uses, changes and deletes only what carries the
// owner mark; inspect shows the marks.
package marks

import "time"

// Metadata keys written on every stream and consumer ackprobe creates.
const (
	// Owner is "ackprobe" on everything ackprobe created.
	Owner = "io.ackprobe.owner"
	// Run is the id of the run (or canary) that created it.
	Run = "io.ackprobe.run"
	// Subject is a probe stream's probe subject.
	Subject = "io.ackprobe.subject"
	// Created is the creation time, RFC 3339 in UTC.
	Created = "io.ackprobe.created"
	// Keep is "true" on what a run kept on purpose (--keep) for later runs.
	Keep = "io.ackprobe.keep"

	// OwnerValue is the value of Owner.
	OwnerValue = "ackprobe"
)

// Owned reports whether stream or consumer metadata carries ackprobe's mark.
func Owned(meta map[string]string) bool { return meta[Owner] == OwnerValue }

// Kept reports what a run kept on purpose (--keep) for later runs.
func Kept(meta map[string]string) bool { return meta[Keep] == "true" }

// CreatedAt is the creation time the Created mark records, or fallback
// (the server's own creation time) when it has none.
func CreatedAt(meta map[string]string, fallback time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339, meta[Created]); err == nil {
		return t
	}
	return fallback
}

// OrphanAfter is how long an ackprobe stream that nobody uses any more is
// left alone before it is called an orphan: longer than any run, and than
// a canary's interval, is idle.
const OrphanAfter = time.Hour

// Orphan reports a stream ackprobe created whose run is over: not kept on
// purpose, created at least OrphanAfter ago, and without a delivery or an
// ack (lastActive, zero for none) for as long.
func Orphan(meta map[string]string, created, lastActive, now time.Time) bool {
	return Owned(meta) && !Kept(meta) &&
		now.Sub(CreatedAt(meta, created)) >= OrphanAfter &&
		(lastActive.IsZero() || now.Sub(lastActive) >= OrphanAfter)
}
