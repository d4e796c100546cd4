package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSmoke builds chatd, starts it embedded (SQLite, in-process broker) and runs the smoke
// scenario against it: a few seconds of tiny fanout and chats in which every send must be
// acknowledged and nothing lost, duplicated or reordered. It checks that the tool still works
// with the server; it never judges speed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts chatd")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "chatd")
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if out, err := exec.Command(goCmd, "build", "-o", bin, "../chatd").CombinedOutput(); err != nil {
		t.Fatalf("build chatd: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	srv := exec.Command(bin)
	srv.Env = append(os.Environ(), "CHAT_ADDR="+addr, "CHAT_DATA_DIR="+filepath.Join(dir, "data"),
		"CHAT_RATE_LIMITS=off", "CHAT_PASSWORD_COST=test", "CHAT_LOG_LEVEL=warn", "CHAT_DATABASE_URL=", "CHAT_REDIS_URL=")
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
		}
		if t.Failed() {
			t.Logf("chatd log:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatd did not become healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(dir, "smoke.json")
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"smoke", "-url", url, "-json", out, "-procs", ""}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("smoke: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var file struct {
		Results []struct {
			Name  string `json:"name"`
			Steps []struct {
				Name   string `json:"name"`
				Values []struct {
					Key   string  `json:"key"`
					Value float64 `json:"value"`
				} `json:"values"`
			} `json:"steps"`
		} `json:"results"`
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("results file: %v", err)
	}
	if len(file.Results) != 1 || len(file.Results[0].Steps) != 3 {
		t.Fatalf("results file has %d results, want smoke with 3 steps (fanout, chats, reactions)", len(file.Results))
	}
	for _, s := range file.Results[0].Steps {
		vals := map[string]float64{}
		for _, v := range s.Values {
			vals[v.Key] = v.Value
		}
		if vals["deliveries"] == 0 || vals["lost"] != 0 || vals["duplicated"] != 0 {
			t.Errorf("%s: deliveries %v, lost %v, duplicated %v", s.Name, vals["deliveries"], vals["lost"], vals["duplicated"])
		}
		// The send path, from the server's own metrics: every send was stored by some call.
		if strings.HasPrefix(s.Name, "fanout") && (vals["store_calls"] < 1 || vals["sends_per_call"] < 1 || vals["store_call_ms"] <= 0) {
			t.Errorf("fanout: store_calls %v, sends_per_call %v, store_call_ms %v: want the group commit's calls from /metrics",
				vals["store_calls"], vals["sends_per_call"], vals["store_call_ms"])
		}
	}
	svgs, _ := filepath.Glob(filepath.Join(dir, "smoke-*.svg"))
	if len(svgs) == 0 {
		t.Error("no chart written next to the results")
	}
	for _, f := range svgs {
		if b, _ := os.ReadFile(f); !strings.HasPrefix(string(b), "<svg") {
			t.Errorf("%s is not an SVG", f)
		}
	}
	fmt.Fprint(testWriter{t}, stdout.String())

	// -sender-urls: the sending devices, and only they, connect through the given URL (here a
	// TCP relay in front of the same server that counts its connections).
	relay, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	var relayed atomic.Int64
	go func() {
		for {
			c, err := relay.Accept()
			if err != nil {
				return
			}
			relayed.Add(1)
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	stdout.Reset()
	stderr.Reset()
	err = run(ctx, []string{"fanout", "-url", url, "-procs", "", "-m", "6", "-senders", "2", "-rate", "10", "-d", "1s",
		"-sender-urls", "http://" + relay.Addr().String()}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("fanout -sender-urls: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	// 2: the senders' (a sender that lost its socket on a busy machine comes back through it
	// too); 6 or more: the receivers' as well.
	if n := relayed.Load(); n < 2 || n >= 6 {
		t.Errorf("%d connections through the sender URL, want the 2 senders' only\n%s", n, stderr.String())
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(string(p))
	}
	return len(p), nil
}
