package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ackprobe/ackprobe/internal/inspect"
	"github.com/ackprobe/ackprobe/internal/report"
)

// inspect's output formats (--format).
const (
	formatText       = "text"
	formatJSON       = "json"
	formatNagios     = "nagios"
	formatPrometheus = "prometheus"
)

// resolveFormat reconciles --format with --json.
func (o *inspectOptions) resolveFormat() error {
	switch o.format {
	case "", formatText:
		o.format = formatText
		if o.g.json {
			o.format = formatJSON
		}
	case formatJSON, formatNagios, formatPrometheus:
		if o.g.json && o.format != formatJSON {
			f := o.format
			// Neither is reliable: report in text.
			o.format, o.g.json = formatText, false
			return usageErr(fmt.Sprintf("--json and --format %s disagree: give one", f))
		}
	default:
		f := o.format
		o.format = formatText
		return usageErr(fmt.Sprintf("--format %q: use text, json, nagios or prometheus", f))
	}
	return nil
}

// currentFormat is the format asked for so far, for reporting an error
// found while the command line is still being read.
func (o *inspectOptions) currentFormat() string {
	switch {
	case o.format == formatNagios || o.format == formatPrometheus || o.format == formatJSON:
		return o.format
	case o.g.json:
		return formatJSON
	}
	return formatText
}

// render writes one snapshot in the chosen format and returns the error
// that carries the format's exit code: errCheckFailed for a critical
// consumer in text and JSON, the Nagios code for nagios.
func (o *inspectOptions) render(s streams, snap *inspect.Snapshot, refresh int) error {
	view := snap.Select(o.sortBy, o.only)
	switch o.format {
	case formatJSON:
		if err := report.JSON(s.stdout, view); err != nil {
			return err
		}
	case formatNagios:
		// A check's status is the verdict over every consumer looked at,
		// like the exit code of the other formats: --only shapes lists,
		// it does not silence a warning.
		code, err := report.InspectNagios(s.stdout, snap.Select(o.sortBy, nil))
		if err != nil {
			return err
		}
		if code != report.NagiosOK {
			return &exitError{code: code}
		}
		return nil
	case formatPrometheus:
		// Like `nats server check --format prometheus`: the health is in
		// the metrics, and the run exits 0.
		return report.InspectPrometheus(s.stdout, view)
	default:
		if err := report.Inspect(s.stdout, view, report.InspectOptions{Color: colorOn(o.g, s), Width: s.width, Refresh: refresh}); err != nil {
			return err
		}
	}
	return inspectVerdict(snap)
}

func inspectVerdict(snap *inspect.Snapshot) error {
	if snap.Summary.Critical > 0 {
		return errCheckFailed
	}
	return nil
}

// exitError ends a run with its own exit code; whatever it had to say was
// already written.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// ExitCode is the code the process exits with.
func (e *exitError) ExitCode() int { return e.code }

// fail reports an error that stops inspect in the format asked for:
// under json one document {"ok": false, "error": {...}}, under nagios an
// UNKNOWN line (exit 3), under prometheus ackprobe_inspect_up 0; always
// also the one "ackprobe: " line on stderr. Check verdicts, interruptions
// and text output pass through to the common exit code mapping.
func (o *inspectOptions) fail(s streams, err error) error {
	var xe *exitError
	if err == nil || errors.Is(err, errCheckFailed) || errors.As(err, &xe) || errors.Is(err, context.Canceled) {
		return err
	}
	format := o.currentFormat()
	if format == formatText {
		return err
	}
	// Printed here, before the command's exit wraps err with the
	// connection's secrets: scrub them as that would.
	msg := oneLine(explain(&secretsError{err: err, scrub: o.g.conn.Scrub}))
	code := exitCannotRun
	switch format {
	case formatJSON:
		// The document every command prints for a run that could not
		// run; under --watch on one line, as each refresh's.
		if o.watch > 0 {
			_ = report.FailureLine(s.stdout, nil, code, msg)
		} else {
			_ = report.Failure(s.stdout, nil, code, msg)
		}
	case formatNagios:
		code = report.NagiosUnknown
		_ = report.InspectNagiosUnknown(s.stdout, inspect.Scope{Stream: o.stream, Consumer: o.consumer}, msg)
	case formatPrometheus:
		_ = report.InspectPrometheusDown(s.stdout)
	}
	fmt.Fprintln(s.stderr, "ackprobe: "+msg)
	return &exitError{code: code}
}
