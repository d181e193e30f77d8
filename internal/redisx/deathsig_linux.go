package redisx

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill redis-server when the Vigil process
// dies without calling Close (a crashed test, kill -9), so that no orphaned
// servers pile up on a developer machine or CI.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
