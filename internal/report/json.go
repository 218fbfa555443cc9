package report

import (
	"encoding/json"
	"io"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// JSON writes v as one indented JSON document, with <, > and & as they
// are (subjects such as "ackprobe.>" stay readable).
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// FailureError is the "error" member of a failure document.
type FailureError struct {
	ExitCode int    `json:"exit_code"`
	Message  string `json:"message"`
}

// resultFailure is a failure document over a partial probe result: "ok"
// and "error" first, then the result's own members in their order ("ok"
// here hides the result's).
type resultFailure struct {
	OK    bool         `json:"ok"`
	Error FailureError `json:"error"`
	*probe.Result
}

// Failure writes the one JSON document of a run that could not run or
// finish: "ok": false and "error": {"exit_code", "message"}, then whatever
// partial held (a *probe.Result with the modes done so far and what was
// left behind, another document, or nil). Scripts piping --json into jq
// never get empty input.
func Failure(w io.Writer, partial any, code int, message string) error {
	fe := FailureError{ExitCode: code, Message: message}
	if res, ok := partial.(*probe.Result); ok && res != nil {
		return JSON(w, resultFailure{Error: fe, Result: res})
	}
	doc := map[string]any{}
	if partial != nil {
		if b, err := json.Marshal(partial); err == nil && string(b) != "null" {
			_ = json.Unmarshal(b, &doc)
		}
	}
	doc["ok"] = false
	doc["error"] = fe
	return JSON(w, doc)
}
