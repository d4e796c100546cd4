package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalStopsAtOnce: the first SIGTERM starts the graceful stop, a second one ends
// the process at once, however long the stop would take (a second Ctrl-C was ignored). The
// stop runs in a copy of this test binary that never finishes stopping.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	if os.Getenv("CHATD_SIGNAL_CHILD") == "1" {
		ctx := signalContext()
		fmt.Println("up")
		<-ctx.Done()
		fmt.Println("stopping")
		time.Sleep(time.Hour) // a stop that takes too long
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondSignalStopsAtOnce$")
	cmd.Env = append(os.Environ(), "CHATD_SIGNAL_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	waitLine := func(want string) {
		t.Helper()
		for lines.Scan() {
			if lines.Text() == want {
				return
			}
		}
		cmd.Process.Kill()
		t.Fatalf("the child ended before it printed %q: %v", want, lines.Err())
	}
	waitLine("up")
	cmd.Process.Signal(syscall.SIGTERM)
	waitLine("stopping")
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() {
			t.Errorf("the child ended with %v, want killed by the second SIGTERM", err)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatal("a second SIGTERM did not end a stop that takes too long (a minute)")
	}
}

// TestVersion: `chatd version` prints the version; anything after it is an error, not
// ignored.
func TestVersion(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"version"}, func(string) string { return "" }, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "chatd ") {
		t.Errorf("chatd version: %q, %v; want the version", out.String(), err)
	}
	out.Reset()
	err := run(t.Context(), []string{"version", "extra"}, func(string) string { return "" }, &out, io.Discard)
	if err == nil || out.Len() > 0 {
		t.Errorf("chatd version extra: %q, %v; want an error and nothing printed", out.String(), err)
	}
}
