package failover_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/deploy"
)

// TestNginxRollingRestart: the committed nginx configuration in front of two instances that
// stop and start as in a rolling restart. nginx counts an instance down for fail_timeout after
// a refused connection, and counts it up again only when the first request it sends there
// afterwards is finished; a WebSocket finishes when it closes, hours later. So an instance
// that came back and took a WebSocket first stayed down for nginx, and when the other one
// then stopped, every request was answered 502 ("no live upstreams") while an instance was
// up and ready (a rolling restart of two instances under 200 clients: about 250 refused
// handshakes over 20 s, the clients back after 32 s instead of 6). Each instance is also a
// backup server that nginx never counts down: when no other is left, nginx tries those.
//
// The instances here are small stand-ins on the test's own addresses, which answer any
// request with 200 and a WebSocket handshake with 101, and hold it.
func TestNginxRollingRestart(t *testing.T) {
	nginxBin := need(t, "nginx", "apt-get install -y nginx", deploy.NginxBinary)
	a, b := startStandIn(t, freeAddr(t)), startStandIn(t, freeAddr(t))
	// One worker: nginx keeps the state of the upstreams per worker.
	p, n := startNginx(t, nginxBin, t.TempDir(), []string{a.addr, b.addr}, 1)
	base := "http://" + n.Listen
	waitHTTP(t, base+"/healthz", p, 10*time.Second)
	errorLog := filepath.Join(n.Prefix, "error.log")

	// b stops: nginx counts it down at the first request it cannot connect to it.
	b.stop()
	for i := 0; !downIn(errorLog, b.addr); i++ {
		if i == 20 {
			t.Fatalf("nginx did not count %s down after %d requests:\n%s", b.addr, i, tail(errorLog, 10))
		}
		if code := get(t, base+"/healthz"); code != 200 {
			t.Fatalf("GET /healthz with %s up: %d", a.addr, code)
		}
	}

	// b is back. When fail_timeout has passed, nginx lets one connection through to it: open
	// WebSockets until one gets there.
	b.start(t)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for b.sockets() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no WebSocket reached %s within 30 s of its return", b.addr)
		}
		c, code := handshake(t, n.Listen)
		if code != 101 {
			t.Fatalf("WebSocket handshake with both up: %d", code)
		}
		held = append(held, c)
		time.Sleep(100 * time.Millisecond)
	}

	// a stops: b, up and holding a WebSocket, is the one left.
	a.stop()
	for range 3 {
		if code := get(t, base+"/healthz"); code != 200 {
			t.Errorf("GET /healthz with %s up: %d, want 200 (nginx error log:\n%s)", b.addr, code, tail(errorLog, 4))
		}
		c, code := handshake(t, n.Listen)
		if code != 101 {
			t.Errorf("WebSocket handshake with %s up: %d, want 101", b.addr, code)
		}
		if c != nil {
			held = append(held, c)
		}
	}
}

// downIn reports whether nginx's error log says it counted addr down.
func downIn(errorLog, addr string) bool {
	b, _ := os.ReadFile(errorLog)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "upstream server temporarily disabled") && strings.Contains(line, addr) {
			return true
		}
	}
	return false
}

func get(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// handshake sends a WebSocket handshake to addr and returns the status of the answer, and the
// connection, open, when it is 101.
func handshake(t *testing.T, addr string) (net.Conn, int) {
	t.Helper()
	return handshakeTo(t, addr, "/api/v1/ws")
}

// handshakeTo is handshake with the request target uri.
func handshakeTo(t *testing.T, addr, uri string) (net.Conn, int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", uri, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		t.Fatalf("WebSocket handshake: %v", err)
	}
	c.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, resp.StatusCode
	}
	return c, resp.StatusCode
}

// standIn is an instance's stand-in on a fixed address, which can stop (its port refuses
// connections) and start again.
type standIn struct {
	addr string

	mu    sync.Mutex
	srv   *http.Server
	conns []net.Conn // the WebSockets it holds
	ws    int        // WebSockets since it last started
}

func startStandIn(t *testing.T, addr string) *standIn {
	s := &standIn{addr: addr}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *standIn) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serve)}
	s.mu.Lock()
	s.srv, s.ws = srv, 0
	s.mu.Unlock()
	go srv.Serve(ln)
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "websocket" {
		w.Write([]byte("ok"))
		return
	}
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	rw.Flush()
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.ws++
	s.mu.Unlock()
}

func (s *standIn) sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws
}

// stop closes the listener and every connection.
func (s *standIn) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// TestNginxLogsNoToken: a client that cannot set a header or a cookie sends its access token
// in the handshake's query (?access_token=). The access log writes $uri, never the query; the
// error log writes the whole request line with each failure to reach an instance, and wrote
// the token with it when an instance was down (a rolling restart, a crash).
func TestNginxLogsNoToken(t *testing.T) {
	nginxBin := need(t, "nginx", "apt-get install -y nginx", deploy.NginxBinary)
	a := startStandIn(t, freeAddr(t))
	p, n := startNginx(t, nginxBin, t.TempDir(), []string{a.addr}, 1)
	waitHTTP(t, "http://"+n.Listen+"/healthz", p, 10*time.Second)

	a.stop()
	const token = "eyJ-the-access-token"
	if c, code := handshakeTo(t, n.Listen, "/api/v1/ws?access_token="+token); c != nil || code != http.StatusBadGateway {
		t.Fatalf("WebSocket handshake with no instance up: %d, want 502", code)
	}
	// A failed request without a token is logged as before.
	if code := get(t, "http://"+n.Listen+"/healthz"); code != http.StatusBadGateway {
		t.Fatalf("GET /healthz with no instance up: %d, want 502", code)
	}
	errorLog := filepath.Join(n.Prefix, "error.log")
	if got := tail(errorLog, 50); !strings.Contains(got, `"GET /healthz HTTP/1.1"`) {
		t.Errorf("nginx's error log does not tell the failed GET /healthz:\n%s", got)
	}
	for _, log := range []string{errorLog, filepath.Join(n.Prefix, "access.log"), p.log} {
		if b, _ := os.ReadFile(log); strings.Contains(string(b), token) {
			t.Errorf("%s holds the access token:\n%s", log, b)
		}
	}
}
