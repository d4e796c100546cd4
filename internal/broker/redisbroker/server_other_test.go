//go:build !linux

package redisbroker_test

import "os/exec"

// bindToTest does nothing where there is no parent-death signal: a test binary that dies
// without its cleanups leaves its server running.
func bindToTest(*exec.Cmd) {}
