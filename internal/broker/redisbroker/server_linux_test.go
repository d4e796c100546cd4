package redisbroker_test

import (
	"os/exec"
	"syscall"
)

// bindToTest has the kernel kill the server if the test binary dies without its cleanups (a
// -timeout panic, a killed go test), so that no test server outlives its test.
func bindToTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
