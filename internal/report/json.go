package report

import (
	"encoding/json"
	"io"
)

// JSON writes v as one indented JSON document.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// FailureError is the "error" member of a failure document.
type FailureError struct {
	ExitCode int    `json:"exit_code"`
	Message  string `json:"message"`
}

// Failure writes the one JSON document of a run that could not run or
// finish: whatever partial held (a *probe.Result with the modes done so
// far and what was left behind, or nil), with "ok": false and
// "error": {"exit_code", "message"}. Scripts piping --json into jq never
// get empty input.
func Failure(w io.Writer, partial any, code int, message string) error {
	doc := map[string]any{}
	if partial != nil {
		if b, err := json.Marshal(partial); err == nil && string(b) != "null" {
			_ = json.Unmarshal(b, &doc)
		}
	}
	doc["ok"] = false
	doc["error"] = FailureError{ExitCode: code, Message: message}
	return JSON(w, doc)
}
