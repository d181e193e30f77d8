//go:build !linux

package redisx

import "os/exec"

// setDeathSignal is a no-op where Pdeathsig does not exist; Close still stops
// the server.
func setDeathSignal(*exec.Cmd) {}
