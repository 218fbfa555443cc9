// Package doc holds the building blocks that ackprobe's JSON documents share
// across commands: durations and the server a command reached.
package doc

import "time"

// Duration is a time.Duration that renders as a Go duration string in JSON
// ("1.5s"). Documents that carry one also carry the same figure as a number
// in a unit named in its key (elapsed_ms next to elapsed), for scripts.
type Duration time.Duration

// MarshalText renders d like time.Duration.String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// String renders d like time.Duration.String.
func (d Duration) String() string { return time.Duration(d).String() }

// Millis is d in milliseconds, rounded to the microsecond.
func (d Duration) Millis() float64 { return Millis(time.Duration(d)) }

// Millis is d in milliseconds, rounded to the microsecond: the number that
// stands beside a Duration under a key ending in _ms.
func Millis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// ServerInfo describes the server a command talked to, as the connection
// reported it (INFO from the server) plus how ackprobe reached it.
type ServerInfo struct {
	// URL is the URL connected to, with any user information redacted.
	URL      string `json:"url"`
	Name     string `json:"name,omitempty"`
	Version  string `json:"version"`
	Embedded bool   `json:"embedded"`
	Cluster  string `json:"cluster"`
	Domain   string `json:"domain,omitempty"`
	// Context is the nats CLI context used to connect, if any.
	Context string `json:"context,omitempty"`
}
