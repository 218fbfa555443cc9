// Package tooltest finds the external tools that some tests run (promtool,
// prometheus, helm): a test skips, saying how to install the tool, when it
// is missing on a developer's machine, and fails when it is missing in CI
// (CI set), where .ci/run installs every one of them.
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Path returns the path of the named tool. When it is not on PATH the test
// is skipped with install, the way to install it, or fails under CI.
func Path(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed, and CI must run this test: .ci/run installs it (%s)", name, install)
	}
	t.Skipf("%s is not installed (%s; .ci/run installs it): skipping", name, install)
	return ""
}
