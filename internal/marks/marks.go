// Package marks names the metadata that marks streams and consumers as
// ackprobe's own. ackprobe uses, changes and deletes only what carries the
// owner mark; inspect shows the marks.
package marks

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
