package failover_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wschat/chat/deploy"
	"github.com/wschat/chat/internal/testdb"
)

// need finds a program the test cannot run without: missing, the test is skipped, or fails
// with CI=true (as testdb does for PostgreSQL and Redis).
func need(t *testing.T, name, install string, find func() (string, error)) string {
	t.Helper()
	p, err := find()
	if err != nil {
		testdb.Unavailable(t, name+" (install it with: "+install+")", err)
	}
	return p
}

func lookPath(name string, extra ...string) func() (string, error) {
	return func() (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, p := range extra {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s not found on PATH", name)
	}
}

// buildChatd builds the server binary once into dir.
func buildChatd(t *testing.T, dir string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out := filepath.Join(dir, "chatd")
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/wschat/chat/cmd/chatd")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build chatd: %v\n%s", err, b)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a process of the test, its output captured to a file. It is killed when the test
// ends; if the test failed, the tail of its output is printed.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
	// stop is how the test ends it: SIGKILL, or for nginx SIGTERM, so that the master takes
	// its workers along (a killed master leaves them running).
	stop syscall.Signal
}

// startProc starts a process whose log goes to dir/name.log; owner (the top-level test, which
// outlives the subtests) kills it at its end.
func startProc(t, owner *testing.T, dir, name, bin string, args, env []string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "==== %s %s\n", time.Now().Format(time.StampMilli), strings.Join(append([]string{bin}, args...), " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, children included
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{}), stop: syscall.SIGKILL}
	if filepath.Base(bin) == "nginx" {
		p.stop = syscall.SIGTERM
	}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	owner.Cleanup(func() {
		p.signal(p.stop)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever is left of its group
		<-p.done
		if owner.Failed() {
			t.Logf("---- last lines of %s (%s):\n%s", name, logPath, tail(logPath, 25))
		}
	})
	return p
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(sig)
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("%s still running after %v", p.name, within)
		return 0
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cleanEnv is the environment without any CHAT_ setting of the machine.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHAT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, p *proc, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if p != nil && !p.running() {
			t.Fatalf("%s exited (%v) before %s answered:\n%s", p.name, p.err, url, tail(p.log, 25))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within %v: %v", url, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisServer is the test's own Redis, on a free port, never the machine's shared one.
type redisServer struct {
	owner          *testing.T
	bin, addr, dir string
	p              *proc
}

func startRedis(t *testing.T, bin, dir string) *redisServer {
	t.Helper()
	r := &redisServer{owner: t, bin: bin, addr: freeAddr(t), dir: dir}
	r.start(t)
	return r
}

func (r *redisServer) start(t *testing.T) {
	t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	r.p = startProc(t, r.owner, r.dir, "redis", r.bin, []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "no"}, cleanEnv())
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return
			}
		}
		if !r.p.running() || time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start:\n%s", r.addr, tail(r.p.log, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart kills Redis (what it held is gone: pub/sub subscriptions, presence) and starts it
// again on the same port after down.
func (r *redisServer) restart(t *testing.T, down time.Duration) {
	t.Helper()
	r.p.signal(syscall.SIGKILL)
	r.p.wait(t, 10*time.Second)
	time.Sleep(down)
	r.start(t)
}

// tcpProxy forwards connections to a target, and can cut them all and refuse new ones, to
// make a server unreachable without stopping it.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
	})
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *tcpProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *tcpProxy) pipe(c net.Conn) {
	defer c.Close()
	if !p.track(c) {
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 3*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(up) {
		return
	}
	go func() {
		io.Copy(up, c)
		up.Close()
	}()
	io.Copy(c, up)
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// setCut cuts every connection and refuses new ones (true), or lets them through again.
func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset, as a lost network path looks to the peer eventually
			}
			c.Close()
		}
		p.conns = map[net.Conn]struct{}{}
	}
}

// postgresTarget returns the host:port of the test PostgreSQL server.
func postgresTarget(t *testing.T) string {
	u, err := url.Parse(testdb.PostgresAdminURL())
	if err != nil {
		t.Fatal(err)
	}
	host := u.Host
	if !strings.Contains(host, ":") {
		host += ":5432"
	}
	return host
}

// viaProxy rewrites a PostgreSQL URL to go through addr.
func viaProxy(t *testing.T, dbURL, addr string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// startNginx runs nginx in the foreground from a configuration generated in a temporary
// directory, in front of upstreams, with that many worker processes.
func startNginx(t *testing.T, bin, dir string, upstreams []string, workers int) (*proc, deploy.Nginx) {
	t.Helper()
	user, err := deploy.WorkerUser()
	if err != nil && os.Geteuid() == 0 {
		t.Fatal(err)
	}
	n := deploy.Nginx{Prefix: t.TempDir(), Listen: freeAddr(t), Upstreams: upstreams, User: user, Workers: workers}
	if err := n.Write(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, append(n.Args(), "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	p := startProc(t, t, dir, "nginx", bin, n.Args(), cleanEnv())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- nginx error.log:\n%s", tail(filepath.Join(n.Prefix, "error.log"), 20))
		}
	})
	return p, n
}

// accessLog is nginx's access log, read from an offset on.
type accessLog struct {
	path string
	from int64
}

func (a *accessLog) mark() {
	st, err := os.Stat(a.path)
	if err == nil {
		a.from = st.Size()
	}
}

// countWS counts the WebSockets that nginx ended since the mark whose (last) upstream was
// addr, waiting up to a few seconds for the count to reach want.
func (a *accessLog) countWS(addr string, want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		b, err := os.ReadFile(a.path)
		if err == nil && int64(len(b)) >= a.from {
			for _, line := range strings.Split(string(b[a.from:]), "\n") {
				if !strings.Contains(line, `"GET /api/v1/ws HTTP/1.1" 101 `) {
					continue
				}
				_, up, _ := strings.Cut(line, " upstream=")
				up, _, _ = strings.Cut(up, " ustatus=") // "a:1, b:2" when nginx tried several
				tried := strings.Split(up, ",")
				if strings.TrimSpace(tried[len(tried)-1]) == addr {
					n++
				}
			}
		}
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}
