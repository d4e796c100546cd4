package testdb

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// VersityGW is the S3-compatible server the tests use: Versity's gateway (Apache-2.0), which
// serves a local directory over the S3 API. It is a Go module; the test set-up (and .ci/run)
// installs it with `go install` when it is missing, about 4 minutes on a 2-core machine, once.
const VersityGW = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3Server is a running S3-compatible server of one test.
type S3Server struct {
	Endpoint  string // host:port, plain http
	AccessKey string
	SecretKey string
	stop      func()
}

// Stop stops the gateway before the test ends (a file store that has gone away).
func (s S3Server) Stop() { s.stop() }

// URL is a CHAT_FILES_URL for a bucket on the server.
func (s S3Server) URL(bucket string) string {
	return fmt.Sprintf("s3+http://%s:%s@%s/%s", s.AccessKey, s.SecretKey, s.Endpoint, bucket)
}

// S3 starts the gateway for the test on a free port over a fresh directory, and stops it when
// the test ends. Outside CI a gateway that cannot be installed or started skips the test; with
// CI=true it fails it.
func S3(t testing.TB) S3Server {
	t.Helper()
	bin, err := versityGW()
	if err != nil {
		Unavailable(t, "the S3-compatible gateway (versitygw)", err)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := S3Server{Endpoint: addr, AccessKey: "test" + RandomName("")[:8], SecretKey: RandomName("secret-")}
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "posix", "--sidecar", filepath.Join(dir, "meta"), filepath.Join(dir, "data"))
	os.MkdirAll(filepath.Join(dir, "meta"), 0o700)
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		Unavailable(t, "the S3-compatible gateway (versitygw)", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			<-exited
		})
	}
	t.Cleanup(s.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "versitygw.log"))
			Unavailable(t, "the S3-compatible gateway (versitygw)", fmt.Errorf("it exited: %s", log))
		default:
		}
		if time.Now().After(deadline) {
			Unavailable(t, "the S3-compatible gateway (versitygw)", fmt.Errorf("not listening on %s after 30 s", addr))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var installMu sync.Mutex

// versityGW finds the gateway's binary (on PATH or in GOPATH/bin), installing it when missing.
// A file lock keeps parallel test binaries from building it twice.
func versityGW() (string, error) {
	installMu.Lock()
	defer installMu.Unlock()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOPATH: %w", err)
	}
	gopath := strings.Split(strings.TrimSpace(string(out)), string(os.PathListSeparator))[0]
	bin := filepath.Join(gopath, "bin", "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "chat-versitygw-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil { // another process built it meanwhile
		return bin, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	// Built beside its place and renamed into it: whoever finds the file finds all of it.
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(bin), ".versitygw.")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", VersityGW)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOBIN="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v: %s", VersityGW, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return "", err
	}
	return bin, nil
}
