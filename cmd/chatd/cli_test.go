package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wschat/chat/internal/testdb"
	"github.com/wschat/chat/internal/testlog"
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

// TestNotReadyWhileStopping: from the first SIGTERM, /readyz answers 503 "not ready: the
// server is stopping" while the listener stays open for CHAT_SHUTDOWN_DELAY and serves the
// rest (/healthz on a new connection), so that a load balancer or a readiness probe takes the
// instance out before it refuses connections (it answered 200 until the listener closed). The
// server runs in a copy of this test binary with a delay of an hour; a second SIGTERM ends it.
func TestNotReadyWhileStopping(t *testing.T) {
	if os.Getenv("CHATD_STOPPING_CHILD") == "1" {
		if err := run(signalContext(), nil, os.Getenv, io.Discard, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "chatd:", err)
			os.Exit(1)
		}
		return
	}
	t.Parallel()
	addr := freeAddr(t)
	id := addr + "-" + testdb.RandomName("")
	cmd := exec.Command(os.Args[0], "-test.run=^TestNotReadyWhileStopping$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHAT_") { // the child's settings are these alone
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CHATD_STOPPING_CHILD=1", "CHAT_ADDR="+addr, "CHAT_DATA_DIR="+t.TempDir(),
		"CHAT_INSTANCE_ID="+id, "CHAT_PASSWORD_COST=test", "CHAT_LOG_LEVEL=warn", "CHAT_SHUTDOWN_DELAY=1h")
	var stderr testlog.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	// New connections only: an answer shows that the listener takes them.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: requestWait}
	get := func(path string) (int, string, error) {
		res, err := hc.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return res.StatusCode, string(body), err
	}
	// Up when its /metrics names it (see startWith).
	for deadline := time.Now().Add(180 * time.Second); ; {
		if status, body, _ := get("/metrics"); status == 200 && strings.Contains(body, `instance_id="`+id+`"`) {
			break
		}
		select {
		case <-done:
			t.Fatalf("chatd exited: %v\n%s", waitErr, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatd at %s did not come up\n%s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, body, err := get("/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz before the stop: %d %s %v, want 200", status, body, err)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(time.Minute); ; { // only a failure waits it out: the delay is an hour
		status, body, err := get("/readyz")
		if err != nil {
			t.Fatalf("/readyz once stopping: %v, want 503 while the listener is open\n%s", err, stderr.String())
		}
		if status == http.StatusServiceUnavailable {
			if !strings.Contains(body, `"not ready: the server is stopping"`) {
				t.Errorf("/readyz once stopping: %s, want the detail \"not ready: the server is stopping\"", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz a minute after SIGTERM: %d %s, want 503", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, body, err := get("/healthz"); status != http.StatusOK {
		t.Errorf("/healthz on a new connection during the delay: %d %s %v, want 200", status, body, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Error("a second SIGTERM did not end the delay")
	}
}
