package natstest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the server process end when the test binary does,
// even when the test binary is killed before its cleanups run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
